"""Give sets and time series a feature axis: :class:`AsSet`, :class:`AsTimeSeries`.

Datasets of different sizes (a ragged variable: a list of per-dataset arrays, as
:func:`skabi.bank.stack_datasets` makes of a list of datasets) are padded with zeros to
the largest size, ``(B, N_max, F)``, and the step adds the boolean mask
``summary_mask (B, N_max)`` (True for real elements; padding at the end), which the
estimator hands to the summary network with ``summary_variables``.
"""

from __future__ import annotations

import numpy as np

from ..bank import batch_size_of, is_ragged
from ..exceptions import ShapeError
from ._base import Transform, _check_rank
from .roles import MASK

__all__ = ["AsSet", "AsTimeSeries"]


def _pad(parts):
    """Per-dataset arrays (N_i, ...) -> zero-padded (B, N_max, ...) and the mask (B, N_max)."""
    parts = [np.asarray(p) for p in parts]
    lengths = np.array([p.shape[0] for p in parts])
    out = np.zeros((len(parts), int(lengths.max()), *parts[0].shape[1:]),
                   dtype=np.result_type(*parts))
    for i, p in enumerate(parts):
        out[i, :len(p)] = p
    return out, np.arange(out.shape[1])[None, :] < lengths[:, None]


class _AsSequence(Transform):
    _parameter_constraints = {"keys": [str, list, tuple]}
    _expected = "(B, N) or (B, N, F)"
    _ragged = True

    def __init__(self, keys):
        self.keys = keys

    def _check_inputs(self, data, keys):
        for k in keys:
            x = data[k]
            if is_ragged(x):
                if any(np.ndim(p) not in (1, 2) for p in x):
                    odd = next(np.shape(p) for p in x if np.ndim(p) not in (1, 2))
                    raise ShapeError(f"{self._owner} expects each dataset of {k!r} of shape "
                                     f"{self._expected[4:]}; got {odd}.")
            else:
                _check_rank(self._owner, k, x, (2, 3), self._expected)

    def _fit_present(self, data, keys):
        self.expanded_ = {k: bool(np.ndim(data[k][0]) == 1 if is_ragged(data[k])
                                  else np.ndim(data[k]) == 2) for k in keys}

    def _log_det_jac_present(self, data, keys):
        return {k: np.zeros(batch_size_of(data[k])) for k in keys}  # volume preserving

    def _transform_present(self, data, keys):
        mask = data.get(MASK)
        for k in keys:
            x = data[k]
            if is_ragged(x):
                x, this = _pad(x)
            else:
                x = np.asarray(x)
                this = None if mask is None else np.ones(x.shape[:2], dtype=bool)
            data[k] = self._forward(k, x)
            if this is not None:
                if mask is not None and (mask.shape != this.shape or not np.array_equal(mask, this)):
                    raise ShapeError(
                        f"{self._owner}: the datasets of {k!r} have other sizes than those of "
                        "the sets padded before it; variables padded into one set must have "
                        "the same number of elements in each dataset.")
                mask = this
        if mask is not None:
            data[MASK] = mask
        return data

    def _forward(self, key, x):
        x = np.asarray(x)
        return x[..., None].copy() if x.ndim == 2 else x.copy()

    def _inverse(self, key, z):
        return z[..., 0] if self.expanded_[key] else z


class AsSet(_AsSequence):
    """Mark variables as exchangeable sets of shape ``(B, N, F)``.

    ``(B, N)`` arrays gain a trailing feature axis, ``(B, N, 1)``; ``(B, N, F)`` arrays
    stay. Volume preserving (log-det 0); the inverse drops the added axis again.

    Parameters
    ----------
    keys : str or list of str

    Attributes
    ----------
    keys_ : list of str
    dtypes_ : dict of str to str
    expanded_ : dict of str to bool
        Whether ``fit`` saw a rank-2 array (so the inverse removes the feature axis).

    Raises
    ------
    ShapeError
        If a variable has rank other than 2 or 3 (saying the shape got and expected).

    Notes
    -----
    Datasets of different sizes (a list of per-dataset arrays) are padded with zeros to
    the largest one and the step adds ``summary_mask (B, N_max)``, True for real
    elements; the summary networks ignore the padding, so a padded dataset gets the
    same summary as alone.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters import AsSet
    >>> batch = {"x": np.random.default_rng(0).normal(size=(4, 10))}
    >>> step = AsSet("x")
    >>> z = step.fit_transform(batch)
    >>> z["x"].shape
    (4, 10, 1)
    >>> np.array_equal(step.inverse_transform(z)["x"], batch["x"])
    True

    Two datasets of 3 and 5 observations:

    >>> out = step.transform({"x": [np.ones(3), np.ones(5)]})
    >>> out["x"].shape, out["summary_mask"].sum(axis=1).tolist()
    ((2, 5, 1), [3, 5])
    """


class AsTimeSeries(_AsSequence):
    """Mark variables as time series of shape ``(B, T, F)``.

    ``(B, T)`` arrays gain a trailing feature axis, ``(B, T, 1)``; ``(B, T, F)`` arrays
    stay. Same mechanics as :class:`AsSet`; the name documents the intent (order matters).

    Parameters
    ----------
    keys : str or list of str

    Attributes
    ----------
    keys_ : list of str
    dtypes_ : dict of str to str
    expanded_ : dict of str to bool

    Examples
    --------
    A univariate series gains a feature axis; a multivariate one keeps its shape:

    >>> import numpy as np
    >>> from skabi.adapters import AsTimeSeries
    >>> batch = {"y": np.zeros((4, 20)), "u": np.zeros((4, 20, 3))}
    >>> out = AsTimeSeries(["y", "u"]).fit_transform(batch)
    >>> out["y"].shape, out["u"].shape
    ((4, 20, 1), (4, 20, 3))
    """

    _expected = "(B, T) or (B, T, F)"
