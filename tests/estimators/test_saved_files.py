"""Files saved before the estimators moved to ``skabi/estimators/`` (issue 30) still load,
and give the numbers they gave when they were written (``tests/data/README``)."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

import skabi

HERE = pathlib.Path(__file__).resolve().parents[1] / "data" / "saved_366c674"
SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "contract_losses.py"

FILES = {"posterior-online": "AmortizedPosterior", "likelihood-online": "AmortizedLikelihood",
         "point-arrays": "AmortizedPointEstimator",
         "classifier-arrays": "AmortizedModelComparison",
         "multilevel-online": "AmortizedMultilevelPosterior", "joint-online": "AmortizedJoint"}


def _script():
    spec = importlib.util.spec_from_file_location("contract_losses", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_file_of_the_old_layout_loads_and_gives_the_same_numbers(name, one_torch_thread):
    script = _script()
    expected = json.loads((HERE / "draws.json").read_text())[name]
    path = HERE / (name if name.startswith("joint") else name + ".skabi")
    est = getattr(skabi, FILES[name]).load(path)
    assert type(est).__module__.startswith("skabi.estimators.")
    got = script._draws(name, est, script.simulator(), script.multilevel_simulator())
    if isinstance(expected, dict):
        assert sorted(got) == sorted(expected)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6,
                                       err_msg=key)
    else:   # to rounding: another CPU's vector kernels may differ in the last bit
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
