"""Every error the adapters raise names the variable (and says what it got/expected)."""

import json

import numpy as np
import pytest

from models import tutorial_adapter
from skabi.adapters import (
    Adapter,
    AsSet,
    AsTimeSeries,
    Broadcast,
    Concatenate,
    Constrain,
    Drop,
    Keep,
    Log,
    OneHot,
    Rename,
    Sqrt,
    Standardize,
    make_adapter,
)
from skabi.exceptions import (
    MissingKeyError,
    NonFiniteError,
    ShapeError,
    SupportError,
)


@pytest.fixture
def sims():
    rng = np.random.default_rng(0)
    return {
        "beta": rng.normal(size=(6, 2)),
        "sigma": rng.gamma(2.0, size=(6, 1)),
        "x": rng.normal(size=(6, 4)),
        "y": rng.normal(size=(6, 4)),
        "N": 4,
    }


# ---------------------------------------------------------------- unknown keys
@pytest.mark.parametrize(
    "step",
    [Constrain("sigm", lower=0), AsSet("sigm"), Sqrt("sigm"), Keep("sigm"), Drop("sigm"),
     Rename("sigm", "s"), Concatenate(["beta", "sigm"], into="t"), Standardize("sigm")],
    ids=lambda s: type(s).__name__,
)
def test_unknown_key_lists_available_and_suggests(step, sims):
    with pytest.raises(MissingKeyError) as err:
        step.fit(sims)
    msg = str(err.value)
    assert "'sigm'" in msg
    assert "['N', 'beta', 'sigma', 'x', 'y']" in msg
    assert "Did you mean 'sigma'?" in msg


def test_unknown_key_in_adapter_names_step(sims):
    adapter = make_adapter(AsSet(["x", "yy"]))
    with pytest.raises(MissingKeyError) as err:
        adapter.fit(sims)
    msg = str(err.value)
    assert "'asset'" in msg and "'yy'" in msg and "Did you mean 'y'?" in msg


def test_unknown_exclude_key(sims):
    with pytest.raises(MissingKeyError, match="'bta'"):
        Standardize(exclude="bta").fit(sims)


def test_broadcast_target_unknown(sims):
    with pytest.raises(MissingKeyError, match="'xx'"):
        Broadcast("N", to="xx").fit(sims)


# ---------------------------------------------------------------- wrong rank
@pytest.mark.parametrize("cls", [AsSet, AsTimeSeries])
@pytest.mark.parametrize("shape", [(6,), (6, 2, 3, 4)])
def test_as_set_wrong_rank(cls, shape):
    with pytest.raises(ShapeError) as err:
        cls("x").fit({"x": np.zeros(shape)})
    msg = str(err.value)
    assert "'x'" in msg and str(shape) in msg and "(B, " in msg


def test_as_set_wrong_rank_at_transform(sims):
    step = AsSet("x").fit(sims)
    with pytest.raises(ShapeError, match=r"'x'.*\(6,\)"):
        step.transform({"x": np.zeros(6)})


def test_broadcast_wrong_rank(sims):
    with pytest.raises(ShapeError) as err:
        Broadcast("x", to="y").fit(sims)
    msg = str(err.value)
    assert "'x'" in msg and "(6, 4)" in msg and "()" in msg


def test_broadcast_target_without_batch_axis():
    with pytest.raises(ShapeError, match="'M'"):
        Broadcast("N", to="M").fit({"N": 3, "M": 4})


# ---------------------------------------------------------------- support
@pytest.mark.parametrize(
    "step, values, bad",
    [
        (Constrain("v", lower=0), [1.0, 0.0, -1.0, 2.0], 2),
        (Constrain("v", upper=1), [1.0, 0.0, -1.0, 2.0], 2),
        (Constrain("v", lower=0, upper=1), [0.5, 0.0, 1.0, 2.0], 3),
        (Log("v"), [1.0, 0.0, -1.0, 2.0], 2),
        (Sqrt("v"), [1.0, 0.0, -1.0, 2.0], 1),
        (OneHot("v", num_classes=2), [0, 1, 2, -1], 2),
    ],
    ids=["lower", "upper", "both", "log", "sqrt", "onehot"],
)
def test_support_errors_count_values(step, values, bad):
    data = {"v": np.array(values)}
    with pytest.raises(SupportError) as err:
        step.fit(data)
    msg = str(err.value)
    assert "'v'" in msg and f"{bad} of 4" in msg


def test_support_error_at_transform_through_adapter(sims):
    adapter = tutorial_adapter().fit(sims)
    bad = dict(sims, sigma=-sims["sigma"])
    with pytest.raises(SupportError) as err:
        adapter.transform(bad)
    msg = str(err.value)
    assert "'sigma'" in msg and "6 of 6" in msg and "'constrain'" in msg


# ---------------------------------------------------------------- non-finite
@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_batch_names_variable(sims, bad_value):
    bad = dict(sims)
    bad["y"] = sims["y"].copy()
    bad["y"][2, 1] = bad_value
    adapter = tutorial_adapter()
    with pytest.raises(NonFiniteError, match="'y'"):
        adapter.fit(bad)
    adapter.fit(sims)
    with pytest.raises(NonFiniteError, match="'y'"):
        adapter.transform(bad)
    with pytest.raises(NonFiniteError, match="'y'"):
        AsSet("y").fit(bad)


def test_non_finite_checked_before_any_step(sims):
    # sigma is also out of support, but the NaN in x is reported first, before any step runs
    bad = dict(sims, sigma=-sims["sigma"], x=np.full((6, 4), np.nan))
    with pytest.raises(NonFiniteError, match="'x'"):
        tutorial_adapter().fit(bad)


# ---------------------------------------------------------------- concatenate
def test_concatenate_mismatched_leading_shapes():
    data = {"a": np.zeros((5, 2)), "b": np.zeros((4, 1))}
    with pytest.raises(ShapeError) as err:
        Concatenate(["a", "b"], into="t").fit(data)
    msg = str(err.value)
    assert "'a' (5, 2)" in msg and "'b' (4, 1)" in msg and "'t'" in msg


def test_concatenate_mismatched_middle_axis():
    data = {"a": np.zeros((5, 3, 2)), "b": np.zeros((5, 4, 2))}
    with pytest.raises(ShapeError, match="'a' \\(5, 3, 2\\)"):
        Concatenate(["a", "b"], into="t").fit(data)


def test_concatenate_inverse_wrong_size():
    step = Concatenate(["a", "b"], into="t").fit({"a": np.zeros((5, 2)), "b": np.zeros((5, 1))})
    with pytest.raises(ShapeError, match="'t'"):
        step.inverse_transform({"t": np.zeros((5, 4))})


# ---------------------------------------------------------------- inverse
def test_inverse_transform_wrong_last_axis(sims):
    adapter = tutorial_adapter().fit(sims)
    with pytest.raises(ShapeError) as err:
        adapter.inverse_transform({"inference_variables": np.zeros((2, 5, 7))})
    msg = str(err.value)
    assert "'inference_variables'" in msg and "(2, 5, 7)" in msg and "(..., 3)" in msg


def test_inverse_without_inference_variables(sims):
    adapter = make_adapter(AsSet("x")).fit(sims)
    with pytest.raises(ValueError, match="inference_variables"):
        adapter.inverse_transform(np.zeros((2, 3)))


# ---------------------------------------------------------------- params and misc
def test_constrain_param_errors(sims):
    with pytest.raises(ValueError, match="lower"):
        Constrain("sigma").fit(sims)
    with pytest.raises(ValueError, match="lower < upper"):
        Constrain("sigma", lower=1, upper=0).fit(sims)


def test_bad_param_type_names_param(sims):
    with pytest.raises(ValueError, match="'keys'"):
        Sqrt(3).fit(sims)
    with pytest.raises(ValueError, match="'dtype'"):
        make_adapter(Sqrt("N"), dtype="int32").fit(sims)


def test_rename_would_overwrite(sims):
    with pytest.raises(ValueError, match="'x'"):
        Rename("y", "x").fit(sims)


def test_step_that_is_not_a_transform(sims):
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(TypeError, match="'scaler'"):
        Adapter([("scaler", StandardScaler())]).fit(sims)


def test_batch_must_be_a_mapping():
    with pytest.raises(TypeError, match="dict"):
        tutorial_adapter().fit(np.zeros((3, 2)))


def test_from_config_rejects_non_adapter():
    with pytest.raises(ValueError, match="Adapter"):
        Adapter.from_config(json.loads('{"class": "Pipeline"}'))
