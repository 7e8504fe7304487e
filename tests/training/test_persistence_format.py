"""The saved-file format: files written before the training engine (format 1) still load."""

import json
import zipfile

import numpy as np
import pytest

from models import Gaussian, tiny_estimator
from skabi import AmortizedPosterior
from skabi.exceptions import LoadError


def _rewrite(path, change):
    """Edit config.json as a hand (or an older skabi) would: without a checksum record."""
    with zipfile.ZipFile(path) as zf:
        files = {name: zf.read(name) for name in zf.namelist() if name != "checksums.json"}
    config = json.loads(files["config.json"])
    change(config)
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)


def test_a_file_without_the_new_fields_loads_and_samples_the_same(tmp_path):
    est = tiny_estimator().fit(Gaussian())
    path = tmp_path / "old.skabi"
    est.save(path)

    def as_before(config):   # what skabi wrote before FitState: no size links, no n_threads
        del config["fitted"]["size_links"]
        del config["params"]["n_threads"]

    _rewrite(path, as_before)
    loaded = AmortizedPosterior.load(path)
    obs = Gaussian().sample(4, random_state=1)
    np.testing.assert_allclose(loaded.log_prob(obs), est.log_prob(obs), rtol=1e-6)
    np.testing.assert_array_equal(loaded.sample(obs, 20, return_type="numpy")["theta"],
                                  est.sample(obs, 20, return_type="numpy")["theta"])
    assert loaded.size_links_ == {} and loaded.n_threads == 1
    assert list(loaded.history_.columns) == list(est.history_.columns)


@pytest.mark.parametrize("backbone", ["mlp", "residual"])
def test_coupling_subnets_round_trip_and_a_file_before_backbone_loads_as_mlp(backbone,
                                                                              tmp_path):
    from skabi.networks import CouplingFlow

    est = tiny_estimator(inference_network=CouplingFlow(depth=2, subnet_width=16,
                                                        backbone=backbone)).fit(Gaussian())
    path = tmp_path / "flow.skabi"
    est.save(path)
    obs = Gaussian().sample(4, random_state=1)
    loaded = AmortizedPosterior.load(path)
    assert loaded.inference_network.backbone == backbone
    np.testing.assert_allclose(loaded.log_prob(obs), est.log_prob(obs), rtol=1e-6)

    def as_before(config):   # what skabi wrote before CouplingFlow had a backbone
        del config["inference_network"]["params"]["backbone"]

    _rewrite(path, as_before)
    if backbone == "mlp":
        before = AmortizedPosterior.load(path)
        np.testing.assert_allclose(before.log_prob(obs), est.log_prob(obs), rtol=1e-6)
    else:   # the weights of residual subnets do not fit the MLP the file now names
        with pytest.raises(LoadError):
            AmortizedPosterior.load(path)


def test_an_edited_file_with_its_checksums_is_refused(tmp_path):
    path = tmp_path / "edited.skabi"
    tiny_estimator().fit(Gaussian()).save(path)
    with zipfile.ZipFile(path) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    files["config.json"] = files["config.json"].replace(b'"epochs": 2', b'"epochs": 3')
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    with pytest.raises(LoadError, match="'config.json' does not match its checksum"):
        AmortizedPosterior.load(path)


def test_a_newer_format_version_is_refused_with_a_reason(tmp_path):
    path = tmp_path / "new.skabi"
    tiny_estimator().fit(Gaussian()).save(path)
    _rewrite(path, lambda c: c.update(format_version=2))
    with pytest.raises(LoadError, match="format version 2"):
        AmortizedPosterior.load(path)


def test_unknown_parameters_give_a_load_error(tmp_path):
    path = tmp_path / "odd.skabi"
    tiny_estimator().fit(Gaussian()).save(path)
    _rewrite(path, lambda c: c["params"].update(not_a_param=1))
    with pytest.raises(LoadError, match="not_a_param"):
        AmortizedPosterior.load(path)


# ----------------------------------------------------------------- hostile and damaged files
def _with_weights(data, weights, path):
    """The saved file ``data`` with other weights (and, as a hand-made file, no checksums)."""
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            if name not in ("weights.pt", "checksums.json"):
                dst.writestr(name, src.read(name))
        dst.writestr("weights.pt", weights)
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    est = tiny_estimator().fit(Gaussian())
    path = tmp_path_factory.mktemp("saved") / "model.skabi"
    est.save(path)
    return est, path.read_bytes()


def test_a_crafted_file_cannot_set_a_path_or_a_device(saved, tmp_path):
    est, data = saved
    path, victim = tmp_path / "crafted.skabi", tmp_path / "victim.txt"
    path.write_bytes(data)
    victim.write_text("precious")
    _rewrite(path, lambda c: c["params"].update(checkpoint_path=str(victim), device="cpu:9",
                                                n_threads=64))
    loaded = AmortizedPosterior.load(path)
    assert loaded.checkpoint_path is None and loaded.device == "auto" and loaded.n_threads == 1
    loaded.set_params(epochs=1).fit(Gaussian())
    assert victim.read_text() == "precious"
    _rewrite(path, lambda c: c["params"].update(epochs=-3))
    with pytest.raises(LoadError, match="epochs"):
        AmortizedPosterior.load(path)


def test_random_bit_flips_give_a_load_error_or_the_same_model(saved, tmp_path):
    import warnings

    est, data = saved
    obs = Gaussian().sample(3, random_state=0)
    want = est.log_prob(obs)
    rng = np.random.default_rng(0)
    outcomes = {"LoadError": 0, "same": 0}
    for i in range(200):
        flipped = bytearray(data)
        bit = int(rng.integers(len(flipped) * 8))
        flipped[bit // 8] ^= 1 << (bit % 8)
        path = tmp_path / f"flip{i}.skabi"
        path.write_bytes(bytes(flipped))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loaded = AmortizedPosterior.load(path)
        except LoadError:
            outcomes["LoadError"] += 1
            continue
        np.testing.assert_array_equal(loaded.log_prob(obs), want)   # never a different model
        outcomes["same"] += 1
    assert outcomes["LoadError"] > 100, outcomes


def test_truncated_zip_bomb_duplicate_and_pickle_files_are_refused(saved, tmp_path):
    est, data = saved
    truncated = tmp_path / "truncated.skabi"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError):
        AmortizedPosterior.load(truncated)

    bomb = tmp_path / "bomb.skabi"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", b" " * (17 * 2**20))
        zf.writestr("weights.pt", b"")
    with pytest.raises(LoadError, match="config.json.*over the limit"):
        AmortizedPosterior.load(bomb)

    twice = tmp_path / "twice.skabi"
    twice.write_bytes(data)
    with zipfile.ZipFile(twice, "a") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("config.json", b"{}")
    with pytest.raises(LoadError, match="2 members named 'config.json'"):
        AmortizedPosterior.load(twice)


def test_a_pickle_payload_runs_nothing(saved, tmp_path):
    import io
    import pickle

    import torch

    est, data = saved
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = io.BytesIO()
    torch.save({"x": Payload()}, evil)
    path = _with_weights(data, evil.getvalue(), tmp_path / "evil.skabi")
    with pytest.raises(LoadError, match="never unpickles code"):
        AmortizedPosterior.load(path)
    assert not marker.exists()
    assert pickle  # (the payload class is defined here; nothing imports it on load)


def test_non_finite_weights_are_refused(saved, tmp_path):
    import io

    import torch

    est, data = saved
    state = {k: v.clone() for k, v in est.approximator_.state_dict().items()}
    first = next(k for k, v in state.items() if v.is_floating_point() and v.numel())
    state[first].view(-1)[0] = float("nan")
    weights = io.BytesIO()
    torch.save(state, weights)
    path = _with_weights(data, weights.getvalue(), tmp_path / "nan.skabi")
    with pytest.raises(LoadError, match="non-finite weights"):
        AmortizedPosterior.load(path)


def test_another_skabi_or_torch_version_warns(saved, tmp_path):
    est, data = saved
    path = tmp_path / "older.skabi"
    path.write_bytes(data)

    def older(config):
        config["versions"]["skabi"] = "0.0.1"

    _rewrite(path, older)
    with pytest.warns(UserWarning, match="written with .*0.0.1"):
        AmortizedPosterior.load(path)


# ------------------------------------------------------- issue 29: what load reads at all
@pytest.mark.parametrize("kind", ["device", "symlink to a device", "fifo", "folder"])
def test_load_refuses_what_is_not_a_regular_file_before_reading(kind, tmp_path):
    """/dev/zero read without bound and a FIFO blocked before the check existed."""
    import os

    path = tmp_path / "model.skabi"
    if kind == "device":
        path = "/dev/zero"
    elif kind == "symlink to a device":
        os.symlink("/dev/zero", path)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    match = "is a folder" if kind == "folder" else "not a regular file"
    with pytest.raises(LoadError, match=match):
        AmortizedPosterior.load(path)


@pytest.mark.parametrize("device", ["cuda:7", "meta", 123, "gpu"])
def test_load_names_a_device_problem_before_reading(saved, tmp_path, device):
    import torch

    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has that GPU")
    path = tmp_path / "model.skabi"
    path.write_bytes(saved[1])
    with pytest.raises(ValueError, match=f"device={device!r} is not available"):
        AmortizedPosterior.load(path, device=device)
    with pytest.raises(ValueError, match="is not available"):   # before the file is read
        AmortizedPosterior.load(tmp_path / "missing.skabi", device=device)


def test_save_keeps_the_mode_of_the_file_it_replaces(saved, tmp_path):
    """A save replaced a 0644 file by a 0600 one (the temporary file's mode)."""
    import os
    import stat

    est, _ = saved
    path = tmp_path / "model.skabi"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    est.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    umask = os.umask(0o022)
    try:
        est.save(tmp_path / "new.skabi")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "new.skabi").st_mode) == 0o644
