"""TARP's expected coverage plot and the latent-space check of a flow."""

import numpy as np

from ..sbc import ecdf_test
from ..tarp import tarp_coverage, tarp_values
from ._common import figure, finish

__all__ = ["tarp", "latent_space"]


def tarp(estimates=None, targets=None, *, variable_keys=None, prob=0.95, num_points=None,
         references=None, random_state=0, figsize=None, **kwargs):
    """Expected coverage probability over credibility levels (TARP), with its band.

    The curve follows the diagonal for the exact posterior and stays in the grey
    simultaneous band with probability ``prob``; below the diagonal means overconfident
    (too narrow), above underconfident; see :func:`skabi.diagnostics.tarp`.

    Parameters
    ----------
    estimates, targets, variable_keys, prob, num_points, references, random_state
        See :func:`skabi.diagnostics.tarp_coverage`.
    figsize : tuple of float, optional
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.plot` for the coverage curve.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from skabi.diagnostics.plots import tarp
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(200, 2))
    >>> y = theta + 0.5 * rng.normal(size=(200, 2))
    >>> draws = 0.8 * y[:, None, :] + 0.2 ** 0.5 * rng.normal(size=(200, 300, 2))
    >>> fig = tarp({"theta": draws}, {"theta": theta})
    >>> plt.close(fig)
    """
    kw = dict(variable_keys=variable_keys, references=references, random_state=random_state)
    curve = tarp_coverage(estimates, targets, prob=prob, num_points=num_points, **kw)
    f = tarp_values(estimates, targets, **kw)
    test = ecdf_test(f[:, None], prob=prob, num_points=num_points)
    fig, axes = figure(1, 1, figsize=figsize, panel_size=(3.6, 3.4))
    ax = axes[0, 0]
    z = np.concatenate([[0.0], curve["credibility"], [1.0]])
    lo = np.concatenate([[0.0], curve["lower"], [1.0]])
    hi = np.concatenate([[0.0], curve["upper"], [1.0]])
    ax.fill_between(z, lo, hi, color="grey", alpha=0.25, lw=0, step="post",
                    label=f"{prob:.0%} simultaneous band")
    from .calibration import ecdf_path

    x, y = ecdf_path(f)
    style = {"color": "#1f77b4", "lw": 1.5}
    style.update(kwargs)
    ax.plot(x, y, label="TARP", **style)
    ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--", alpha=0.7)
    verdict = "inside band" if test["inside"][0] else "OUTSIDE band"
    ax.text(0.03, 0.97, f"{verdict}\nerror = {test['error'][0]:.3f}", transform=ax.transAxes,
            va="top", ha="left", fontsize="small",
            bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Credibility level")
    ax.set_ylabel("Expected coverage")
    ax.legend(loc="lower right", fontsize="small")
    return finish(fig)


def latent_space(z, *, variable_names=None, max_points=2000, figsize=None, **kwargs):
    """The flow's latent draws of simulated pairs against N(0, I) (BayesFlow 1's check).

    A grid of pairwise scatter plots (below the diagonal) and histograms (on it) of
    ``z = est.latent(sims)``, with the standard normal density and its 1- and 2-sd
    circles drawn in. An exact flow gives round, centred clouds; structure, skew or a
    scale other than 1 shows where it does not map the posterior onto its base.

    Parameters
    ----------
    z : ndarray of shape (n, D)
        Latent vectors, from :meth:`skabi.AmortizedPosterior.latent`.
    variable_names : list of str, optional
        Axis labels, default ``z[0]``, ``z[1]``, ...
    max_points : int, default=2000
        Points drawn per scatter (the first ones).
    figsize : tuple of float, optional
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from skabi.diagnostics.plots import latent_space
    >>> fig = latent_space(np.random.default_rng(0).normal(size=(500, 3)))
    >>> len(fig.axes)
    9
    >>> plt.close(fig)
    """
    z = np.asarray(z, dtype=float)
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"z must have shape (n, D) with n >= 2; got {z.shape}.")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"z holds {int(np.sum(~np.isfinite(z)))} NaN or infinite values.")
    d = z.shape[1]
    names = variable_names or [f"z[{i}]" for i in range(d)]
    if len(names) != d:
        raise ValueError(f"variable_names has {len(names)} labels; z has {d} columns.")
    fig, axes = figure(d, d, figsize=figsize, panel_size=(2.2, 2.2))
    grid = np.linspace(-4, 4, 200)
    normal = np.exp(-grid ** 2 / 2) / np.sqrt(2 * np.pi)
    angle = np.linspace(0, 2 * np.pi, 200)
    shown = z[:max_points]
    style = {"s": 4, "alpha": 0.4, "color": "#1f77b4"}
    style.update(kwargs)
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if i == j:
                ax.hist(z[:, i], bins=40, density=True, color="#1f77b4", alpha=0.5)
                ax.plot(grid, normal, color="black", lw=1)
            elif i > j:
                ax.scatter(shown[:, j], shown[:, i], **style)
                for r in (1, 2):
                    ax.plot(r * np.cos(angle), r * np.sin(angle), color="black", lw=0.8,
                            alpha=0.7)
                ax.set_xlim(-4, 4)
                ax.set_ylim(-4, 4)
            else:
                ax.set_axis_off()
                continue
            ax.set_xlabel(names[j], fontsize="small")
            if i != j:
                ax.set_ylabel(names[i], fontsize="small")
    return finish(fig)
