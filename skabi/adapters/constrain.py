"""Map bounded variables to the real line: :class:`Constrain`."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils._param_validation import StrOptions

from ..exceptions import ShapeError
from ._base import Transform, _check_support, _out_dtype, _sum_event
from .elementwise import _largest_below, _largest_finite, _smallest_above

__all__ = ["Constrain"]


def _softplus_inv(y):
    """``log(expm1(y))`` for ``y > 0``, stable for tiny and huge ``y`` (float64)."""
    return y + np.log(-np.expm1(-y))


def _log_dsoftplus_inv(y):
    """``log d/dy softplus^-1(y) = -log(1 - exp(-y))`` for ``y > 0`` (float64)."""
    return -np.log(-np.expm1(-y))


def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    with np.errstate(over="ignore"):
        return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))),
                        np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


class Constrain(Transform):
    """Map variables with bounded support to unbounded reals, smoothly and bijectively.

    The *inverse* (network scale ``z`` to user scale ``x``) defines the transform:

    - ``lower`` only: ``x = lower + softplus(z)``
    - ``upper`` only: ``x = upper - softplus(z)``
    - both: ``x = lower + (upper - lower) * sigmoid(z)``

    with ``softplus(z) = log(1 + exp(z))``. The forward map (``transform``) is the inverse
    of that, e.g. ``z = log(expm1(x - lower))``. ``inverse_transform`` computes in float64
    and clips to the nearest representable values strictly inside the bounds (in the
    dtype the variable had in ``fit``; unbounded sides are capped at that dtype's largest
    finite value), so draws always lie strictly inside the support, even for extreme
    ``z`` where float arithmetic would round onto a bound (softplus(-200) is 0 in float32).

    With ``method="reject"`` there is no map: the networks see the values as they are,
    and the estimator keeps the support by rejection (as sbi's NPE does with a bounded
    prior). Draws outside the bounds are thrown away and drawn again, so every draw lies
    in the closed box. Log densities are divided by the share of the network's mass
    inside the box, estimated per dataset from
    :data:`skabi.training.inference.SUPPORT_DRAWS` draws (for the ``log_q`` of draws as
    for ``log_prob``). Where a posterior is much narrower than a box
    prior, the logit's curvature is something the flow must learn away; on two moons and
    the Gaussian mixture at 10^4 simulations rejection was better
    (``benchmarks/README.md``, "Bounded parameters: map or reject"). Rejection costs
    draws where the network puts much mass outside: fewer than
    :data:`~skabi.training.inference.MIN_ACCEPTANCE` of the draws inside stops
    sampling with an error.

    Parameters
    ----------
    keys : str or list of str
        The variables to constrain.
    lower, upper : float, array-like of float or None, default=None
        The bounds (at least one; ``lower < upper``). The support is the open interval. An
        array gives one bound per element of the variable's last axis (a box prior with
        other bounds per dimension: ``lower=[-1, -2], upper=[1, 2]`` for ``theta`` of
        shape ``(batch, 2)``).
    method : {"auto", "map", "reject", "select"}, default="auto"
        ``"map"``: the softplus/logit maps above. ``"reject"``: no map (the identity);
        draws outside the bounds are rejected at sampling time (see above).
        ``"auto"``: ``"select"`` for a box (both bounds given), ``"map"`` for one bound.
        ``"select"``: the fit of an :class:`~skabi.AmortizedPosterior` or
        :class:`~skabi.AmortizedLikelihood` on a bank in memory (with validation
        simulations and early stopping) trains with both and keeps the one with the
        higher ``log q`` of its validation simulations on the user's scale (with a flow's
        first candidate depth where ``subnet_depth="auto"``; the method kept then trains
        with the other depth too: three trainings, not four); the fitted
        ``adapter_`` holds the method kept. Everywhere else (a simulator, a bank on disk,
        ``partial_fit``, the other estimators, the adapter on its own) it is ``"map"``. Only
        variables the estimator draws (its ``inference_variables``) are affected; for
        other variables the step checks the bounds and passes the values on. Point
        estimates (:class:`~skabi.AmortizedPointEstimator`) are not draws: nothing is
        rejected there, and an estimate can lie outside the bounds; keep ``"map"`` for
        them.

    Attributes
    ----------
    keys_ : list of str
    dtypes_ : dict of str to str
        The variables' dtypes in the fit batch (the inverse stays inside the bounds once
        cast back to these).

    Raises
    ------
    SupportError
        If values lie on or outside a bound (naming the variable and how many).

    Examples
    --------
    A probability ``p`` in (0, 1) maps to the real line and back; any real ``z``, however
    extreme, maps back strictly inside the bounds:

    >>> import numpy as np
    >>> from skabi.adapters import Constrain
    >>> batch = {"p": np.random.default_rng(0).uniform(size=(5, 1))}
    >>> step = Constrain("p", lower=0, upper=1)
    >>> z = step.fit_transform(batch)
    >>> np.allclose(step.inverse_transform(z)["p"], batch["p"])
    True
    >>> p = step.inverse_transform({"p": np.array([[-1000.0], [0.0], [1000.0]])})["p"]
    >>> bool(np.all((p > 0) & (p < 1))), float(p[1, 0])
    (True, 0.5)

    Bounds per dimension:

    >>> box = Constrain("theta", lower=[-1, -2], upper=[1, 2])
    >>> theta = np.array([[0.5, -1.5], [-0.9, 1.9]])
    >>> np.allclose(box.fit(dict(theta=theta)).inverse_transform(
    ...     box.transform(dict(theta=theta)))["theta"], theta)
    True

    With ``method="reject"`` the values pass unchanged; the bounds are what the estimator
    keeps its draws inside:

    >>> keep = Constrain("p", lower=0, upper=1, method="reject").fit(batch)
    >>> np.array_equal(keep.transform(batch)["p"], batch["p"])
    True
    >>> keep.support_mask({"p": np.array([[[0.5], [1.5]]])}, (1, 2)).tolist()
    [[True, False]]
    """

    _elementwise = True  # datasets of different sizes go through part by part
    _parameter_constraints = {
        "keys": [str, list, tuple],
        "lower": [numbers.Real, "array-like", None],
        "upper": [numbers.Real, "array-like", None],
        "method": [StrOptions({"auto", "map", "reject", "select"})],
    }

    def __init__(self, keys, *, lower=None, upper=None, method="auto"):
        self.keys = keys
        self.lower = lower
        self.upper = upper
        self.method = method

    @property
    def rejects(self):
        """Whether draws outside the bounds are rejected (``method="reject"``)."""
        return self.method == "reject"

    @property
    def left_to_fit(self):
        """Whether the fit chooses between the map and rejection: ``method="select"``, or
        ``"auto"`` with both bounds."""
        return self.method == "select" or (self.method == "auto" and self.lower is not None
                                           and self.upper is not None)

    def support_mask(self, data, batch_shape):
        """Which draws lie inside the closed bounds: bool of shape ``batch_shape``.

        Parameters
        ----------
        data : dict of str to ndarray
            Values of this step's variables (the ones present are checked) with leading
            shape ``batch_shape`` and the variable's trailing shape after it.
        batch_shape : tuple of int
            The leading shape, e.g. ``(datasets, draws)``.
        """
        lo, hi = self._bounds()
        inside = np.ones(batch_shape, dtype=bool)
        for k in self._input_keys():
            if k not in data:
                continue
            x = np.asarray(data[k], dtype=np.float64)
            ok = np.ones(x.shape, dtype=bool)
            if lo is not None:
                ok &= x >= lo
            if hi is not None:
                ok &= x <= hi
            inside &= ok.reshape(*batch_shape, -1).all(axis=-1)
        return inside

    def _bounds(self):
        """``(lower, upper)`` as float64 arrays (0-d for a scalar) or None."""
        return tuple(None if b is None else np.asarray(b, dtype=np.float64)
                     for b in (self.lower, self.upper))

    def _validate(self):
        super()._validate()
        if self.lower is None and self.upper is None:
            raise ValueError(
                "Constrain needs a 'lower' bound, an 'upper' bound or both; got neither."
            )
        try:
            lo, hi = self._bounds()
        except (TypeError, ValueError):
            raise ValueError(f"Constrain's bounds must be numbers or 1-D arrays of numbers; got "
                             f"lower={self.lower!r}, upper={self.upper!r}.") from None
        for name, value in (("lower", lo), ("upper", hi)):
            if value is None:
                continue
            if value.ndim > 1 or value.size == 0:
                raise ValueError(f"Constrain's {name!r} bound must be a number or a 1-D array "
                                 f"(one bound per element of the last axis); got shape "
                                 f"{value.shape}.")
            if not np.all(np.isfinite(value)):
                raise ValueError(
                    f"Constrain's {name!r} bound must be finite or None; got {getattr(self, name)!r}."
                )
        if lo is not None and hi is not None:
            if lo.ndim and hi.ndim and lo.shape != hi.shape:
                raise ValueError(f"Constrain's bounds have {lo.size} and {hi.size} elements; "
                                 "give one per element of the last axis to both.")
            if not np.all(lo < hi):
                raise ValueError(
                    f"Constrain needs lower < upper; got lower={self.lower!r}, upper={self.upper!r}."
                )

    def _check_inputs(self, data, keys):
        lo, hi = self._bounds()
        width = max((b.size for b in (lo, hi) if b is not None and b.ndim), default=None)
        for k in keys:
            x = np.asarray(data[k])
            if width is not None and (x.ndim < 2 or x.shape[-1] != width):
                raise ShapeError(f"Constrain: {k!r} has shape {x.shape}, but the bounds have "
                                 f"{width} elements, one per element of the last axis; "
                                 f"expected (batch, ..., {width}).")
            if width is None:
                _check_support("Constrain", k, x, self.lower, self.upper)
                continue
            for j in range(width):  # one interval per element: say which one is broken
                _check_support("Constrain", f"{k}[..., {j}]", x[..., j],
                               None if lo is None else lo[j] if lo.ndim else lo,
                               None if hi is None else hi[j] if hi.ndim else hi)

    def _forward(self, key, x):
        x64 = np.asarray(x, dtype=np.float64)
        lo, hi = self._bounds()
        if self.rejects:
            z = x64
        elif hi is None:
            z = _softplus_inv(x64 - lo)
        elif lo is None:
            z = _softplus_inv(hi - x64)
        else:
            z = np.log(x64 - lo) - np.log(hi - x64)  # logit((x - lo) / (hi - lo))
        return z.astype(_out_dtype(x), copy=False)

    def _ldj(self, key, x):
        x64 = np.asarray(x, dtype=np.float64)
        lo, hi = self._bounds()
        if self.rejects:
            ldj = np.zeros_like(x64)
        elif hi is None:
            ldj = _log_dsoftplus_inv(x64 - lo)
        elif lo is None:
            ldj = _log_dsoftplus_inv(hi - x64)
        else:
            # dz/dx = 1/(x - lo) + 1/(hi - x) = (hi - lo) / ((x - lo)(hi - x))
            ldj = np.log(hi - lo) - np.log(x64 - lo) - np.log(hi - x64)
        return _sum_event(ldj)

    def _inverse(self, key, z):
        lo, hi = self._bounds()
        if self.rejects:   # no map: the estimator rejects what lies outside
            return np.asarray(z, dtype=np.float64)
        dtype = np.dtype(self.dtypes_.get(key, "float64"))
        if hi is None:
            x = lo + _softplus(z)
        elif lo is None:
            x = hi - _softplus(z)
        else:
            x = lo + (hi - lo) * _sigmoid(z)
        low = -_largest_finite(dtype) if lo is None else _each(_smallest_above, lo, dtype)
        high = _largest_finite(dtype) if hi is None else _each(_largest_below, hi, dtype)
        return np.clip(x, low, high)


def _each(fn, bounds, dtype):
    """``fn(bound, dtype)`` for a scalar bound or each element of an array of bounds."""
    if bounds.ndim == 0:
        return fn(float(bounds), dtype)
    return np.array([fn(float(b), dtype) for b in bounds])
