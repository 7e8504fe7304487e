"""SBC plots: rank histograms and rank ECDFs with simultaneous confidence bands."""

import numpy as np
from scipy import stats

from .._inputs import resolve
from ..sbc import compute_pit, ecdf_band, ecdf_test
from ._common import finish, grid

__all__ = ["calibration_histogram", "calibration_ecdf", "ecdf_path"]


def ecdf_path(values, *, difference=False):
    """Vertices of the ECDF of ``values`` on [0, 1] as a polyline, or of ``ECDF(z) - z``.

    The ECDF is a step function: flat between values, with a jump of ``1/n`` at each. Its
    difference from ``z`` falls with slope -1 between values (a straight segment, not a
    flat step), so gaps between values show as the drop they are.

    Examples
    --------
    >>> import numpy as np
    >>> x, y = ecdf_path(np.array([0.5, 0.75]), difference=True)
    >>> float(np.interp(0.47, x, y))   # no value below 0.5: ECDF(0.47) - 0.47
    -0.47
    """
    v = np.sort(np.clip(np.asarray(values, dtype=float), 0.0, 1.0))
    n = v.size
    heights = np.arange(n + 1) / n
    # before each jump (height i/n) and after it ((i+1)/n), at the value itself
    x = np.concatenate([[0.0], np.repeat(v, 2), [1.0]])
    y = np.concatenate([[0.0], np.column_stack([heights[:-1], heights[1:]]).ravel(), [1.0]])
    return x, (y - x if difference else y)


def calibration_histogram(
    estimates=None,
    targets=None,
    *,
    variable_keys=None,
    variable_names=None,
    test_quantities=None,
    data=None,
    num_bins=None,
    prob=0.99,
    figsize=None,
    **kwargs,
):
    """Histograms of SBC ranks (as PIT values) with a binomial band for uniform ranks.

    Bars outside the grey band (pointwise, level ``prob``) hint at miscalibration: a U shape
    means overconfidence, a hump underconfidence, a slope bias. Prefer
    :func:`calibration_ecdf`, whose band is simultaneous and needs no bins.

    Parameters
    ----------
    estimates, targets, variable_keys, variable_names, test_quantities, data
        See :func:`skabi.diagnostics.sbc_ranks`.
    num_bins : int, optional
        Default ``n_datasets // 20`` clipped to [2, 20] (about 20 datasets per bin).
    prob : float, default 0.99
        Level of the pointwise band for the counts.
    figsize : tuple of float, optional
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.hist`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    Exact posterior draws for 100 datasets of ``theta ~ N(0, 1)``, ``y ~ N(theta, 0.5**2)``
    (the posterior is ``N(0.8 y, 0.2)``):

    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from skabi.diagnostics.plots import calibration_histogram
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(100, 2))
    >>> y = theta + 0.5 * rng.normal(size=(100, 2))
    >>> draws = 0.8 * y[:, None, :] + 0.2 ** 0.5 * rng.normal(size=(100, 200, 2))
    >>> fig = calibration_histogram({"theta": draws}, {"theta": theta})
    >>> type(fig).__name__, len(fig.axes)
    ('Figure', 2)
    >>> plt.close(fig)
    """
    inputs = resolve(
        estimates, targets, variable_keys=variable_keys, variable_names=variable_names,
        test_quantities=test_quantities, data=data,
    )
    pit = compute_pit(inputs.draws, inputs.truths)
    n = pit.shape[0]
    bins = int(num_bins or np.clip(n // 20, 2, 20))
    lo, hi = stats.binom.interval(prob, n, 1 / bins)
    fig, axes = grid(pit.shape[1], figsize=figsize)
    style = {"color": "#1f77b4", "alpha": 0.8, "edgecolor": "white"}
    style.update(kwargs)
    for j, ax in enumerate(axes):
        ax.axhspan(lo, hi, color="grey", alpha=0.25, lw=0, label=f"{prob:.0%} band (uniform)")
        ax.axhline(n / bins, color="grey", lw=1)
        ax.hist(pit[:, j], bins=bins, range=(0, 1), **style)
        ax.set_xlim(0, 1)
        ax.set_title(inputs.labels[j])
        ax.set_xlabel("Fractional rank (PIT)")
        ax.set_ylabel("Datasets")
    axes[0].legend(loc="lower right", fontsize="small")
    return finish(fig)


def calibration_ecdf(
    estimates=None,
    targets=None,
    *,
    variable_keys=None,
    variable_names=None,
    test_quantities=None,
    data=None,
    difference=False,
    rank_type="fractional",
    prob=0.95,
    num_points=None,
    figsize=None,
    **kwargs,
):
    """ECDF of SBC ranks (PIT values) with a simultaneous confidence band.

    For calibrated draws the ECDF follows the diagonal (or zero, with ``difference``) and
    stays inside the grey band with probability ``prob`` over the whole curve (Säilynoja,
    Bürkner and Vehtari 2022). Below the diagonal then above (an S shape in the
    difference plot) means overconfidence; the reverse underconfidence; a curve entirely
    above or below means bias. Panels report whether the ECDF stays inside the band.

    Parameters
    ----------
    estimates, targets, variable_keys, variable_names, test_quantities, data
        See :func:`skabi.diagnostics.sbc_ranks`. With ``test_quantities`` each quantity
        gets its own panel; ``variable_keys=[]`` shows only them.
    difference : bool, default False
        Plot ``ECDF(z) - z`` instead of ``ECDF(z)``.
    rank_type : {"fractional", "distance"}, default "fractional"
        See :func:`skabi.diagnostics.pit_values`.
    prob : float, default 0.95
        Simultaneous coverage of the band.
    num_points : int, optional
        Evaluation points of the band (default ``min(n_datasets, 100)``).
    figsize : tuple of float, optional
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.plot` for the ECDF lines.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    Exact posterior draws for 100 datasets of ``theta ~ N(0, 1)``, ``y ~ N(theta, 0.5**2)``
    (the posterior is ``N(0.8 y, 0.2)``):

    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from skabi.diagnostics.plots import calibration_ecdf
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(100, 2))
    >>> y = theta + 0.5 * rng.normal(size=(100, 2))
    >>> draws = 0.8 * y[:, None, :] + 0.2 ** 0.5 * rng.normal(size=(100, 200, 2))
    >>> fig = calibration_ecdf({"theta": draws}, {"theta": theta}, difference=True)
    >>> type(fig).__name__, len(fig.axes)
    ('Figure', 2)
    >>> plt.close(fig)
    """
    inputs = resolve(
        estimates, targets, variable_keys=variable_keys, variable_names=variable_names,
        test_quantities=test_quantities, data=data,
    )
    pit = compute_pit(inputs.draws, inputs.truths, rank_type=rank_type)
    n = pit.shape[0]
    z, lower, upper = ecdf_band(n, prob=prob, num_points=num_points, n_draws=inputs.n_draws)
    z = np.concatenate([[0.0], z, [1.0]])
    lower = np.concatenate([[0.0], lower, [1.0]])
    upper = np.concatenate([[0.0], upper, [1.0]])
    test = ecdf_test(pit, prob=prob, num_points=num_points, n_draws=inputs.n_draws)
    ref = z if difference else 0.0
    fig, axes = grid(pit.shape[1], figsize=figsize)
    style = {"color": "#1f77b4", "lw": 1.5}
    style.update(kwargs)
    for j, ax in enumerate(axes):
        ax.fill_between(z, lower - ref, upper - ref, color="grey", alpha=0.25, lw=0,
                        step="post", label=f"{prob:.0%} simultaneous band")
        x, y = ecdf_path(pit[:, j], difference=difference)
        ax.plot(x, y, label="Rank ECDF", **style)
        if difference:
            ax.axhline(0, color="black", lw=0.8, alpha=0.6)
        else:
            ax.plot([0, 1], [0, 1], color="black", lw=0.8, alpha=0.6)
        verdict = "inside band" if test["inside"][j] else "OUTSIDE band"
        ax.text(0.03, 0.97, f"{verdict}\nerror = {test['error'][j]:.3f}", transform=ax.transAxes,
                va="top", ha="left", fontsize="small",
                bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
        ax.set_xlim(0, 1)
        ax.set_title(inputs.labels[j])
        ax.set_xlabel(f"{rank_type.capitalize()} rank statistic")
        ax.set_ylabel("ECDF difference" if difference else "ECDF")
    axes[0].legend(loc="lower right", fontsize="small")
    return finish(fig)
