"""Constrain(method="reject"): the values pass unchanged; the bounds say which draws to keep."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skabi.adapters import Adapter, Concatenate, Constrain, Rename, make_adapter
from skabi.exceptions import SupportError


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_values_inside_the_bounds_pass_unchanged_with_zero_log_det(data):
    b = data.draw(st.integers(1, 6))
    lo = data.draw(st.floats(-1e3, 1e3))
    width = data.draw(st.floats(1e-3, 1e3))
    x = data.draw(hnp.arrays(np.float64, (b, 2), elements=st.floats(
        lo + 1e-3 * width, lo + (1 - 1e-3) * width)))
    step = Constrain("v", lower=lo, upper=lo + width, method="reject").fit({"v": x})
    z = step.transform({"v": x})["v"]
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(step.inverse_transform({"v": z})["v"], x)
    np.testing.assert_array_equal(step.log_det_jac({"v": x})["v"], np.zeros(b))


def test_values_outside_the_bounds_are_refused_as_with_the_map():
    step = Constrain("v", lower=0, upper=1, method="reject").fit({"v": np.full((3, 1), 0.5)})
    with pytest.raises(SupportError, match="'v' lie outside the support"):
        step.transform({"v": np.array([[0.5], [1.5]])})


def test_the_inverse_does_not_clip_what_the_estimator_must_reject():
    step = Constrain("v", lower=0, upper=1, method="reject").fit({"v": np.full((3, 1), 0.5)})
    np.testing.assert_array_equal(step.inverse_transform({"v": np.array([[-2.0], [3.0]])})["v"],
                                  [[-2.0], [3.0]])


def test_support_mask_closed_bounds_per_element_and_over_trailing_axes():
    step = Constrain("v", lower=[-1, 0], upper=[1, 2], method="reject")
    step.fit({"v": np.zeros((2, 2)) + [0, 1]})
    v = np.array([[[-1.0, 2.0], [0.0, 2.1]], [[1.2, 1.0], [0.9, 0.0]]])    # (2, 2, 2)
    np.testing.assert_array_equal(step.support_mask({"v": v}, (2, 2)),
                                  [[True, False], [False, True]])
    one_sided = Constrain("s", lower=0, method="reject").fit({"s": np.ones((2, 3))})
    s = np.array([[[1.0, 0.0, 5.0], [1.0, -1e-9, 5.0]]])                    # (1, 2, 3)
    np.testing.assert_array_equal(one_sided.support_mask({"s": s}, (1, 2)), [[True, False]])


def test_the_adapter_reports_which_draws_lie_inside_after_concatenation():
    sims = {"a": np.full((4, 1), 0.5), "b": np.full((4, 2), 0.5), "x": np.zeros((4, 1))}
    adapter = make_adapter(Constrain("a", lower=0, upper=1, method="reject"),
                           Constrain("b", lower=0),
                           Concatenate(["a", "b"], into="inference_variables"),
                           Rename("x", "inference_conditions")).fit(sims)
    assert adapter.rejects_draws
    z = np.zeros((2, 3, 3))
    z[0, 1, 0] = 1.5            # 'a' outside [0, 1]
    z[1, 2, 1] = -50.0          # 'b' mapped by softplus: always inside
    user, inside = adapter._inverse({"inference_variables": z}, support=True)
    np.testing.assert_array_equal(inside, [[True, False, True], [True, True, True]])
    assert user["a"].shape == (2, 3, 1) and np.all(user["b"] > 0)
    assert adapter._inverse({"inference_variables": z})[1] is None


def test_the_default_map_rejects_nothing():
    sims = {"a": np.full((4, 1), 0.5), "x": np.zeros((4, 1))}
    adapter = make_adapter(Constrain("a", lower=0, upper=1), Rename("a", "inference_variables"),
                           Rename("x", "inference_conditions")).fit(sims)
    assert not adapter.rejects_draws
    _, inside = adapter._inverse({"inference_variables": np.full((2, 5, 1), 9.0)}, support=True)
    assert inside.shape == (2, 5) and inside.all()


def test_fluent_spelling_and_config_round_trip_keep_the_method():
    sims = {"p": np.full((4, 1), 0.25)}
    adapter = Adapter().constrain("p", lower=0, upper=1, method="reject").rename(
        "p", "inference_variables")
    adapter.fit(sims)
    rebuilt = Adapter.from_config(json.loads(json.dumps(adapter.get_config())))
    assert rebuilt.steps[0][1].method == "reject"
    rebuilt.fit(sims)
    assert rebuilt.rejects_draws


def test_an_unknown_method_is_refused_when_fitting():
    with pytest.raises(ValueError, match="'method' parameter of Constrain must be"):
        Constrain("p", lower=0, upper=1, method="clip").fit({"p": np.full((2, 1), 0.5)})
