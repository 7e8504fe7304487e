"""BayesFlow spellings that skabi accepts, or refuses with an error naming its own."""

import numpy as np
import pytest

from models import Gaussian, tiny_estimator, tutorial_steps
from skabi import Adapter, make_adapter


def _batch(n=6):
    rng = np.random.default_rng(0)
    return {"beta": rng.normal(size=(n, 2)), "sigma": rng.gamma(2.0, size=(n, 1)),
            "x": rng.normal(size=(n, 5)), "y": rng.normal(size=(n, 5)), "N": 5}


@pytest.mark.parametrize("call", [
    lambda a: a.convert_dtype("float64", "float32"),
    lambda a: a.convert_dtype(from_dtype="float64", to_dtype="float32"),
])
def test_convert_dtype_two_dtypes_sets_the_output_dtype(call):
    fluent = call(make_adapter(*tutorial_steps()))
    assert fluent.dtype == "float32" and len(fluent.steps) == len(tutorial_steps())
    out = fluent.fit_transform(_batch())
    assert all(out[k].dtype == np.float32 for k in
               ("inference_variables", "summary_variables", "inference_conditions"))
    wide = make_adapter(*tutorial_steps()).convert_dtype("float32", "float64")
    assert wide.fit_transform(_batch())["inference_variables"].dtype == np.float64


def test_convert_dtype_with_keys_appends_a_step():
    adapter = Adapter().convert_dtype("n", from_dtype="int64", to_dtype="float32")
    assert [type(step).__name__ for _, step in adapter.steps] == ["ConvertDType"]


@pytest.mark.parametrize("args, kwargs", [
    (("x", "float32"), {}),                         # a variable, not a dtype
    (("int64", "float32"), {}),                     # not floating point
    (("x",), {"to_dtype": "float32"}),              # skabi's form without from_dtype
    (("float64", "float32"), {"to_dtype": "float32"}),
])
def test_convert_dtype_refuses_mixed_spellings_and_names_both(args, kwargs):
    with pytest.raises(TypeError, match=r"convert_dtype\(keys, from_dtype=.*'float64', "
                                        r"'float32'"):
        Adapter().convert_dtype(*args, **kwargs)


def test_sample_conditions_is_the_data():
    simulator = Gaussian(n_obs=5)
    est = tiny_estimator().fit(simulator)
    data = simulator.sample(3, random_state=1)
    by_position = est.sample(data, 50, return_type="numpy", random_state=2)
    by_name = est.sample(conditions=data, num_samples=50, return_type="numpy", random_state=2)
    np.testing.assert_array_equal(by_position["theta"], by_name["theta"])
    with pytest.raises(TypeError, match=r"sample\(conditions=X"):
        est.sample(data, 50, conditions=data)
    with pytest.raises(TypeError, match="once"):
        est.sample(num_samples=50)
