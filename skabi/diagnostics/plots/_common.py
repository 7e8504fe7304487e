"""Figure grids and small helpers shared by the plots."""

import math

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["grid", "finish", "figure"]


def figure(nrows, ncols, *, figsize=None, panel_size=(3.2, 2.8), **subplots_kw):
    """A pyplot figure (so notebooks and ``plt.show`` display it) with an axes array."""
    if figsize is None:
        figsize = (panel_size[0] * ncols, panel_size[1] * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **subplots_kw)
    return fig, axes


def grid(n_panels, *, figsize=None, max_cols=4, **subplots_kw):
    """One panel per element, wrapped at ``max_cols``; returns (fig, list of used axes)."""
    ncols = min(n_panels, max_cols)
    nrows = math.ceil(n_panels / ncols)
    fig, axes = figure(nrows, ncols, figsize=figsize, **subplots_kw)
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.set_axis_off()
    return fig, flat[:n_panels]


def finish(fig):
    """Lay out the figure; return it."""
    fig.set_layout_engine("constrained")
    return fig


def diagonal(ax, values, **kwargs):
    """Draw the identity line over the range of ``values``."""
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=1, ls="--",
            alpha=0.7, **kwargs)
