"""The AmortizedJoint folder is one checksummed unit (issue 29): bit flips, a foreign half,
an interrupted or failed save, a symlinked record and a record without parameters are all
refused or harmless, never a different estimator."""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from scipy import stats

from models import NormalMean
from skabi import AmortizedJoint, AmortizedLikelihood, AmortizedPosterior
from skabi.adapters import AsObservations, Rename, make_adapter
from skabi.exceptions import LoadError
from skabi.networks import CouplingFlow

FILES = ("joint.json", "posterior.skabi", "likelihood.skabi")


def _joint(seed):
    posterior = AmortizedPosterior(
        adapter=make_adapter(Rename("mu", "inference_variables"),
                             Rename("x", "inference_conditions")),
        inference_network=CouplingFlow(depth=1, subnet_width=8))
    likelihood = AmortizedLikelihood(
        adapter=make_adapter(AsObservations("x"), Rename("x", "inference_variables"),
                             Rename("mu", "inference_conditions")),
        inference_network=CouplingFlow(depth=1, subnet_width=8))
    return AmortizedJoint(posterior, likelihood, epochs=1, batches_per_epoch=3, batch_size=16,
                          pilot_size=32, random_state=seed).fit(NormalMean(n_obs=4))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two joints fitted with different seeds, each saved into its folder."""
    root = tmp_path_factory.mktemp("joint")
    out = []
    for seed in (0, 1):
        est = _joint(seed)
        est.save(root / f"pair{seed}")
        out.append((est, root / f"pair{seed}"))
    return out


def _fingerprint(est):
    """Everything that makes a loaded joint the estimator it is."""
    return ({k: v.clone() for half in (est.posterior_, est.likelihood_)
             for k, v in half.approximator_.state_dict().items()},
            json.dumps(est.get_params(deep=False), default=str, sort_keys=True),
            json.dumps([h.adapter_.get_config() for h in (est.posterior_, est.likelihood_)],
                       sort_keys=True),
            est.history_.to_json())


def _same(a, b):
    return (a[0].keys() == b[0].keys() and all(torch.equal(a[0][k], b[0][k]) for k in a[0])
            and a[1:] == b[1:])


def test_the_record_holds_digests_of_both_halves_and_itself(pair):
    record = json.loads((pair[0][1] / "joint.json").read_text())
    assert set(record["files"]) == {"posterior.skabi", "likelihood.skabi"}
    assert len(record["checksum"]) == 64 and record["format_version"] == 2
    assert not [f for f in os.listdir(pair[0][1]) if f.endswith(".tmp")]


def test_bit_flips_never_load_a_different_estimator(pair, tmp_path):
    """200 single-bit flips over the folder's files: each load is refused with a
    LoadError or gives the very estimator saved (8 of 200 loaded different before)."""
    folder = pair[0][1]
    reference = _fingerprint(AmortizedJoint.load(folder))
    rng = np.random.default_rng(0)
    outcomes = {"refused": 0, "same": 0}
    for trial in range(200):
        copy = tmp_path / f"flip{trial}"
        shutil.copytree(folder, copy)
        target = copy / FILES[trial % 3]
        data = bytearray(target.read_bytes())
        bit = int(rng.integers(len(data) * 8))
        data[bit // 8] ^= 1 << (bit % 8)
        target.write_bytes(bytes(data))
        try:
            loaded = AmortizedJoint.load(copy)
        except LoadError:
            outcomes["refused"] += 1
        else:
            assert _same(_fingerprint(loaded), reference), (trial, target.name, bit)
            outcomes["same"] += 1
        shutil.rmtree(copy)
    assert outcomes["refused"] >= 190, outcomes


def test_a_foreign_half_is_refused(pair, tmp_path):
    """A likelihood from another fit gave a wrong log_ml silently."""
    copy = tmp_path / "mixed"
    shutil.copytree(pair[0][1], copy)
    shutil.copy(pair[1][1] / "likelihood.skabi", copy / "likelihood.skabi")
    with pytest.raises(LoadError, match="'likelihood.skabi' is not the file joint.json was "
                                        "saved with"):
        AmortizedJoint.load(copy)
    AmortizedLikelihood.load(copy / "likelihood.skabi")   # the half alone still loads


def test_a_record_without_parameters_is_refused(pair, tmp_path):
    """A missing "params" loaded the defaults."""
    from skabi.training.bundle import _sealed

    import hashlib

    copy = tmp_path / "noparams"
    shutil.copytree(pair[0][1], copy)
    record = json.loads((copy / "joint.json").read_text())
    del record["params"], record["checksum"]
    record["checksum"] = hashlib.sha256(_sealed(record)).hexdigest()   # resealed by hand
    (copy / "joint.json").write_text(json.dumps(record))
    with pytest.raises(LoadError, match="lacks the joint parameters"):
        AmortizedJoint.load(copy)


def test_a_failed_save_leaves_the_folder_as_it_was(pair, tmp_path, monkeypatch):
    """A failing likelihood half left a new posterior beside the old likelihood."""
    (old, folder), (new, _) = pair
    copy = tmp_path / "kept"
    shutil.copytree(folder, copy)
    before = {f: (copy / f).read_bytes() for f in FILES}

    def full_disk(path):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(new.likelihood_, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        new.save(copy)
    assert {f: (copy / f).read_bytes() for f in FILES} == before
    assert sorted(os.listdir(copy)) == sorted(FILES)
    assert _same(_fingerprint(AmortizedJoint.load(copy)), _fingerprint(old))


def test_an_interrupted_save_is_refused_not_mixed(pair, tmp_path):
    """A process killed between the renames: the new posterior beside the old record."""
    copy = tmp_path / "torn"
    shutil.copytree(pair[0][1], copy)
    shutil.copy(pair[1][1] / "posterior.skabi", copy / "posterior.skabi")
    with pytest.raises(LoadError, match="interrupted save"):
        AmortizedJoint.load(copy)


def test_save_replaces_a_symlinked_record_and_leaves_its_target(pair, tmp_path):
    """save followed a joint.json symlink and overwrote the file it pointed to."""
    est, folder = pair[0]
    copy = tmp_path / "linked"
    shutil.copytree(folder, copy)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (copy / "joint.json").unlink()
    os.symlink(victim, copy / "joint.json")
    est.save(copy)
    assert victim.read_text() == "precious"
    assert not os.path.islink(copy / "joint.json")
    AmortizedJoint.load(copy)


def test_save_keeps_the_files_modes(pair, tmp_path):
    est, folder = pair[0]
    copy = tmp_path / "modes"
    shutil.copytree(folder, copy)
    for name in FILES:
        os.chmod(copy / name, 0o640)
    est.save(copy)
    assert {oct(os.stat(copy / f).st_mode & 0o777) for f in FILES} == {"0o640"}


def test_a_record_before_digests_still_loads(pair, tmp_path):
    copy = tmp_path / "legacy"
    shutil.copytree(pair[0][1], copy)
    record = json.loads((copy / "joint.json").read_text())
    legacy = {"format": "skabi-joint", "params": record["params"]}
    (copy / "joint.json").write_text(json.dumps(legacy))
    loaded = AmortizedJoint.load(copy, prior={"mu": stats.norm(0, 1)})
    assert _same(_fingerprint(loaded)[:1], _fingerprint(pair[0][0])[:1])


@pytest.mark.parametrize("device, message", [("meta", "device"), (123, "device"),
                                             ("nonsense", "device")])
def test_a_device_problem_is_named_before_reading(pair, device, message):
    with pytest.raises((ValueError, TypeError, LoadError), match=message):
        AmortizedJoint.load(pair[0][1], device=device)


def test_a_file_in_place_of_the_folder_is_refused(pair, tmp_path):
    est, _ = pair[0]
    path = tmp_path / "plain.txt"
    path.write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        est.save(path)
    assert path.read_text() == "x"
