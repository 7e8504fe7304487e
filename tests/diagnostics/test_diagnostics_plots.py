"""Every plot renders with Agg to a PNG, with labelled axes and no warnings."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from skabi._arviz import to_arviz  # noqa: E402
from skabi.diagnostics import plots  # noqa: E402

LABELS = [r"$\beta_0$", r"$\beta_1$", r"$\sigma$"]


def _history():
    epochs = pd.RangeIndex(1, 21, name="epoch")
    return pd.DataFrame(
        {
            "loss": np.linspace(2, 0, 20),
            "val_loss": np.r_[np.linspace(2.1, 0.2, 10), [np.nan] * 10],
            "lr": np.geomspace(1e-3, 1e-5, 20),
            "seconds": np.ones(20),
        },
        index=epochs,
    )


def _cases(estimates, targets):
    idata = to_arviz(estimates, true_values=targets)
    prior = {"beta": targets["beta"], "sigma": targets["sigma"], "x": np.zeros((40, 3))}
    tq = {r"$\beta_0 + \beta_1$": lambda p: p["beta"].sum(-1)}
    return {
        "loss": lambda: plots.loss(_history(), moving_average=3),
        "loss_no_val": lambda: plots.loss(_history().drop(columns=["val_loss", "lr"])),
        "recovery": lambda: plots.recovery(
            estimates=estimates, targets=targets, variable_names=LABELS),
        "recovery_container": lambda: plots.recovery(idata, variable_keys=["beta"]),
        "calibration_histogram": lambda: plots.calibration_histogram(
            estimates=estimates, targets=targets, variable_names=LABELS),
        "calibration_ecdf": lambda: plots.calibration_ecdf(idata, variable_names=LABELS),
        "calibration_ecdf_difference": lambda: plots.calibration_ecdf(
            estimates=estimates, targets=targets, difference=True, rank_type="distance",
            test_quantities=tq, color="C2"),
        "calibration_ecdf_tq_only": lambda: plots.calibration_ecdf(
            idata, variable_keys=[], test_quantities=tq, difference=True),
        "z_score_contraction": lambda: plots.z_score_contraction(
            estimates=estimates, targets=targets, variable_keys=["beta"],
            variable_names=LABELS[:2]),
        "pairs_samples": lambda: plots.pairs_samples(
            prior, variable_keys=["beta", "sigma"], variable_names=LABELS),
        "pairs_posterior": lambda: plots.pairs_posterior(
            estimates=estimates, targets=targets, dataset_id=2, variable_names=LABELS),
        "pairs_posterior_container": lambda: plots.pairs_posterior(idata, s=2),
    }


CASE_NAMES = [
    "loss", "loss_no_val", "recovery", "recovery_container", "calibration_histogram",
    "calibration_ecdf", "calibration_ecdf_difference", "calibration_ecdf_tq_only",
    "z_score_contraction", "pairs_samples", "pairs_posterior", "pairs_posterior_container",
]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_plot_renders_without_warnings(name, regression_inputs, tmp_path):
    make = _cases(*regression_inputs)[name]
    n_before = len(plt.get_fignums())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = make()
        fig.savefig(tmp_path / f"{name}.png")
    try:
        assert isinstance(fig, Figure)
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
        assert len(plt.get_fignums()) == n_before + 1  # one new figure, nothing closed
        used = [ax for ax in fig.axes if ax.axison]
        assert used
        for ax in used:
            assert ax.get_xlabel(), (name, ax.get_title())
            assert ax.get_ylabel() or ax.get_title(), name
    finally:
        plt.close(fig)


def test_variable_names_appear_as_titles(regression_inputs):
    fig = plots.recovery(*regression_inputs, variable_names=LABELS)
    try:
        titles = [ax.get_title() for ax in fig.axes if ax.axison]
        assert titles == LABELS
    finally:
        plt.close(fig)


def test_calibration_ecdf_reports_verdict(regression_inputs):
    estimates, targets = regression_inputs
    bad = {k: v.mean(axis=1, keepdims=True) + 0.1 * (v - v.mean(axis=1, keepdims=True))
           for k, v in estimates.items()}
    fig = plots.calibration_ecdf(estimates=bad, targets=targets)
    try:
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert any("OUTSIDE" in t for t in texts)
    finally:
        plt.close(fig)


def test_plot_errors_name_the_problem(regression_inputs):
    estimates, targets = regression_inputs
    with pytest.raises(KeyError, match="'loss'"):
        plots.loss(pd.DataFrame({"val_loss": [1.0]}))
    with pytest.raises(IndexError, match="dataset_id 99"):
        plots.pairs_posterior(estimates=estimates, targets=targets, dataset_id=99)
    with pytest.raises(ValueError, match="variable_names"):
        plots.pairs_samples({"a": np.zeros((5, 2))}, variable_names=["x"])
