"""Tests of Adapter / make_adapter: acceptance shapes, sample-time behaviour, sklearn
params, fluent form, inverse_transform, log-det and config round trips."""

import json

import numpy as np
import pytest
from sklearn.base import clone

from models import tutorial_steps
from skabi.adapters import (
    Adapter,
    AsSet,
    Broadcast,
    Concatenate,
    Log,
    Rename,
    Sqrt,
    Standardize,
    make_adapter,
)
from skabi.exceptions import MissingKeyError, NotFittedError, ShapeError


def simulate(batch_size=500, n_obs=11, seed=0):
    rng = np.random.default_rng(seed)
    beta = rng.normal(0, 2, size=(batch_size, 2))
    sigma = rng.gamma(2.0, 0.5, size=(batch_size, 1))
    x = rng.normal(size=(batch_size, n_obs))
    y = beta[:, :1] + beta[:, 1:] * x + sigma * rng.normal(size=(batch_size, n_obs))
    return {"beta": beta, "sigma": sigma, "x": x, "y": y, "N": n_obs}


def fluent():
    return (
        Adapter()
        .broadcast("N", to="x")
        .as_set(["x", "y"])
        .constrain("sigma", lower=0)
        .sqrt("N")
        .concatenate(["beta", "sigma"], into="inference_variables")
        .concatenate(["x", "y"], into="summary_variables")
        .rename("N", "inference_conditions")
    )


@pytest.fixture
def sims():
    return simulate()


@pytest.fixture
def adapter(sims):
    return make_adapter(*tutorial_steps()).fit(sims)


def test_acceptance_shapes(sims):
    out = make_adapter(*tutorial_steps()).fit_transform(sims)
    assert out["summary_variables"].shape == (500, 11, 2)
    assert out["inference_conditions"].shape == (500, 1)
    assert out["inference_variables"].shape == (500, 3)
    assert set(out) == {"summary_variables", "inference_conditions", "inference_variables"}
    for v in out.values():
        assert v.dtype == np.float32
    np.testing.assert_allclose(out["inference_conditions"], np.sqrt(11), rtol=1e-6)
    np.testing.assert_allclose(out["inference_variables"][:, :2], sims["beta"], rtol=1e-6)


def test_acceptance_with_numpy_scalar_meta():
    sims = simulate(n_obs=4)
    sims["N"] = np.array(4)
    out = make_adapter(*tutorial_steps()).fit_transform(sims)
    assert out["summary_variables"].shape == (500, 4, 2)


def test_dtype_param(sims):
    out = make_adapter(*tutorial_steps(), dtype="float64").fit_transform(sims)
    assert all(v.dtype == np.float64 for v in out.values())


def test_transform_does_not_mutate_or_alias(sims):
    snap = {k: np.array(v, copy=True) for k, v in sims.items()}
    adapter = make_adapter(Keep_x := AsSet("x"), Rename("y", "w")).fit(sims)
    out = adapter.transform(sims)
    for k in snap:
        np.testing.assert_array_equal(sims[k], snap[k])
    out["w"][...] = 0.0
    out["beta"][...] = 0.0
    np.testing.assert_array_equal(sims["y"], snap["y"])
    np.testing.assert_array_equal(sims["beta"], snap["beta"])
    assert Keep_x.keys == "x"


def test_sample_time_skips_parameter_steps(adapter, sims):
    observed = {k: sims[k] for k in ("x", "y", "N")}
    out = adapter.transform(observed)
    assert set(out) == {"summary_variables", "inference_conditions"}
    assert out["summary_variables"].shape == (500, 11, 2)


def test_sample_time_other_set_size(adapter):
    observed = {k: v for k, v in simulate(3, n_obs=40).items() if k in ("x", "y", "N")}
    out = adapter.transform(observed)
    assert out["summary_variables"].shape == (3, 40, 2)
    np.testing.assert_allclose(out["inference_conditions"], np.sqrt(40), rtol=1e-6)


def test_partial_parameters_raise_naming_missing_and_available(adapter, sims):
    partial = {k: v for k, v in sims.items() if k != "sigma"}
    with pytest.raises(MissingKeyError) as err:
        adapter.transform(partial)
    msg = str(err.value)
    assert "'sigma'" in msg and "'beta'" in msg and "concatenate-1" in msg


def test_make_adapter_names():
    adapter = make_adapter(*tutorial_steps())
    assert [n for n, _ in adapter.steps] == [
        "broadcast", "asset", "constrain", "sqrt", "concatenate-1", "concatenate-2", "rename",
    ]


def test_fluent_equals_make_adapter(sims):
    a, b = make_adapter(*tutorial_steps()), fluent()
    assert [n for n, _ in a.steps] == [n for n, _ in b.steps]
    assert [type(s) for _, s in a.steps] == [type(s) for _, s in b.steps]
    assert [s.get_params() for _, s in a.steps] == [s.get_params() for _, s in b.steps]
    oa, ob = a.fit_transform(sims), b.fit_transform(sims)
    assert set(oa) == set(ob)
    for k in oa:
        np.testing.assert_array_equal(oa[k], ob[k])


def test_fluent_keeps_custom_names():
    adapter = Adapter([("mine", Sqrt("N"))]).sqrt("M").log("L")
    assert [n for n, _ in adapter.steps] == ["mine", "sqrt", "log"]


def test_get_set_params_and_clone(sims):
    adapter = make_adapter(*tutorial_steps())
    params = adapter.get_params(deep=True)
    assert params["constrain__lower"] == 0
    assert params["concatenate-1__into"] == "inference_variables"
    assert params["dtype"] == "float32"
    adapter.set_params(constrain__lower=-1.0, dtype="float64")
    assert adapter.named_steps["constrain"].lower == -1.0
    twin = clone(adapter)
    assert twin is not adapter
    assert twin.named_steps["constrain"] is not adapter.named_steps["constrain"]
    assert twin.get_params(deep=True).keys() == adapter.get_params(deep=True).keys()
    assert twin.named_steps["constrain"].lower == -1.0
    assert not hasattr(twin, "output_shapes_")
    out = twin.fit_transform(sims)
    assert out["inference_variables"].dtype == np.float64
    # replacing a whole step by name
    adapter.set_params(sqrt=Log("N"))
    assert isinstance(adapter.named_steps["sqrt"], Log)
    assert isinstance(adapter[3], Log) and len(adapter) == 7 and len(adapter[:2]) == 2


def test_step_names_validated_in_fit(sims):
    with pytest.raises(ValueError, match="unique"):
        Adapter([("a", Sqrt("N")), ("a", Sqrt("N"))]).fit(sims)
    with pytest.raises(ValueError, match="__"):
        Adapter([("a__b", Sqrt("N"))]).fit(sims)
    with pytest.raises(TypeError, match="instance"):
        Adapter([("a", Sqrt)]).fit(sims)


def test_inverse_transform_any_leading_shape(adapter, sims):
    rng = np.random.default_rng(3)
    draws = rng.normal(size=(4, 100, 3)).astype(np.float32)
    back = adapter.inverse_transform({"inference_variables": draws})
    assert set(back) == {"beta", "sigma"}
    assert back["beta"].shape == (4, 100, 2) and back["sigma"].shape == (4, 100, 1)
    assert back["beta"].dtype == np.float64
    assert np.all(back["sigma"] > 0)
    np.testing.assert_allclose(back["sigma"], np.log1p(np.exp(draws[..., 2:].astype(float))))


def test_round_trip_on_batch(adapter, sims):
    out = make_adapter(*tutorial_steps(), dtype="float64").fit(sims).transform(sims)
    back = adapter.inverse_transform({"inference_variables": out["inference_variables"]})
    np.testing.assert_allclose(back["beta"], sims["beta"], rtol=1e-10)
    np.testing.assert_allclose(back["sigma"], sims["sigma"], rtol=1e-8)


def test_bayesflow_spellings_of_the_two_directions(adapter, sims):
    out = {"inference_variables": adapter(sims)["inference_variables"]}
    expected = adapter.inverse_transform(out)
    for back in (adapter(out, inverse=True), adapter.inverse(out)):
        assert set(back) == {"beta", "sigma"}
        for key in back:
            np.testing.assert_array_equal(back[key], expected[key])
    np.testing.assert_allclose(back["beta"], sims["beta"], rtol=1e-5)
    with pytest.raises(TypeError, match="forward direction"):
        adapter(out, inverse=True, log_det_jac=True)


def test_inverse_trailing_shapes_and_dtypes_from_fit():
    rng = np.random.default_rng(0)
    data = {"a": rng.normal(size=(8, 2, 3)).astype(np.float32), "b": rng.normal(size=8)}
    adapter = make_adapter(Concatenate(["a"], into="tmp"), Rename("tmp", "a2")).fit(data)
    assert adapter.inference_variables_ == {}
    adapter = make_adapter(
        Standardize(),
        Concatenate(["b", "c"], into="inference_variables"),
    )
    data = {"b": rng.normal(size=8), "c": rng.normal(size=(8, 2)).astype(np.float32)}
    adapter.fit(data)
    assert adapter.inference_variables_ == {"b": (), "c": (2,)}
    assert adapter.n_inference_dims_ == 3
    back = adapter.inverse_transform(np.zeros((5, 3)))
    assert back["b"].shape == (5,) and back["c"].shape == (5, 2)
    assert back["c"].dtype == np.float32 and back["b"].dtype == np.float64
    np.testing.assert_allclose(back["c"], np.broadcast_to(data["c"].astype(float).mean(0), (5, 2)),
                               rtol=1e-6)


def test_log_det_jac_tutorial(adapter, sims):
    out, ldj = adapter.transform(sims, log_det_jac=True)
    assert ldj.shape == (500,) and ldj.dtype == np.float64
    # only Constrain(lower=0) touches inference variables: log dz/dsigma = -log(1 - exp(-sigma))
    np.testing.assert_allclose(ldj, -np.log(-np.expm1(-sims["sigma"][:, 0])))


def test_log_det_jac_zero_without_bijections(sims):
    adapter = make_adapter(Concatenate(["beta", "sigma"], into="inference_variables")).fit(sims)
    _, ldj = adapter.transform(sims, log_det_jac=True)
    np.testing.assert_array_equal(ldj, np.zeros(500))


def test_log_det_jac_ignores_other_variables(sims):
    base = [Concatenate(["beta", "sigma"], into="inference_variables")]
    plain = make_adapter(*base).fit(sims)
    more = make_adapter(Sqrt("N"), Log("sigma"), Standardize(["x"]), *base).fit(sims)
    _, l0 = plain.transform(sims, log_det_jac=True)
    _, l1 = more.transform(sims, log_det_jac=True)
    np.testing.assert_allclose(l1 - l0, -np.log(sims["sigma"][:, 0]))


def test_log_det_jac_needs_inference_variables(adapter, sims):
    observed = {k: sims[k] for k in ("x", "y", "N")}
    with pytest.raises(ValueError, match="inference_variables"):
        adapter.transform(observed, log_det_jac=True)


def test_log_det_jac_through_non_invertible_step_raises():
    data = {"k": np.array(2), "x": np.zeros((4, 3))}
    adapter = make_adapter(
        Broadcast("k", to="x"), Concatenate(["k"], into="inference_variables")
    ).fit(data)
    with pytest.raises(ValueError, match="non-invertible"):
        adapter.transform(data, log_det_jac=True)
    with pytest.raises(ValueError, match="not invertible"):
        adapter.inverse_transform(np.zeros((2, 1)))


def test_config_round_trip(sims):
    steps = tutorial_steps()
    steps.insert(4, Standardize(exclude="N"))
    adapter = make_adapter(*steps, dtype="float64").fit(sims)
    assert adapter.named_steps["standardize"].keys_ == ["beta", "sigma", "x", "y"]
    config = json.loads(json.dumps(adapter.get_config()))
    rebuilt = Adapter.from_config(config)
    assert [n for n, _ in rebuilt.steps] == [n for n, _ in adapter.steps]
    assert rebuilt.get_params(deep=False)["dtype"] == "float64"
    for data in (sims, {k: sims[k] for k in ("x", "y", "N")}):
        a, b = adapter.transform(data), rebuilt.transform(data)
        assert set(a) == set(b)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    _, la = adapter.transform(sims, log_det_jac=True)
    _, lb = rebuilt.transform(sims, log_det_jac=True)
    np.testing.assert_array_equal(la, lb)
    z = np.random.default_rng(1).normal(size=(2, 3, 3))
    ia, ib = adapter.inverse_transform(z), rebuilt.inverse_transform(z)
    for k in ia:
        np.testing.assert_array_equal(ia[k], ib[k])
    assert rebuilt.inference_variables_ == adapter.inference_variables_


def test_config_of_unfitted_adapter():
    config = json.loads(json.dumps(make_adapter(*tutorial_steps()).get_config()))
    rebuilt = Adapter.from_config(config)
    with pytest.raises(NotFittedError):
        rebuilt.inverse_transform(np.zeros((1, 3)))


def test_config_unknown_class(adapter):
    config = adapter.get_config()
    config["steps"][2]["class"] = "Constrian"
    with pytest.raises(ValueError, match="Constrian") as err:
        Adapter.from_config(config)
    assert "Did you mean 'Constrain'" in str(err.value)
    config["steps"][2]["class"] = "os.system"
    with pytest.raises(ValueError, match="Unknown adapter step class"):
        Adapter.from_config(config)


def test_inverse_needs_fit():
    with pytest.raises(NotFittedError):
        make_adapter(*tutorial_steps()).inverse_transform(np.zeros((1, 3)))


def test_inverse_wrong_last_axis(adapter):
    with pytest.raises(ShapeError, match="inference_variables") as err:
        adapter.inverse_transform({"inference_variables": np.zeros((10, 4))})
    assert "(10, 4)" in str(err.value) and "3" in str(err.value)


def test_stateless_adapter_transforms_without_fit(sims):
    out = make_adapter(*tutorial_steps()).transform(sims)
    assert out["inference_variables"].shape == (500, 3)
    with pytest.raises(NotFittedError, match="standardize"):
        make_adapter(AsSet("x"), Standardize()).transform(sims)


def test_clone_of_fluent_adapter_is_unfitted_copy(sims):
    adapter = fluent().fit(sims)
    twin = clone(adapter)
    assert [n for n, _ in twin.steps] == [n for n, _ in adapter.steps]
    assert not hasattr(twin.named_steps["concatenate-1"], "sizes_")
    assert hasattr(adapter.named_steps["concatenate-1"], "sizes_")


def test_standardize_with_explicit_keys_skips_absent_ones_at_transform():
    """Standardize(["theta", "x"]) used to train and then fail in sample(), where theta is
    absent; each variable has its own statistics, so an absent one is skipped. Fitting
    still needs all of them."""
    rng = np.random.default_rng(0)
    batch = {"theta": rng.normal(size=(50, 2)), "x": rng.normal(3.0, 2.0, size=(50, 4))}
    adapter = make_adapter(Standardize(["theta", "x"]), Rename("theta", "inference_variables"),
                           Rename("x", "inference_conditions")).fit(batch)
    out = adapter.transform({"x": batch["x"]})
    assert sorted(out) == ["inference_conditions"]
    np.testing.assert_allclose(out["inference_conditions"].mean(axis=0), 0, atol=1e-6)
    with pytest.raises(MissingKeyError, match=r"needs \['theta'\]"):
        Standardize(["theta", "x"]).fit({"x": batch["x"]})
