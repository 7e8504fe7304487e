"""Loading checks every saved value before building anything (issue 29): sizes against the
weights, dtypes against an allow-list, fitted values against what ``save`` writes, and the
class against the file's own parameters. A crafted file is refused with a named
:class:`~skabi.exceptions.LoadError`, never loaded different and never built huge."""

import hashlib
import json
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from models import Gaussian, tiny_estimator
from skabi import (AmortizedLikelihood, AmortizedModelComparison, AmortizedPointEstimator,
                   AmortizedPosterior)
from skabi.exceptions import LoadError
from skabi.networks import CouplingFlow


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write(path, members, *, seal=True):
    """Write ``members`` as a skabi file; ``seal``: with recomputed checksums, as an
    attacker who knows the format would."""
    members = {k: v for k, v in members.items() if k != "checksums.json"}
    if seal:
        members["checksums.json"] = json.dumps(
            {k: hashlib.sha256(v).hexdigest() for k, v in members.items()}).encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _edited(source, target, change):
    """A copy of the file ``source`` at ``target`` whose config ``change`` edited."""
    members = _members(source)
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    _write(target, members)
    return target


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "posterior.skabi"
    tiny_estimator().fit(Gaussian(n_obs=5)).save(path)
    return path


@pytest.fixture(scope="module")
def saved_likelihood(tmp_path_factory):
    from skabi.adapters import AsObservations, Rename, make_adapter

    path = tmp_path_factory.mktemp("saved") / "likelihood.skabi"
    adapter = make_adapter(AsObservations("x"), Rename("x", "inference_variables"),
                           Rename("theta", "inference_conditions"))
    AmortizedLikelihood(adapter=adapter, inference_network=CouplingFlow(depth=1, subnet_width=8),
                        epochs=1, batches_per_epoch=2, batch_size=16, pilot_size=32,
                        random_state=0).fit(Gaussian(n_obs=3, dim=1)).save(path)
    return path


def test_an_untouched_file_with_resealed_checksums_loads(saved, tmp_path):
    """The crafting helper itself makes loadable files: the refusals below are the edits'."""
    AmortizedPosterior.load(_edited(saved, tmp_path / "same.skabi", lambda c: None))


def test_a_member_far_larger_than_the_file_is_refused_before_reading(saved, tmp_path):
    """A few kB of zeros that decompress to 64 MB: the limit is proportional to the file."""
    members = _members(saved)
    members["weights.pt"] = bytes(64 * 2**20)
    path = tmp_path / "bomb.skabi"
    _write(path, members)
    assert path.stat().st_size < 2**20
    with pytest.raises(LoadError, match="weights.pt.*over the limit"):
        AmortizedPosterior.load(path)


@pytest.mark.parametrize("key, value", [("subnet_width", 10**5), ("depth", 10**6)])
def test_network_sizes_no_saved_weights_could_have_are_refused(saved, tmp_path, key, value):
    def huge(config):
        config["inference_network"]["params"][key] = value

    with pytest.raises(LoadError, match=f"{key}={value}.*larger than any network"):
        AmortizedPosterior.load(_edited(saved, tmp_path / "huge.skabi", huge))


def test_a_wider_network_is_compared_with_the_weights_before_it_is_built(saved, tmp_path):
    """subnet_width 4096 built a +390 MiB network before the weights were compared: now
    the model is described on the meta device and the first mismatch named, without
    allocating it (peak memory of a fresh process)."""
    path = _edited(saved, tmp_path / "wide.skabi",
                   lambda c: c["inference_network"]["params"].update(subnet_width=1000,
                                                                     subnet_depth=6))
    code = textwrap.dedent(f"""
        import resource
        import torch
        from skabi import AmortizedPosterior
        from skabi.exceptions import LoadError
        torch.ones(1)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            AmortizedPosterior.load({str(path)!r})
        except LoadError as exc:
            print("refused:", exc)
        print("grew_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "refused:" in out and "the model its config describes" in out, out
    grown = int(out.rsplit("grew_kib", 1)[1])
    assert grown < 20 * 1024, out   # 6 layers of 1000 x 1000 floats would be +92 MiB


def test_an_adapter_array_of_a_huge_string_dtype_is_refused(tmp_path):
    """An array of dtype U300000000 loaded after 38 s at 2.6 GB: dtypes are allow-listed."""
    from skabi.adapters import Rename, Standardize, make_adapter

    adapter = make_adapter(Standardize("theta"), Rename("theta", "inference_variables"),
                           Rename("x", "summary_variables"))
    path = tmp_path / "standardized.skabi"
    tiny_estimator(adapter=adapter, epochs=1).fit(Gaussian(n_obs=5)).save(path)

    def text(config):
        blob = json.dumps(config["adapter"])
        assert '"dtype": "float64"' in blob
        config["adapter"] = json.loads(blob.replace('"dtype": "float64"',
                                                    '"dtype": "U300000000"', 1))

    with pytest.raises(LoadError, match="dtype 'U300000000'"):
        AmortizedPosterior.load(_edited(path, tmp_path / "text.skabi", text))

    def reshaped(config):
        blob = json.dumps(config["adapter"])
        config["adapter"] = json.loads(blob.replace('"shape": [2]', '"shape": [3]', 1))

    with pytest.raises(LoadError, match="holds 2 values, its shape"):
        AmortizedPosterior.load(_edited(path, tmp_path / "shape.skabi", reshaped))


def test_a_relabelled_likelihood_does_not_load_as_a_posterior(saved_likelihood, tmp_path):
    def relabel(config):
        config["class"] = "AmortizedPosterior"

    with pytest.raises(LoadError, match="summary_mmd_weight.*another estimator"):
        AmortizedPosterior.load(_edited(saved_likelihood, tmp_path / "l.skabi", relabel))


def test_a_posterior_relabelled_as_a_likelihood_is_refused(saved, tmp_path):
    def relabel(config):
        config["class"] = "AmortizedLikelihood"

    with pytest.raises(LoadError):
        AmortizedLikelihood.load(_edited(saved, tmp_path / "p.skabi", relabel))


def test_a_file_without_its_class_is_refused(saved_likelihood, tmp_path):
    with pytest.raises(LoadError, match="'class' is None"):
        AmortizedPosterior.load(_edited(saved_likelihood, tmp_path / "c.skabi",
                                        lambda c: c.pop("class")))


def _set(*keys, value):
    def change(config):
        node = config
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return change


@pytest.mark.parametrize("change, message", [
    (_set("fitted", "n_simulations", value=-5), "n_simulations -5"),
    (_set("fitted", "n_simulations", value="many"), "n_simulations 'many'"),
    (_set("fitted", "n_features_in", value="abc"), "n_features_in 'abc'"),
    (_set("fitted", "parameter_names", value=["theta", "theta"]), "distinct names"),
    (_set("fitted", "history", "loss", value=[1.0]), "unequal lengths"),
    (_set("fitted", "history", "loss", value=["x", "y"]), "not numbers"),
    (_set("fitted", "role_shapes", "inference_variables", value=0), "role_shapes"),
    (_set("fitted", "role_shapes", "inference_variables", value=3), "weight .* is"),
    (_set("fitted", value=[]), "'fitted' is a list"),
    (_set("params", value=None), "parameters"),
    (_set("networks", value="inference_network"), "network list"),
], ids=["negative count", "count text", "features text", "duplicate names",
        "history lengths", "history text", "zero shape", "shape vs weights", "fitted list",
        "no params", "network list"])
def test_crafted_fitted_values_are_named(saved, tmp_path, change, message):
    with pytest.raises(LoadError, match=message):
        AmortizedPosterior.load(_edited(saved, tmp_path / "f.skabi", change))


@pytest.fixture(scope="module")
def saved_classifier(tmp_path_factory):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=64)
    X = rng.normal(size=(64, 4)) + labels[:, None]
    path = tmp_path_factory.mktemp("saved") / "classifier.skabi"
    AmortizedModelComparison(epochs=1, batch_size=16, random_state=0).fit(X, labels).save(path)
    return path


@pytest.mark.parametrize("change, message", [
    (_set("fitted", "classes", value=[0, 1, 2]), "classes .* not 2 distinct"),
    (_set("fitted", "classes", value=[0, 0]), "classes .* not 2 distinct"),
    (_set("fitted", "class_prior", value=[1.5, -0.5]), "positive probabilities"),
    (_set("fitted", "class_prior", value=["a", "b"]), "not 2 probabilities"),
], ids=["longer than the head", "repeated", "negative prior", "prior text"])
def test_crafted_classifier_values_are_named(saved_classifier, tmp_path, change, message):
    AmortizedModelComparison.load(saved_classifier)
    with pytest.raises(LoadError, match=message):
        AmortizedModelComparison.load(_edited(saved_classifier, tmp_path / "c.skabi", change))


def test_a_crafted_point_estimator_target_rank_is_named(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 3)), rng.normal(size=64)
    path = tmp_path / "point.skabi"
    AmortizedPointEstimator(epochs=1, batches_per_epoch=2, batch_size=16,
                            random_state=0).fit(X, y).save(path)
    AmortizedPointEstimator.load(path)
    with pytest.raises(LoadError, match="y_ndim 7"):
        AmortizedPointEstimator.load(_edited(path, tmp_path / "p.skabi",
                                             _set("fitted", "y_ndim", value=7)))
