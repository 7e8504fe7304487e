"""The container from to_arviz works with ArviZ's own tools (the recipes of doc/arviz.rst)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from skabi._arviz import arviz_major_version, to_arviz  # noqa: E402
from skabi.diagnostics import calibration_error, pit_values  # noqa: E402

az = pytest.importorskip("arviz")


@pytest.fixture
def idata(regression_inputs):
    estimates, targets = regression_inputs
    rng = np.random.default_rng(5)
    return to_arviz(estimates, true_values=targets, log_q=rng.normal(size=(40, 100)))


@pytest.mark.skipif(arviz_major_version() >= 1, reason="arviz 0.x InferenceData recipes")
def test_summary_of_one_dataset(idata, regression_inputs):
    estimates, _ = regression_inputs
    one = idata.sel(dataset=0)
    summary = az.summary(one, kind="stats")
    assert list(summary.index) == ["beta[0]", "beta[1]", "sigma"]
    np.testing.assert_allclose(summary.loc["beta[1]", "mean"],
                               estimates["beta"][0, :, 1].mean(), atol=1e-3)
    full = az.summary(one)  # diagnostics too: r_hat is NaN for a single chain
    assert full["r_hat"].isna().all()


@pytest.mark.skipif(arviz_major_version() >= 1, reason="arviz 0.x InferenceData recipes")
# arviz 0.23's own matplotlib backend trips a deprecation of matplotlib 3.11
@pytest.mark.filterwarnings("ignore:Passing a dict or None as alias_mapping")
def test_plot_posterior_of_one_dataset(idata):
    axes = az.plot_posterior(idata.sel(dataset=0))
    try:
        assert np.size(axes) == 3
    finally:
        plt.close(np.ravel(axes)[0].figure)


@pytest.mark.skipif(arviz_major_version() >= 1, reason="arviz 0.x plot_ecdf")
def test_arviz_sbc_plot_from_skabi_pit(idata):
    pit = pit_values(idata)
    ax = az.plot_ecdf(
        pit["beta[0]"].to_numpy(copy=True),
        cdf=stats.uniform().cdf,
        eval_points=np.linspace(0, 1, 100),
        difference=True,
        confidence_bands=True,
    )
    try:
        assert ax.lines
    finally:
        plt.close(ax.figure)


def test_true_values_survive_dataset_selection(idata):
    """Metrics on the container agree with the ones on its true_values group."""
    result = calibration_error(idata)
    assert list(result.index) == ["beta[0]", "beta[1]", "sigma"]
