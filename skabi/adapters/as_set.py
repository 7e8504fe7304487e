"""Give sets and time series a feature axis: :class:`AsSet`, :class:`AsTimeSeries`."""

from __future__ import annotations

import numpy as np

from ._base import Transform, _check_rank

__all__ = ["AsSet", "AsTimeSeries"]


class _AsSequence(Transform):
    _parameter_constraints = {"keys": [str, list, tuple]}
    _expected = "(B, N) or (B, N, F)"

    def __init__(self, keys):
        self.keys = keys

    def _check_inputs(self, data, keys):
        for k in keys:
            _check_rank(self._owner, k, data[k], (2, 3), self._expected)

    def _fit_present(self, data, keys):
        self.expanded_ = {k: bool(np.ndim(data[k]) == 2) for k in keys}

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
