"""Pair plots: histograms on the diagonal, scatter plots below it."""

import numpy as np

from .._inputs import is_container, element_names, read_estimates, resolve
from ._common import figure, finish

__all__ = ["pairs_samples", "pairs_posterior"]


def _pairs(samples, labels, *, truth=None, title=None, figsize=None, max_points=2000,
           **kwargs):
    n = samples.shape[1]
    fig, axes = figure(n, n, figsize=figsize or (2.4 * n + 0.6, 2.4 * n + 0.3))
    rng = np.random.default_rng(0)
    shown = samples
    if len(samples) > max_points:
        shown = samples[rng.choice(len(samples), max_points, replace=False)]
    style = {"s": 4, "alpha": 0.3, "color": "#1f77b4", "lw": 0}
    style.update(kwargs)
    hist_color = style.get("color", "#1f77b4")
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(samples[:, i], bins=40, color=hist_color, alpha=0.7, density=True)
                ax.set_yticks([])
                if truth is not None:
                    ax.axvline(truth[i], color="red", lw=1.5, label="True value")
            else:
                ax.scatter(shown[:, j], shown[:, i], **style)
                if truth is not None:
                    ax.scatter([truth[j]], [truth[i]], color="red", marker="*", s=80,
                               zorder=3)
                ax.set_ylabel(labels[i])
            ax.set_xlabel(labels[j])
    for i in range(n):
        axes[i, i].set_ylabel("Density")
    if truth is not None:
        axes[0, 0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return finish(fig)


def pairs_samples(samples, *, variable_keys=None, variable_names=None, figsize=None,
                  **kwargs):
    """Pair plot of samples, such as prior draws from ``simulator.sample(n)``.

    Parameters
    ----------
    samples : dict of str to ndarray of shape (n_samples, ...), or an ArviZ container
        One leading sample axis. Without ``variable_keys`` every array is plotted
        (scalars such as ``N`` are skipped). A container's posterior draws of all
        datasets are pooled.
    variable_keys : list of str, optional
        Variables to plot (default: all keys of ``samples``).
    variable_names : list of str, optional
        One label per element.
    figsize : tuple of float, optional
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    Prior draws of three elements give a 3 x 3 grid (the upper triangle left blank):

    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from skabi.diagnostics.plots import pairs_samples
    >>> rng = np.random.default_rng(0)
    >>> prior = {"beta": rng.normal(size=(500, 2)), "sigma": rng.gamma(2.0, size=500), "N": 10}
    >>> fig = pairs_samples(prior)
    >>> type(fig).__name__, len(fig.axes)
    ('Figure', 9)
    >>> plt.close(fig)
    """
    if is_container(samples):
        estimates, _ = read_estimates(samples, require_targets=False)
        samples = {k: v.reshape((-1,) + v.shape[2:]) for k, v in estimates.items()}
    if variable_keys is None:  # batch-constant scalars (such as N) are skipped
        keys = [k for k, v in samples.items() if np.ndim(v) >= 1]
    else:
        keys = list(variable_keys)
    columns, names = [], []
    n_samples = None
    for key in keys:
        if key not in samples:
            raise KeyError(f"samples has no variable {key!r}; it has {sorted(samples)!r}.")
        arr = np.asarray(samples[key], dtype=float)
        if arr.ndim < 1:
            raise ValueError(f"samples[{key!r}] is a scalar; expected (n_samples, ...).")
        if n_samples is None:
            n_samples = arr.shape[0]
        if arr.shape[0] != n_samples:
            raise ValueError(
                f"samples[{key!r}] has {arr.shape[0]} samples (shape {arr.shape}); "
                f"expected {n_samples} like the others."
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"samples[{key!r}] holds NaN or infinite values.")
        columns.append(arr.reshape(n_samples, -1))
        names += element_names(key, arr.shape[1:])
    labels = names if variable_names is None else [str(v) for v in variable_names]
    if len(labels) != len(names):
        raise ValueError(
            f"variable_names has {len(labels)} labels for {len(names)} elements {names!r}."
        )
    return _pairs(np.concatenate(columns, axis=1), labels, figsize=figsize, **kwargs)


def pairs_posterior(
    estimates=None,
    targets=None,
    *,
    dataset_id=0,
    variable_keys=None,
    variable_names=None,
    figsize=None,
    **kwargs,
):
    """Pair plot of the posterior draws of one dataset, true values marked in red.

    Parameters
    ----------
    estimates, targets : ArviZ container or dicts of arrays
        See :func:`skabi.diagnostics.sbc_ranks`; ``targets`` is optional here.
    dataset_id : int, default 0
        Which dataset to plot.
    variable_keys, variable_names : optional
        Variables to plot and their labels (one per element).
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
    >>> from skabi.diagnostics.plots import pairs_posterior
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(100, 2))
    >>> y = theta + 0.5 * rng.normal(size=(100, 2))
    >>> draws = 0.8 * y[:, None, :] + 0.2 ** 0.5 * rng.normal(size=(100, 200, 2))
    >>> fig = pairs_posterior({"theta": draws}, {"theta": theta}, dataset_id=3)
    >>> type(fig).__name__, len(fig.axes)
    ('Figure', 4)
    >>> plt.close(fig)
    """
    inputs = resolve(
        estimates, targets, variable_keys=variable_keys, variable_names=variable_names,
        require_targets=False,
    )
    if not -inputs.n_datasets <= dataset_id < inputs.n_datasets:
        raise IndexError(f"dataset_id {dataset_id} is out of range: {inputs.n_datasets} datasets.")
    truth = inputs.truths[dataset_id] if inputs.truths is not None else None
    return _pairs(inputs.draws[dataset_id], inputs.labels, truth=truth,
                  title=f"Posterior of dataset {dataset_id}", figsize=figsize, **kwargs)
