"""Unit tests, one group per transform of skabi.adapters."""

import numpy as np
import pytest
from sklearn.base import clone

from skabi.adapters import (
    AsSet,
    AsTimeSeries,
    AsTokens,
    Broadcast,
    Concatenate,
    Constrain,
    ConvertDType,
    Drop,
    Keep,
    Log,
    OneHot,
    Rename,
    Sqrt,
    Standardize,
)
from skabi.exceptions import MissingKeyError, NotFittedError, ShapeError


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return {
        "beta": rng.normal(size=(6, 2)),
        "sigma": rng.gamma(2.0, size=(6, 1)),
        "x": rng.normal(size=(6, 5)),
        "y": rng.normal(size=(6, 5)),
        "N": 5,
    }


def _snapshot(data):
    return {k: np.array(v, copy=True) for k, v in data.items()}


def _assert_unchanged(data, snap):
    assert set(data) == set(snap)
    for k in snap:
        np.testing.assert_array_equal(np.asarray(data[k]), snap[k])


ALL_STEPS = [
    Broadcast("N", to="x"),
    AsSet(["x", "y"]),
    AsTimeSeries("x"),
    AsTokens("x"),
    Constrain("sigma", lower=0),
    Constrain("sigma", lower=0, upper=50, method="reject"),
    Standardize(),
    Sqrt("N"),
    Log("sigma"),
    OneHot("N", num_classes=6),
    Concatenate(["beta", "sigma"], into="inference_variables"),
    Rename("N", "inference_conditions"),
    ConvertDType("beta", from_dtype="float64", to_dtype="float32"),
    Keep(["x", "y"]),
    Drop("x"),
]


@pytest.mark.parametrize("step", ALL_STEPS, ids=lambda s: type(s).__name__)
def test_sklearn_contract_and_purity(step, batch):
    # __init__ stores only; no fitted attribute before fit; clone round trip.
    assert not [k for k in vars(step) if k.endswith("_")]
    params = step.get_params()
    twin = clone(step)
    assert twin.get_params() == params
    snap = _snapshot(batch)
    fitted = step.fit(batch)
    assert fitted is step
    assert hasattr(step, "keys_")
    out = step.transform(batch)
    _assert_unchanged(batch, snap)  # input dict and arrays untouched
    assert out is not batch
    assert step.get_params() == params  # fit did not change params


def test_broadcast(batch):
    out = Broadcast("N", to="x").fit_transform(batch)
    assert out["N"].shape == (6, 1)
    assert np.all(out["N"] == 5)


def test_as_set_and_time_series():
    data = {"a": np.zeros((4, 3)), "b": np.zeros((4, 3, 2))}
    out = AsSet(["a", "b"]).fit_transform(data)
    assert out["a"].shape == (4, 3, 1) and out["b"].shape == (4, 3, 2)
    out = AsTimeSeries("a").fit_transform(data)
    assert out["a"].shape == (4, 3, 1)


def test_as_set_inverse_any_leading_shape():
    step = AsSet("a").fit({"a": np.zeros((4, 3))})
    back = step.inverse_transform({"a": np.ones((2, 7, 3, 1))})
    assert back["a"].shape == (2, 7, 3)


@pytest.mark.parametrize(
    "kwargs, x",
    [
        ({"lower": 0.0}, np.array([[1e-8], [0.5], [30.0], [1e6]])),
        ({"upper": 2.0}, np.array([[1.9999], [0.5], [-30.0], [-1e6]])),
        ({"lower": -1.0, "upper": 3.0}, np.array([[-0.999], [0.0], [2.5], [2.999999]])),
    ],
)
def test_constrain_round_trip(kwargs, x):
    step = Constrain("t", **kwargs).fit({"t": x})
    z = step.transform({"t": x})["t"]
    assert np.all(np.isfinite(z))
    back = step.inverse_transform({"t": z})["t"]
    np.testing.assert_allclose(back, x, rtol=1e-7, atol=1e-12)


def test_constrain_formulas():
    z = np.array([[-2.0], [0.0], [3.0]])
    lo = Constrain("t", lower=1.0).fit({"t": np.ones((1, 1)) * 2})
    np.testing.assert_allclose(lo.inverse_transform({"t": z})["t"], 1 + np.log1p(np.exp(z)))
    hi = Constrain("t", upper=1.0).fit({"t": np.zeros((1, 1))})
    np.testing.assert_allclose(hi.inverse_transform({"t": z})["t"], 1 - np.log1p(np.exp(z)))
    both = Constrain("t", lower=-1.0, upper=3.0).fit({"t": np.zeros((1, 1))})
    np.testing.assert_allclose(both.inverse_transform({"t": z})["t"], -1 + 4 / (1 + np.exp(-z)))


def test_standardize_statistics():
    rng = np.random.default_rng(1)
    data = {
        "s": rng.normal(3.0, 2.0, size=(50, 7, 2)),
        "r": rng.normal(-1.0, 5.0, size=(50,)),
        "c": np.full((50, 3), 4.0),  # constant
        "k": np.arange(50),  # integer: not standardized by default
    }
    step = Standardize().fit(data)
    assert step.keys_ == ["s", "r", "c"]
    assert step.mean_["s"].shape == (2,) and step.mean_["r"].shape == ()
    np.testing.assert_allclose(step.mean_["s"], data["s"].reshape(-1, 2).mean(0))
    np.testing.assert_allclose(step.std_["r"], data["r"].std())
    np.testing.assert_array_equal(step.std_["c"], 1.0)
    out = step.transform(data)
    np.testing.assert_allclose(out["s"].reshape(-1, 2).mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(out["s"].reshape(-1, 2).std(0), 1)
    assert np.all(np.isfinite(out["c"])) and np.all(out["c"] == 0)
    np.testing.assert_array_equal(out["k"], data["k"])
    # a set of another size after fit works (statistics are per feature)
    other = step.transform({"s": rng.normal(size=(3, 11, 2))})
    assert other["s"].shape == (3, 11, 2)


def test_standardize_exclude_and_explicit_keys(batch):
    step = Standardize(exclude=["beta", "sigma"]).fit(batch)
    assert step.keys_ == ["x", "y"]
    assert Standardize("x").fit(batch).keys_ == ["x"]


def test_standardize_needs_fit(batch):
    with pytest.raises(NotFittedError):
        Standardize().transform(batch)


def test_standardize_keys_none_skips_absent_variables(batch):
    step = Standardize().fit(batch)
    out = step.transform({"x": batch["x"], "y": batch["y"]})  # no parameters
    assert set(out) == {"x", "y"}


def test_standardize_wrong_feature_count(batch):
    data = {"s": np.zeros((4, 3, 2))}
    step = Standardize().fit(data)
    with pytest.raises(ShapeError, match="'s'"):
        step.transform({"s": np.zeros((4, 3, 5))})


def test_sqrt_log():
    x = np.array([[0.25, 4.0], [9.0, 1.0]])
    np.testing.assert_allclose(Sqrt("a").fit_transform({"a": x})["a"], np.sqrt(x))
    np.testing.assert_allclose(Log("a").fit_transform({"a": x})["a"], np.log(x))
    assert Sqrt("n").fit_transform({"n": 16})["n"] == 4.0  # scalar meta variable


def test_one_hot():
    step = OneHot("c", num_classes=3).fit({"c": np.array([0, 2, 1])})
    out = step.transform({"c": np.array([2, 0])})["c"]
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(NotImplementedError):
        step.inverse_transform({"c": out})
    # one label per row in the batch rule's (B, 1) form is one one-hot row, not (B, 1, 3)
    np.testing.assert_array_equal(step.transform({"c": np.array([[2], [0]])})["c"], out)
    assert step.transform({"c": np.zeros((2, 4))})["c"].shape == (2, 4, 3)


def test_concatenate_and_split(batch):
    step = Concatenate(["beta", "sigma"], into="theta").fit(batch)
    assert step.sizes_ == [2, 1]
    out = step.transform(batch)
    assert "beta" not in out and out["theta"].shape == (6, 3)
    back = step.inverse_transform({"theta": np.zeros((4, 9, 3))})
    assert back["beta"].shape == (4, 9, 2) and back["sigma"].shape == (4, 9, 1)


def test_concatenate_expands_rank_one_parts():
    data = {"a": np.zeros((5, 2)), "b": np.arange(5.0)}
    step = Concatenate(["a", "b"], into="v").fit(data)
    out = step.transform(data)["v"]
    np.testing.assert_array_equal(out[:, 2], np.arange(5.0))
    back = step.inverse_transform({"v": out})
    np.testing.assert_array_equal(back["b"], np.arange(5.0))


def test_concatenate_other_axis():
    data = {"a": np.zeros((5, 2, 3)), "b": np.ones((5, 4, 3))}
    step = Concatenate(["a", "b"], into="v", axis=1).fit(data)
    assert step.transform(data)["v"].shape == (5, 6, 3)
    back = step.inverse_transform({"v": np.zeros((7, 5, 6, 3))})
    assert back["a"].shape == (7, 5, 2, 3) and back["b"].shape == (7, 5, 4, 3)


def test_rename(batch):
    step = Rename("N", "cond").fit(batch)
    out = step.transform(batch)
    assert "N" not in out and out["cond"] == 5
    assert step.inverse_transform({"cond": 3})["N"] == 3


def test_convert_dtype(batch):
    step = ConvertDType("beta", from_dtype="float64", to_dtype="float32").fit(batch)
    assert step.transform(batch)["beta"].dtype == np.float32
    assert step.inverse_transform({"beta": np.zeros(2, np.float32)})["beta"].dtype == np.float64
    with pytest.raises(TypeError, match="'beta'"):
        step.transform({"beta": np.zeros((2, 2), np.float16)})


def test_keep_drop(batch):
    assert set(Keep(["x", "y"]).fit_transform(batch)) == {"x", "y"}
    assert set(Drop(["x", "y"]).fit_transform(batch)) == {"beta", "sigma", "N"}
    # absent keys are fine at transform time
    assert set(Drop("beta").fit(batch).transform({"x": 1})) == {"x"}


@pytest.mark.parametrize(
    "step",
    [Sqrt("N"), Constrain(["sigma"], lower=0), Concatenate(["beta", "sigma"], into="theta")],
    ids=lambda s: type(s).__name__,
)
def test_all_inputs_absent_skips(step, batch):
    step.fit(batch)
    obs = {"x": batch["x"]}
    out = step.transform(obs)
    assert set(out) == {"x"}


def test_partial_inputs_raise(batch):
    step = Concatenate(["beta", "sigma"], into="theta").fit(batch)
    with pytest.raises(MissingKeyError) as err:
        step.transform({"beta": batch["beta"], "x": batch["x"]})
    msg = str(err.value)
    assert "'sigma'" in msg and "'beta'" in msg and "'x'" in msg  # missing and available


def test_broadcast_needs_target_when_running(batch):
    step = Broadcast("N", to="x").fit(batch)
    with pytest.raises(MissingKeyError, match="'x'"):
        step.transform({"N": 5})
    assert set(step.transform({"x": batch["x"]})) == {"x"}  # N absent: skipped
