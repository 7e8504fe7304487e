"""Training and validation loss over epochs."""

import numpy as np
import pandas as pd

from ._common import figure, finish

__all__ = ["loss"]


def _as_frame(history):
    if isinstance(history, pd.DataFrame):
        return history
    if isinstance(history, pd.Series):
        return history.to_frame("loss")
    if hasattr(history, "history_"):
        raise TypeError("Pass the estimator's history_ (a DataFrame), not the estimator.")
    return pd.DataFrame(history)


def loss(history, *, moving_average=None, show_lr=None, figsize=None, **kwargs):
    """Training (and validation) loss per epoch.

    Parameters
    ----------
    history : pandas.DataFrame
        Index: epoch; columns ``loss``, optionally ``val_loss`` (may be NaN or absent),
        ``lr`` and ``seconds``. A dict of lists or list of dicts is converted with
        :class:`pandas.DataFrame`.
    moving_average : int, optional
        Also draw a centred rolling mean of the training loss over this many epochs.
    show_lr : bool, optional
        Add a panel with the learning rate (default: when an ``lr`` column is present).
    figsize : tuple of float, optional
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.plot` for the loss lines.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    A history like an estimator's ``history_``; its ``lr`` column adds a second panel:

    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> import pandas as pd
    >>> from skabi.diagnostics.plots import loss
    >>> epochs = np.arange(1, 21)
    >>> history = pd.DataFrame({"loss": 2.0 / epochs, "val_loss": 2.2 / epochs,
    ...                         "lr": 1e-3 * 0.9 ** epochs}, index=epochs)
    >>> fig = loss(history, moving_average=5)
    >>> type(fig).__name__, len(fig.axes)
    ('Figure', 2)
    >>> plt.close(fig)
    """
    frame = _as_frame(history)
    if "loss" not in frame.columns:
        raise KeyError(
            f"history needs a 'loss' column; it has {list(map(str, frame.columns))!r}."
        )
    has_lr = "lr" in frame.columns and frame["lr"].notna().any()
    show_lr = has_lr if show_lr is None else bool(show_lr and has_lr)
    nrows = 2 if show_lr else 1
    fig, axes = figure(nrows, 1, figsize=figsize or (6, 3 + 1.8 * (nrows - 1)), sharex=True,
                       height_ratios=[3, 1.3][:nrows])
    ax = axes[0, 0]
    epochs = np.asarray(frame.index)
    ax.plot(epochs, frame["loss"].to_numpy(float), label="Training", **kwargs)
    if moving_average:
        smooth = frame["loss"].rolling(int(moving_average), center=True, min_periods=1).mean()
        ax.plot(epochs, smooth.to_numpy(float), color="black", lw=1, alpha=0.6,
                label=f"Training ({int(moving_average)}-epoch mean)")
    if "val_loss" in frame.columns and frame["val_loss"].notna().any():
        val = frame["val_loss"].to_numpy(float)
        ok = np.isfinite(val)
        ax.plot(epochs[ok], val[ok], ls="--", marker="o" if ok.sum() < 30 else None,
                ms=3, label="Validation", **kwargs)
    ax.set_ylabel("Loss")
    ax.set_xlabel(frame.index.name or "Epoch")
    ax.set_title("Loss trajectory")
    ax.grid(alpha=0.3)
    ax.legend()
    if show_lr:
        lr_ax = axes[1, 0]
        lr_ax.plot(epochs, frame["lr"].to_numpy(float), color="grey")
        lr = frame["lr"].to_numpy(float)
        if np.all(lr[np.isfinite(lr)] > 0):
            lr_ax.set_yscale("log")
        lr_ax.set_ylabel("Learning rate")
        lr_ax.grid(alpha=0.3)
        lr_ax.set_xlabel(frame.index.name or "Epoch")
    return finish(fig)
