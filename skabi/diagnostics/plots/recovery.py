"""Recovery (posterior estimate vs true value) and z-score vs contraction."""

import numpy as np

from .._inputs import resolve
from ..metrics import posterior_contraction, posterior_z_score
from ._common import diagonal, finish, grid

__all__ = ["recovery", "z_score_contraction"]


def recovery(
    estimates=None,
    targets=None,
    *,
    variable_keys=None,
    variable_names=None,
    point_estimate="median",
    uncertainty=0.95,
    figsize=None,
    **kwargs,
):
    """Posterior point estimate against the true value, one panel per element.

    Each dataset is a point with a vertical bar spanning its central posterior interval;
    the dashed line is perfect recovery. Panels report the correlation ``r`` and the
    range-normalised RMSE of the point estimate.

    Parameters
    ----------
    estimates, targets : ArviZ container or dicts of arrays
        See :func:`skabi.diagnostics.sbc_ranks`.
    variable_keys, variable_names : optional
        Variables to plot and their labels (one per element).
    point_estimate : {"median", "mean"}, default "median"
    uncertainty : float or None, default 0.95
        Level of the central interval drawn as error bars; ``None`` for none.
    figsize : tuple of float, optional
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.errorbar` (``color``, ``alpha``, ``ms``...).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    Exact posterior draws for 100 datasets of ``theta ~ N(0, 1)``, ``y ~ N(theta, 0.5**2)``
    (the posterior is ``N(0.8 y, 0.2)``):

    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from skabi.diagnostics.plots import recovery
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(100, 2))
    >>> y = theta + 0.5 * rng.normal(size=(100, 2))
    >>> draws = 0.8 * y[:, None, :] + 0.2 ** 0.5 * rng.normal(size=(100, 200, 2))
    >>> fig = recovery({"theta": draws}, {"theta": theta}, variable_names=["a", "b"])
    >>> type(fig).__name__, len(fig.axes)
    ('Figure', 2)
    >>> plt.close(fig)
    """
    if point_estimate not in ("median", "mean"):
        raise ValueError(f"point_estimate must be 'median' or 'mean'; got {point_estimate!r}.")
    inputs = resolve(
        estimates, targets, variable_keys=variable_keys, variable_names=variable_names,
    )
    draws, truths = inputs.draws, inputs.truths
    center = np.median(draws, axis=1) if point_estimate == "median" else draws.mean(axis=1)
    fig, axes = grid(len(inputs.labels), figsize=figsize)
    style = {"fmt": "o", "ms": 3, "alpha": 0.5, "elinewidth": 0.8}
    style.update(kwargs)
    for j, ax in enumerate(axes):
        yerr = None
        if uncertainty is not None:
            lo, hi = np.quantile(draws[:, :, j], [(1 - uncertainty) / 2, (1 + uncertainty) / 2],
                                 axis=1)
            yerr = np.stack([center[:, j] - lo, hi - center[:, j]])
        ax.errorbar(truths[:, j], center[:, j], yerr=yerr, **style)
        diagonal(ax, np.concatenate([truths[:, j], center[:, j]]))
        rng = np.ptp(truths[:, j]) or 1.0
        nrmse = np.sqrt(np.mean((center[:, j] - truths[:, j]) ** 2)) / rng
        r = np.corrcoef(truths[:, j], center[:, j])[0, 1] if np.ptp(truths[:, j]) > 0 else np.nan
        ax.text(0.03, 0.97, f"NRMSE = {nrmse:.3f}\n$r$ = {r:.3f}", transform=ax.transAxes,
                va="top", ha="left", fontsize="small",
                bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
        ax.set_title(inputs.labels[j])
        ax.set_xlabel("Ground truth")
        ax.set_ylabel(f"Estimate ({point_estimate})")
        ax.grid(alpha=0.3)
    return finish(fig)


def z_score_contraction(
    estimates=None,
    targets=None,
    *,
    variable_keys=None,
    variable_names=None,
    prior_variance=None,
    figsize=None,
    **kwargs,
):
    """Posterior z-score against posterior contraction, one point per dataset.

    Good inference has contraction near 1 (the data are informative) and z-scores mostly
    in [-2, 2] (no bias, no overconfidence) (Schad, Betancourt and Vasishth 2021).

    Parameters
    ----------
    estimates, targets, variable_keys, variable_names
        See :func:`recovery`.
    prior_variance : optional
        See :func:`skabi.diagnostics.posterior_contraction`.
    figsize : tuple of float, optional
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    Exact posterior draws for 100 datasets of ``theta ~ N(0, 1)``, ``y ~ N(theta, 0.5**2)``
    (the posterior is ``N(0.8 y, 0.2)``):

    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from skabi.diagnostics.plots import z_score_contraction
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(100, 2))
    >>> y = theta + 0.5 * rng.normal(size=(100, 2))
    >>> draws = 0.8 * y[:, None, :] + 0.2 ** 0.5 * rng.normal(size=(100, 200, 2))
    >>> fig = z_score_contraction({"theta": draws}, {"theta": theta}, prior_variance=1.0)
    >>> type(fig).__name__, len(fig.axes)
    ('Figure', 2)
    >>> plt.close(fig)
    """
    common = dict(variable_keys=variable_keys, variable_names=variable_names)
    contraction = posterior_contraction(
        estimates, targets, prior_variance=prior_variance, **common
    )
    z = posterior_z_score(estimates, targets, **common)
    fig, axes = grid(contraction.shape[1], figsize=figsize)
    style = {"s": 12, "alpha": 0.5}
    style.update(kwargs)
    for j, ax in enumerate(axes):
        ax.scatter(contraction.iloc[:, j], z.iloc[:, j], **style)
        ax.axhline(0, color="black", lw=0.8, alpha=0.6)
        ax.axhspan(-2, 2, color="grey", alpha=0.12, lw=0)
        ax.set_xlim(min(-0.05, float(np.nanmin(contraction.iloc[:, j])) - 0.05), 1.05)
        ax.set_title(str(contraction.columns[j]))
        ax.set_xlabel("Posterior contraction")
        ax.set_ylabel("Posterior z-score")
        ax.grid(alpha=0.3)
    return finish(fig)
