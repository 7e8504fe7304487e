"""Learned standardization: :class:`Standardize`."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler

from .._validation import check_keys
from ..bank import is_ragged
from ..exceptions import ShapeError
from ._base import Transform, _out_dtype, as_key_list
from .roles import MASK

__all__ = ["Standardize"]


def _event_count(x):
    """Number of elements per batch element that share one (mean, sd) entry."""
    x = np.asarray(x)
    if x.ndim <= 1:
        return 1
    return int(np.prod(x.shape[1:-1], dtype=np.int64))


class Standardize(Transform):
    """Standardize variables with a mean and standard deviation learned in ``fit``.

    ``z = (x - mean_) / std_``. For arrays of rank >= 2 the statistics are per feature
    (last axis), reduced over every other axis; for rank-1 arrays (one value per batch
    element) over the batch. Constant variables (sd 0) get sd 1, never NaN.

    For variable-size sets or time series, put this step *after* :class:`AsSet` /
    :class:`AsTimeSeries`: a ``(B, N)`` array would otherwise get one statistic per set
    position, which breaks when ``N`` changes; ``(B, N, 1)`` gets one per feature.

    Parameters
    ----------
    keys : str, list of str or None, default=None
        The variables to standardize. ``None``: every floating variable of the fit batch
        (at this step's position in the adapter), minus ``exclude``. Fitting needs every
        listed variable; at transform time absent ones are skipped one by one (at sample
        time the parameters are absent), as each has statistics of its own.
    exclude : str, list of str or None, default=None
        Variables left alone when ``keys`` is None.

    Attributes
    ----------
    keys_ : list of str
        The standardized variables.
    dtypes_ : dict of str to str
    mean_, std_ : dict of str to ndarray
        Per variable, of shape ``(F,)`` (rank >= 2) or ``()`` (rank <= 1), float64.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters import Standardize
    >>> rng = np.random.default_rng(0)
    >>> batch = {"x": rng.normal([10.0, -5.0], [2.0, 0.5], size=(100, 2))}
    >>> step = Standardize("x")
    >>> z = step.fit_transform(batch)
    >>> step.mean_["x"].shape
    (2,)
    >>> np.allclose(z["x"].mean(axis=0), 0), np.allclose(z["x"].std(axis=0), 1)
    (True, True)
    >>> np.allclose(step.inverse_transform(z)["x"], batch["x"])
    True
    """

    _parameter_constraints = {
        "keys": [str, list, tuple, None],
        "exclude": [str, list, tuple, None],
    }

    def __init__(self, keys=None, *, exclude=None):
        self.keys = keys
        self.exclude = exclude

    _lenient = True  # each variable has its own statistics: absent ones are skipped

    def _needs_fit(self):
        return True

    def _resolve_keys(self, data):
        if self.keys is not None:
            return as_key_list(self.keys, owner="Standardize")
        exclude = []
        if self.exclude is not None:
            exclude = as_key_list(self.exclude, param="exclude", owner="Standardize")
        check_keys(data, exclude, where="Standardize (exclude)")
        return [k for k, v in data.items()
                if (v[0] if is_ragged(v) else np.asarray(v)).dtype.kind == "f" and k != MASK
                and k not in exclude]

    def _fit_present(self, data, keys):
        self.mean_, self.std_ = {}, {}
        mask = data.get(MASK)
        for k in keys:
            x = np.asarray(data[k], dtype=np.float64)
            if mask is not None and x.ndim >= 3 and x.shape[:2] == mask.shape:
                x = x[mask][None]   # a padded set: the statistics of its real elements
            flat = x.reshape(-1, x.shape[-1]) if x.ndim >= 2 else x.reshape(-1, 1)
            scaler = StandardScaler().fit(flat)  # sd 0 -> 1 (sklearn's _handle_zeros_in_scale)
            shape = (x.shape[-1],) if x.ndim >= 2 else ()
            self.mean_[k] = scaler.mean_.reshape(shape)
            self.std_[k] = scaler.scale_.reshape(shape)

    def _check_inputs(self, data, keys):
        if not hasattr(self, "mean_"):
            return
        for k in keys:
            x, mean = np.asarray(data[k]), self.mean_[k]
            if mean.ndim == 1 and (x.ndim < 2 or x.shape[-1] != mean.shape[0]):
                raise ShapeError(
                    f"Standardize: {k!r} has shape {x.shape}; it was fitted on arrays of shape "
                    f"(B, ..., {mean.shape[0]})."
                )

    def _forward(self, key, x):
        z = (np.asarray(x, dtype=np.float64) - self.mean_[key]) / self.std_[key]
        return z.astype(_out_dtype(x), copy=False)

    def _inverse(self, key, z):
        return z * self.std_[key] + self.mean_[key]

    def _ldj(self, key, x):
        n = np.asarray(x).shape[:1]
        value = -_event_count(x) * float(np.sum(np.log(self.std_[key])))
        return np.full(n, value, dtype=np.float64)
