"""Inputs: containers and dicts, element names, labels, test quantities, clear errors."""

import numpy as np
import pandas as pd
import pytest

from skabi._arviz import to_arviz
from skabi.diagnostics import (
    calibration_error,
    expected_coverage,
    pit_values,
    posterior_contraction,
    posterior_z_score,
    root_mean_squared_error,
    sbc_ranks,
)
from skabi.diagnostics._inputs import resolve
from skabi.exceptions import MissingKeyError, NonFiniteError, ShapeError

METRICS = [
    sbc_ranks,
    pit_values,
    calibration_error,
    expected_coverage,
    posterior_contraction,
    posterior_z_score,
    root_mean_squared_error,
]


def test_element_names_flatten_trailing_dims(regression_inputs):
    estimates, targets = regression_inputs
    inputs = resolve(estimates=estimates, targets=targets)
    assert inputs.names == ["beta[0]", "beta[1]", "sigma"]
    assert inputs.draws.shape == (40, 100, 3)
    assert inputs.truths.shape == (40, 3)
    np.testing.assert_array_equal(inputs.draws[..., 2], estimates["sigma"][..., 0])


def test_squeezed_and_trailing_one_scalars_agree(regression_inputs):
    estimates, targets = regression_inputs
    squeezed_est = {**estimates, "sigma": estimates["sigma"][..., 0]}
    squeezed_tgt = {**targets, "sigma": targets["sigma"][:, 0]}
    a = pit_values(estimates=estimates, targets=targets)
    b = pit_values(estimates=squeezed_est, targets=squeezed_tgt)
    c = pit_values(estimates=estimates, targets=squeezed_tgt)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    assert list(a.columns) == ["beta[0]", "beta[1]", "sigma"]


@pytest.mark.parametrize("metric", METRICS, ids=lambda f: f.__name__)
def test_container_and_dicts_give_identical_results(regression_inputs, metric):
    estimates, targets = regression_inputs
    idata = to_arviz(estimates, true_values=targets)
    from_container = metric(idata)
    from_dicts = metric(estimates=estimates, targets=targets)
    if isinstance(from_dicts, pd.Series):
        pd.testing.assert_series_equal(from_container, from_dicts)
    else:
        pd.testing.assert_frame_equal(from_container, from_dicts)


def test_variable_keys_and_names(regression_inputs):
    estimates, targets = regression_inputs
    z = posterior_z_score(
        estimates=estimates, targets=targets, variable_keys=["sigma", "beta"],
        variable_names=[r"$\sigma$", r"$\beta_0$", r"$\beta_1$"],
    )
    assert list(z.columns) == [r"$\sigma$", r"$\beta_0$", r"$\beta_1$"]
    full = posterior_z_score(estimates=estimates, targets=targets)
    np.testing.assert_allclose(z.iloc[:, 0], full["sigma"])
    with pytest.raises(ValueError, match="variable_names has 2 labels.*3 elements"):
        posterior_z_score(estimates=estimates, targets=targets, variable_names=["a", "b"])


def test_extra_target_keys_are_ignored(regression_inputs):
    estimates, targets = regression_inputs
    extended = {**targets, "x": np.zeros((40, 7)), "N": 7}
    pd.testing.assert_frame_equal(
        sbc_ranks(estimates=estimates, targets=extended),
        sbc_ranks(estimates=estimates, targets=targets),
    )


def test_container_without_true_values_says_pass_targets(regression_inputs):
    estimates, targets = regression_inputs
    idata = to_arviz(estimates)
    with pytest.raises(ValueError, match="no 'true_values' group.*targets="):
        calibration_error(idata)
    # explicit targets complete such a container
    pd.testing.assert_frame_equal(
        calibration_error(idata, targets=targets),
        calibration_error(estimates=estimates, targets=targets),
    )


def test_dicts_without_targets():
    with pytest.raises(ValueError, match="targets="):
        sbc_ranks(estimates={"a": np.zeros((3, 4))})


def test_missing_variable_names_it(regression_inputs):
    estimates, targets = regression_inputs
    with pytest.raises(MissingKeyError, match="'sigma'"):
        sbc_ranks(estimates=estimates, targets={"beta": targets["beta"]})
    with pytest.raises(MissingKeyError, match="'sigmaa'.*Did you mean 'sigma'"):
        sbc_ranks(estimates=estimates, targets=targets, variable_keys=["sigmaa"])


def test_mismatched_datasets_names_variable_and_shapes(regression_inputs):
    estimates, targets = regression_inputs
    with pytest.raises(ShapeError, match=r"targets\['beta'\] has shape \(39, 2\).*40 datasets"):
        sbc_ranks(estimates=estimates, targets={**targets, "beta": targets["beta"][:39]})
    bad = {**estimates, "sigma": estimates["sigma"][:30]}
    with pytest.raises(ShapeError, match=r"estimates\['sigma'\] has shape \(30, 100, 1\)"):
        sbc_ranks(estimates=bad, targets=targets)


def test_mismatched_element_counts_names_variable(regression_inputs):
    estimates, targets = regression_inputs
    with pytest.raises(ShapeError, match=r"targets\['beta'\] has shape \(40, 3\).*\(40, 2\)"):
        sbc_ranks(estimates=estimates, targets={**targets, "beta": np.zeros((40, 3))})


def test_nan_is_reported_with_variable(regression_inputs):
    estimates, targets = regression_inputs
    bad = {**estimates, "beta": estimates["beta"].copy()}
    bad["beta"][3, 5, 1] = np.nan
    with pytest.raises(NonFiniteError, match=r"estimates\['beta'\] holds 1 NaN"):
        sbc_ranks(estimates=bad, targets=targets)
    bad_t = {**targets, "sigma": targets["sigma"].copy()}
    bad_t["sigma"][0] = np.inf
    with pytest.raises(NonFiniteError, match=r"targets\['sigma'\]"):
        posterior_z_score(estimates=estimates, targets=bad_t)


def test_no_estimates_is_a_clear_error():
    with pytest.raises(TypeError, match="estimates="):
        sbc_ranks()


def test_test_quantities_on_draws_and_truths(regression_inputs):
    estimates, targets = regression_inputs
    ranks = sbc_ranks(
        estimates=estimates, targets=targets, variable_keys=[],
        test_quantities={"b0+b1": lambda p: p["beta"].sum(axis=-1)},
    )
    assert list(ranks.columns) == ["b0+b1"]
    total = estimates["beta"].sum(-1)
    expected = (total < targets["beta"].sum(-1)[:, None]).sum(1)
    np.testing.assert_array_equal(ranks["b0+b1"].to_numpy(), expected)


def test_test_quantities_with_data_one_or_two_arguments(regression_inputs):
    estimates, targets = regression_inputs
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(40, 5))}

    def merged(d):  # BayesFlow style: parameters and data in one dict
        return (d["beta"][:, :1] * d["x"]).sum(-1)

    def split(params, data):
        return (params["beta"][:, :1] * data["x"]).sum(-1)

    a = pit_values(estimates=estimates, targets=targets, test_quantities={"q": merged},
                   data=data)
    b = pit_values(estimates=estimates, targets=targets, test_quantities={"q": split},
                   data=data)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["beta[0]", "beta[1]", "sigma", "q"]
    with pytest.raises(ShapeError, match="test_quantities\\['bad'\\]"):
        pit_values(estimates=estimates, targets=targets,
                   test_quantities={"bad": lambda p: p["beta"]})


@pytest.mark.slow  # a fresh interpreter importing arviz and matplotlib: 2-4 s
def test_diagnostics_import_neither_torch_nor_the_estimator():
    import subprocess
    import sys

    code = (
        "import sys, skabi.diagnostics, skabi.diagnostics.plots; "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('skabi.estimator', "
        "'skabi.networks', 'skabi.adapters'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True)
