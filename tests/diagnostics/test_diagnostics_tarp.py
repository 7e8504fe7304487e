"""TARP (Lemos et al. 2023), the ECDF-difference path and the latent-space check."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from skabi.diagnostics import tarp, tarp_coverage, tarp_values  # noqa: E402
from skabi.diagnostics import plots  # noqa: E402
from skabi.diagnostics.plots.calibration import ecdf_path  # noqa: E402


def _task_g(scale, seed=0, n=400, draws=400):
    """Task G (2-D Gaussian, 10 observations): exact posterior draws, sd times ``scale``."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(n, 2))
    x = theta[:, None, :] + rng.normal(size=(n, 10, 2))
    mean, sd = x.sum(axis=1) / 11, 11 ** -0.5
    return {"theta": mean[:, None] + scale * sd * rng.normal(size=(n, draws, 2))}, {"theta": theta}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tarp_exact_posterior_inside_band_halved_sd_outside(seed):
    exact = tarp(*_task_g(1.0, seed))
    assert exact["inside"] and exact["error"] < exact["band"]
    narrow = tarp(*_task_g(0.5, seed))
    assert not narrow["inside"] and narrow["error"] > 2 * narrow["band"]
    assert not tarp(*_task_g(2.0, seed))["inside"]       # too wide fails too


def test_tarp_values_are_uniform_and_seeded():
    est, tgt = _task_g(1.0)
    f = tarp_values(est, tgt)
    assert f.shape == (400,) and 0 < f.min() and f.max() < 1
    np.testing.assert_array_equal(f, tarp_values(est, tgt))
    assert not np.array_equal(f, tarp_values(est, tgt, random_state=1))
    curve = tarp_coverage(est, tgt)
    assert list(curve.columns) == ["credibility", "coverage", "lower", "upper"]
    assert np.all(np.diff(curve["coverage"]) >= 0)
    with pytest.raises(ValueError, match="references has shape"):
        tarp_values(est, tgt, references=np.zeros((3, 2)))
    fig = plots.tarp(est, tgt)
    assert fig.axes[0].get_xlabel() == "Credibility level"
    plt.close(fig)


def test_ecdf_difference_falls_across_a_gap_in_the_ranks():
    # every PIT value >= 0.5: ECDF(z) - z is -z on [0, 0.5), not 0
    pit = np.linspace(0.5, 0.99, 50)
    x, y = ecdf_path(pit, difference=True)
    np.testing.assert_allclose(np.interp([0.2, 0.47], x, y), [-0.2, -0.47])
    # the drawn line of the plot follows it (the old step drawing stayed at 0)
    rng = np.random.default_rng(0)
    theta = rng.normal(size=50)
    draws = theta[:, None] - 10 + rng.normal(size=(50, 100))   # all ranks at the top
    fig = plots.calibration_ecdf({"t": draws}, {"t": theta}, difference=True)
    line = next(ln for ln in fig.axes[0].get_lines() if ln.get_label() == "Rank ECDF")
    path = line.get_path().vertices
    assert np.interp(0.47, path[:, 0], path[:, 1]) < -0.4
    plt.close(fig)


def test_latent_space_plot_and_errors():
    fig = plots.latent_space(np.random.default_rng(0).normal(size=(300, 2)),
                             variable_names=["a", "b"])
    assert fig.axes[2].get_xlabel() == "a"
    plt.close(fig)
    with pytest.raises(ValueError, match="NaN or infinite"):
        plots.latent_space(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="shape \\(n, D\\)"):
        plots.latent_space(np.zeros(5))


def test_estimator_latent_is_standard_normal_shaped_and_in_default_plots():
    from models import Gaussian, tiny_estimator

    est = tiny_estimator().fit(Gaussian())
    sims = Gaussian().sample(200, random_state=3)
    z = est.latent(sims)
    assert z.shape == (200, 2) and np.all(np.isfinite(z))
    figs = est.plot_default_diagnostics(Gaussian().sample(40, random_state=4), num_samples=50)
    assert {"tarp", "latent_space"} <= set(figs)
    plt.close("all")
    frame = est.compute_default_diagnostics(Gaussian().sample(40, random_state=4),
                                            num_samples=50)
    assert set(frame.attrs["tarp"]) == {"error", "band", "inside", "p_value", "atc"}
