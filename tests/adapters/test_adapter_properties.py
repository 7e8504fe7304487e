"""Property tests: inverse_transform(transform(d)) == d and log-det Jacobians match a
central-difference Jacobian (float64), for every invertible transform and whole adapters;
constrained inverses stay strictly inside the support for extreme inputs."""

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from models import tutorial_adapter
from skabi.adapters import (
    AsSet,
    AsTimeSeries,
    Concatenate,
    Constrain,
    Log,
    Rename,
    Sqrt,
    Standardize,
    make_adapter,
)

SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def numerical_log_det(fn, inputs, out_key):
    """log|det J| per batch element of ``inputs -> fn(inputs)[out_key]`` by central differences.

    ``inputs`` maps names to float64 arrays with a common batch axis; the event parts are
    flattened and stacked, so the Jacobian is square when the map preserves dimension.
    """
    keys = list(inputs)
    n = next(iter(inputs.values())).shape[0]
    shapes = [inputs[k].shape for k in keys]
    sizes = [int(np.prod(s[1:], dtype=int)) for s in shapes]
    x = np.concatenate([inputs[k].reshape(n, -1) for k in keys], axis=1)

    def f(flat):
        parts = np.split(flat, np.cumsum(sizes)[:-1], axis=1)
        data = {k: p.reshape(s) for k, p, s in zip(keys, parts, shapes)}
        return np.asarray(fn(data)[out_key], dtype=np.float64).reshape(n, -1)

    d = x.shape[1]
    jac = np.empty((n, d, d))
    for j in range(d):
        h = 1e-6 * (1.0 + np.abs(x[:, j]))
        xp, xm = x.copy(), x.copy()
        xp[:, j] += h
        xm[:, j] -= h
        jac[:, :, j] = (f(xp) - f(xm)) / (2 * h[:, None])
    sign, logdet = np.linalg.slogdet(jac)
    assert np.all(sign != 0)
    return logdet


def floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def event_shapes(draw, min_rank=1, max_rank=3):
    batch = draw(st.integers(2, 4))
    rank = draw(st.integers(min_rank, max_rank))
    return (batch,) + tuple(draw(st.integers(1, 3)) for _ in range(rank - 1))


@st.composite
def constrained_case(draw):
    """(transform, values strictly inside its support, at least 0.03 from any bound)."""
    kind = draw(st.sampled_from(["lower", "upper", "both", "sqrt", "log"]))
    shape = draw(event_shapes())
    lo = draw(floats(-5, 5))
    if kind == "both":
        hi = lo + draw(floats(1, 10))
        p = draw(hnp.arrays(np.float64, shape, elements=floats(0.03, 0.97)))
        return Constrain("v", lower=lo, upper=hi), lo + (hi - lo) * p
    dist = np.exp(draw(hnp.arrays(np.float64, shape, elements=floats(-3, 3))))
    if kind == "lower":
        return Constrain("v", lower=lo), lo + dist
    if kind == "upper":
        return Constrain("v", upper=lo), lo - dist
    return (Sqrt("v") if kind == "sqrt" else Log("v")), dist


def _check_step(step, data, in_keys, out_key):
    step.fit(data)
    out = step.transform(data)
    back = step.inverse_transform({out_key: out[out_key]})
    for k in in_keys:
        np.testing.assert_allclose(back[k], data[k], rtol=1e-9, atol=1e-9)
        assert back[k].shape == data[k].shape
    ldj = step.log_det_jac(data)
    total = sum(ldj.get(k, np.zeros(data[k].shape[0])) for k in in_keys)
    assert total.shape == (data[in_keys[0]].shape[0],)
    expected = numerical_log_det(step.transform, {k: data[k] for k in in_keys}, out_key)
    np.testing.assert_allclose(total, expected, rtol=1e-5, atol=1e-5)


@SETTINGS
@given(constrained_case())
def test_bijections_round_trip_and_log_det(case):
    step, x = case
    _check_step(step, {"v": x}, ["v"], "v")


@SETTINGS
@given(st.data())
def test_standardize_round_trip_and_log_det(data):
    shape = data.draw(event_shapes(min_rank=1, max_rank=3))
    x = data.draw(hnp.arrays(np.float64, shape, elements=floats(-50, 50)))
    _check_step(Standardize(), {"v": x}, ["v"], "v")


@SETTINGS
@given(st.data())
def test_structural_steps_round_trip_and_log_det(data):
    batch = data.draw(st.integers(2, 4))
    width = data.draw(st.integers(1, 3))
    a = data.draw(hnp.arrays(np.float64, (batch, width), elements=floats(-9, 9)))
    b = data.draw(hnp.arrays(np.float64, (batch,), elements=floats(-9, 9)))
    s = data.draw(hnp.arrays(np.float64, (batch, 3), elements=floats(-9, 9)))
    _check_step(Concatenate(["a", "b"], into="c"), {"a": a, "b": b}, ["a", "b"], "c")
    _check_step(Rename("a", "r"), {"a": a}, ["a"], "r")
    _check_step(AsSet("s"), {"s": s}, ["s"], "s")
    _check_step(AsTimeSeries("s"), {"s": s}, ["s"], "s")


@st.composite
def regression_batches(draw):
    batch = draw(st.integers(2, 5))
    n_obs = draw(st.integers(1, 4))
    beta = draw(hnp.arrays(np.float64, (batch, 2), elements=floats(-10, 10)))
    sigma = np.exp(draw(hnp.arrays(np.float64, (batch, 1), elements=floats(-3, 3))))
    rho = draw(hnp.arrays(np.float64, (batch,), elements=floats(-0.95, 0.95)))
    rate = np.exp(draw(hnp.arrays(np.float64, (batch, 2), elements=floats(-3, 3))))
    x = draw(hnp.arrays(np.float64, (batch, n_obs), elements=floats(-10, 10)))
    return {"beta": beta, "sigma": sigma, "rho": rho, "rate": rate, "x": x, "y": x + 1.0,
            "N": n_obs}


def whole_adapters():
    return [
        tutorial_adapter(dtype="float64"),
        make_adapter(
            AsSet(["x", "y"]),
            Constrain("sigma", lower=0),
            Constrain("rho", lower=-1, upper=1),
            Log("rate"),
            Standardize(exclude=["x", "y"]),
            Concatenate(["beta", "rho", "sigma", "rate"], into="theta"),
            Rename("theta", "inference_variables"),
            Concatenate(["x", "y"], into="summary_variables"),
            dtype="float64",
        ),
    ]


@SETTINGS
@pytest.mark.parametrize("index", [0, 1])
@given(sims=regression_batches())
def test_whole_adapter_round_trip_and_log_det(index, sims):
    adapter = whole_adapters()[index].fit(sims)
    names = list(adapter.inference_variables_)
    out, ldj = adapter.transform(sims, log_det_jac=True)
    back = adapter.inverse_transform({"inference_variables": out["inference_variables"]})
    assert set(back) == set(names)
    for k in names:
        np.testing.assert_allclose(back[k], sims[k], rtol=1e-8, atol=1e-8)
    rest = {k: v for k, v in sims.items() if k not in names}
    expected = numerical_log_det(
        lambda params: adapter.transform({**rest, **params}), {k: sims[k] for k in names},
        "inference_variables",
    )
    np.testing.assert_allclose(ldj, expected, rtol=1e-5, atol=1e-5)


EXTREME = np.array([-3e38, -1e30, -1e4, -800, -200, -88, -50, -1e-3, 0.0, 1e-3, 17, 50, 88,
                    200, 800, 1e4, 1e30, 3e38], dtype=np.float32)


@pytest.mark.parametrize("fit_dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "step, lo, hi, inside",
    [
        (Constrain("v", lower=0), 0.0, np.inf, 1.0),
        (Constrain("v", lower=1e3), 1e3, np.inf, 1e3 + 1),
        (Constrain("v", upper=-2.5), -np.inf, -2.5, -3.0),
        (Constrain("v", lower=0, upper=1), 0.0, 1.0, 0.5),
        (Constrain("v", lower=0.1, upper=0.3), 0.1, 0.3, 0.2),
        (Log("v"), 0.0, np.inf, 1.0),
    ],
    ids=["lower0", "lower1e3", "upper", "unit", "narrow", "log"],
)
def test_inverse_strictly_inside_support_for_extreme_inputs(step, lo, hi, inside, fit_dtype):
    x = np.full((3, 1), inside, dtype=fit_dtype)
    adapter = make_adapter(step, Concatenate(["v"], into="inference_variables")).fit({"v": x})
    back = adapter.inverse_transform({"inference_variables": EXTREME[:, None]})["v"]
    assert back.dtype == fit_dtype
    assert np.all(np.isfinite(back))
    assert np.all(back > lo) and np.all(back < hi), back[(back <= lo) | (back >= hi)]
    # the same when the step is used on its own (float64 result, cast to the fit dtype)
    alone = step.inverse_transform({"v": EXTREME.reshape(-1, 1)})["v"].astype(fit_dtype)
    assert np.all(alone > lo) and np.all(alone < hi)


FLOAT32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(z=hnp.arrays(np.float32, (5, 3), elements=FLOAT32))
def test_constrained_inverse_inside_support_any_float32(z):
    data = {"a": np.full((2, 1), 0.5), "b": np.full((2, 1), 0.5), "c": np.full((2, 1), 0.5)}
    adapter = make_adapter(
        Constrain("a", lower=0), Constrain("b", upper=1), Constrain("c", lower=0, upper=1),
        Concatenate(["a", "b", "c"], into="inference_variables"),
    ).fit(data)
    back = adapter.inverse_transform(z)
    assert np.all(back["a"] > 0) and np.all(np.isfinite(back["a"]))
    assert np.all(back["b"] < 1) and np.all(np.isfinite(back["b"]))
    assert np.all((back["c"] > 0) & (back["c"] < 1))


def _under_flush_to_zero(fn, timeout=60.0):
    """Run ``fn()`` in a thread with the CPU's flush-to-zero mode on (shared by numpy).

    A thread, so that a regression to the old endless loop fails the test after
    ``timeout`` seconds instead of hanging the suite.
    """
    torch = pytest.importorskip("torch")
    out = {}

    def work():
        if not torch.set_flush_denormal(True):
            out["skip"] = True
            return
        try:
            out["value"] = fn()
        except BaseException as exc:  # reported in the test's thread
            out["error"] = exc
        finally:
            torch.set_flush_denormal(False)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"no result within {timeout} s under flush-to-zero"
    if out.get("skip"):
        pytest.skip("this CPU has no flush-to-zero mode")
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.mark.parametrize("fit_dtype", [np.float32, np.float64])
def test_constrained_inverse_under_flush_to_zero(fit_dtype):
    # subnormals read as zero: the clip bound must fall back to the smallest normal float
    # (this used to loop forever); draws stay strictly inside the support
    data = {"a": np.full((2, 1), 0.5, dtype=fit_dtype), "c": np.full((2, 1), 0.5, dtype=fit_dtype)}
    adapter = make_adapter(
        Constrain("a", lower=0), Constrain("c", lower=0, upper=1),
        Concatenate(["a", "c"], into="inference_variables"),
    ).fit(data)
    z = {"inference_variables": np.array([[-1e4, -1e4], [1e4, 1e4]])}
    back = _under_flush_to_zero(lambda: adapter.inverse_transform(z))
    assert np.all(back["a"] > 0) and np.all(np.isfinite(back["a"]))
    assert np.all((back["c"] > 0) & (back["c"] < 1))


@SETTINGS
@given(st.data())
def test_constrain_with_bounds_per_dimension_round_trips_with_the_right_log_det(data):
    """A box prior with other bounds per dimension (issue 19: it used to be refused)."""
    width = data.draw(st.integers(1, 3))
    lower = np.array(data.draw(st.lists(floats(-5, 5), min_size=width, max_size=width)))
    span = np.array(data.draw(st.lists(floats(0.5, 5), min_size=width, max_size=width)))
    upper = lower + span
    frac = data.draw(hnp.arrays(np.float64, (data.draw(st.integers(1, 4)), width),
                                elements=floats(0.05, 0.95)))
    x = lower + frac * span
    _check_step(Constrain("v", lower=lower.tolist(), upper=upper), {"v": x}, ["v"], "v")
    one_sided = Constrain("v", lower=lower)
    _check_step(one_sided, {"v": x}, ["v"], "v")
    extreme = Constrain("v", lower=lower, upper=upper).fit({"v": x}).inverse_transform(
        {"v": np.where(np.arange(width) % 2, 1e4, -1e4) * np.ones_like(x)})["v"]
    assert np.all((extreme > lower) & (extreme < upper))


def test_constrain_bounds_per_dimension_name_what_is_wrong():
    from skabi.adapters import make_adapter, Adapter
    from skabi.exceptions import ShapeError, SupportError

    theta = np.array([[0.5, -1.5], [-0.9, 2.5]])
    box = Constrain("theta", lower=[-1, -2], upper=[1, 2])
    with pytest.raises(SupportError, match=r"1 of 2 values of 'theta\[..., 1\]'.*\(-2.0, 2.0\)"):
        box.fit({"theta": theta})
    with pytest.raises(ShapeError, match=r"bounds have 2 elements.*\(batch, ..., 2\)"):
        box.fit({"theta": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="lower < upper"):
        Constrain("theta", lower=[0, 1], upper=[1, 1]).fit({"theta": theta})
    with pytest.raises(ValueError, match="2 and 3 elements"):
        Constrain("theta", lower=[0, 1], upper=[1, 2, 3]).fit({"theta": theta})
    with pytest.raises(ValueError, match="1-D array"):
        Constrain("theta", lower=[[0, 1]]).fit({"theta": theta})
    ok = {"theta": np.array([[0.5, -1.5], [-0.9, 1.5]])}
    adapter = make_adapter(Constrain("theta", lower=np.array([-1.0, -2.0]), upper=[1, 2]))
    adapter.fit(ok)
    again = Adapter.from_config(adapter.get_config())
    np.testing.assert_allclose(again.transform(ok)["theta"], adapter.transform(ok)["theta"])
