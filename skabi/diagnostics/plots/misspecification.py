"""Plots of the misspecification test: the null distribution and the summary space."""

import numpy as np

from ._common import figure, finish

__all__ = ["mmd_hypothesis_test", "summary_space"]


def mmd_hypothesis_test(result, *, bins=40, figsize=None, **kwargs):
    """Histogram of the MMD null distribution with the observed statistic marked.

    Parameters
    ----------
    result : skabi.diagnostics.MMDTest
        From :meth:`skabi.AmortizedPosterior.misspecification_test` or
        :func:`skabi.diagnostics.summary_mmd_test`.
    bins : int, default=40
    figsize : tuple of float, optional
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.hist`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from skabi.diagnostics import summary_mmd_test
    >>> from skabi.diagnostics.plots import mmd_hypothesis_test
    >>> rng = np.random.default_rng(0)
    >>> fig = mmd_hypothesis_test(summary_mmd_test(rng.normal(size=(3, 2)) + 2,
    ...                                            rng.normal(size=(500, 2)), n_null=100))
    >>> plt.close(fig)
    """
    fig, axes = figure(1, 1, figsize=figsize, panel_size=(4.2, 3.0))
    ax = axes[0, 0]
    style = {"bins": bins, "color": "grey", "alpha": 0.6, "density": True,
             "label": "MMD under the model (null)"}
    style.update(kwargs)
    ax.hist(result.null, **style)
    ax.axvline(result.statistic, color="#d62728", lw=2,
               label=f"observed (p = {result.p_value:.3f})")
    ax.set_xlabel("MMD in summary space")
    ax.set_ylabel("Density")
    ax.legend(fontsize="small")
    return finish(fig)


def summary_space(result, *, dims=None, max_points=2000, figsize=None, **kwargs):
    """Observed summaries over simulated ones in 2-D (two summary dims, or the first two
    principal components of the simulated summaries when there are more than two).

    Parameters
    ----------
    result : skabi.diagnostics.MMDTest
    dims : tuple of two int, optional
        Summary dims to show instead of principal components.
    max_points : int, default=2000
        Simulated points drawn at most.
    figsize : tuple of float, optional
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter` for the simulated points.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ref, obs = np.asarray(result.reference), np.asarray(result.observed)
    if dims is not None:
        i, j = dims
        ref2, obs2, labels = ref[:, [i, j]], obs[:, [i, j]], (f"summary {i}", f"summary {j}")
    elif ref.shape[1] <= 2:
        pad = (lambda a: np.column_stack([a, np.zeros(len(a))])) if ref.shape[1] == 1 else None
        ref2, obs2 = (pad(ref), pad(obs)) if pad else (ref, obs)
        labels = ("summary 0", "summary 1")
    else:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2).fit(ref)
        ref2, obs2, labels = pca.transform(ref), pca.transform(obs), ("PC 1", "PC 2")
    fig, axes = figure(1, 1, figsize=figsize, panel_size=(4.0, 3.6))
    ax = axes[0, 0]
    style = {"s": 5, "alpha": 0.3, "color": "grey", "label": "simulated"}
    style.update(kwargs)
    ax.scatter(ref2[:max_points, 0], ref2[:max_points, 1], **style)
    ax.scatter(obs2[:, 0], obs2[:, 1], s=30, color="#d62728", marker="x", label="observed")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.legend(fontsize="small")
    return finish(fig)
