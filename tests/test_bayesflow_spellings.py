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


# ---------------------------------------------------------------- refused, naming skabi's
ESTIMATORS = ["AmortizedPosterior", "AmortizedPointEstimator", "AmortizedModelComparison",
              "AmortizedLikelihood", "AmortizedMultilevelPosterior"]


def _estimator(name, **kwargs):
    import skabi

    return getattr(skabi, name)(**kwargs)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fit_epochs_names_the_constructor(name):
    with pytest.raises(TypeError, match=rf"skabi sets epochs on the estimator: "
                                        rf"{name}\(epochs=50\)"):
        _estimator(name).fit(Gaussian(n_obs=5), epochs=50)
    with pytest.raises(TypeError, match=rf"skabi sets batch_size on the estimator: "
                                        rf"{name}\(batch_size=64\)"):
        _estimator(name).fit(Gaussian(n_obs=5), batch_size=64)


def test_fit_simulator_keyword_names_the_positional_form():
    with pytest.raises(TypeError, match=r"takes the simulator as its first argument: "
                                        r"AmortizedPosterior\(\.\.\.\)\.fit\(simulator\)"):
        tiny_estimator().fit(simulator=Gaussian(n_obs=5))


def test_num_batches_per_epoch_names_batches_per_epoch():
    import skabi

    with pytest.raises(TypeError, match=r"batches_per_epoch and sets it on the estimator: "
                                        r"AmortizedPosterior\(batches_per_epoch=200\)"):
        tiny_estimator().fit(Gaussian(n_obs=5), num_batches_per_epoch=200)
    with pytest.raises(TypeError, match=r"AmortizedPosterior\(batches_per_epoch=200\)"):
        skabi.AmortizedPosterior(num_batches_per_epoch=200)


@pytest.mark.parametrize("method, spelling", [
    ("fit_online", r"AmortizedPosterior\(epochs=\.\.\., batches_per_epoch=\.\.\., "
                   r"batch_size=\.\.\.\)\.fit\(simulator\)"),
    ("fit_offline", r"\.fit\(bank\)"),
    ("fit_disk", r'\.fit\("bank\.zarr"\)'),
])
def test_workflow_methods_name_fit(method, spelling):
    est = tiny_estimator()
    with pytest.raises(AttributeError, match=spelling):
        getattr(est, method)
    assert not hasattr(est, method)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_thing'"):
        est.no_such_thing   # noqa: B018 (other names: Python's own error)


def test_save_filepath_names_the_positional_form(tmp_path):
    with pytest.raises(TypeError, match=r"save\(\) got BayesFlow's keyword 'filepath'.*"
                                        r"est\.save\(path\)"):
        tiny_estimator().save(filepath=tmp_path / "model.skabi")


@pytest.mark.parametrize("method", ["plot_default_diagnostics", "compute_default_diagnostics"])
def test_test_data_names_the_positional_form(method):
    with pytest.raises(TypeError, match=rf"'test_data'.*est\.{method}\(val_sims\)"):
        getattr(tiny_estimator(), method)(test_data={})


@pytest.mark.parametrize("value", [["inference_variables"], "all"])
def test_standardize_list_names_the_adapter_step(value):
    with pytest.raises(TypeError, match=r"skabi's standardize is True or False.*"
                                        r"Standardize step to the adapter"):
        tiny_estimator(standardize=value).fit(Gaussian(n_obs=5))


def test_signatures_and_params_are_the_originals():
    import inspect

    import skabi

    assert str(inspect.signature(skabi.AmortizedPosterior.fit)) == \
        "(self, X, y=None, *, resume=False)"
    assert "num_batches_per_epoch" not in skabi.AmortizedPosterior().get_params()
    assert "batches_per_epoch" in skabi.AmortizedPosterior().get_params()


def test_default_return_indexed_by_a_variable_names_the_group():
    import arviz as az

    simulator = Gaussian(n_obs=5)
    est = tiny_estimator().fit(simulator)
    draws = est.sample(simulator.sample(2, random_state=1), 20)
    if int(az.__version__.split(".")[0]) >= 1:
        pytest.skip("arviz >= 1.0 returns an xarray.DataTree, whose KeyError is xarray's")
    with pytest.raises(KeyError, match=r"draws\.posterior\['theta'\].*return_type='numpy'"):
        draws["theta"]
    assert draws["posterior"]["theta"].shape[:2] == (1, 20)
    assert isinstance(draws, az.InferenceData)
    with pytest.raises(KeyError):
        draws["no_such_group"]
