"""The saved-file format: files written before the training engine (format 1) still load."""

import json
import zipfile

import numpy as np
import pytest

from models import Gaussian, tiny_estimator
from skabi import AmortizedPosterior
from skabi.exceptions import LoadError


def _rewrite(path, change):
    with zipfile.ZipFile(path) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
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
