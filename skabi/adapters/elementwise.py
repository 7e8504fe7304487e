"""Elementwise bijections with a closed form: :class:`Sqrt` and :class:`Log`."""

from __future__ import annotations

import numpy as np

from ._base import Transform, _check_support, _out_dtype, _sum_event

__all__ = ["Sqrt", "Log"]


class Sqrt(Transform):
    """Square root of non-negative variables, ``z = sqrt(x)``.

    Typical use: a sample size ``N`` fed as a condition. The inverse is ``x = z ** 2``
    (computed in float64, capped at the largest finite float of the fit dtype), which
    maps any real ``z`` into the support ``[0, inf)`` (negative ``z`` are reflected).

    Parameters
    ----------
    keys : str or list of str
        The variables to transform.

    Attributes
    ----------
    keys_ : list of str
        The transformed variables.
    dtypes_ : dict of str to str
        Their dtypes in the fit batch.

    Raises
    ------
    SupportError
        If a value is negative (naming the variable and how many values are).

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters import Sqrt
    >>> batch = {"N": np.array([[4], [9], [100]])}
    >>> step = Sqrt("N")
    >>> z = step.fit_transform(batch)
    >>> z["N"].ravel().tolist()
    [2.0, 3.0, 10.0]
    >>> step.inverse_transform(z)["N"].ravel().tolist()
    [4.0, 9.0, 100.0]
    """

    _elementwise = True  # datasets of different sizes go through part by part
    _parameter_constraints = {"keys": [str, list, tuple]}

    def __init__(self, keys):
        self.keys = keys

    def _check_inputs(self, data, keys):
        for k in keys:
            _check_support("Sqrt", k, data[k], 0.0, None, low_closed=True)

    def _forward(self, key, x):
        return np.sqrt(np.asarray(x, dtype=np.float64)).astype(_out_dtype(x), copy=False)

    def _inverse(self, key, z):
        with np.errstate(over="ignore"):
            x = np.square(z)
        return np.minimum(x, _largest_finite(self._dtype(key)))

    def _dtype(self, key):
        return np.dtype(getattr(self, "dtypes_", {}).get(key, "float64"))

    def _ldj(self, key, x):
        # dz/dx = 1 / (2 sqrt(x)); +inf at x == 0
        with np.errstate(divide="ignore"):
            return _sum_event(-np.log(2.0) - 0.5 * np.log(np.asarray(x, dtype=np.float64)))


class Log(Transform):
    """Natural logarithm of positive variables, ``z = log(x)``.

    The inverse ``x = exp(z)`` is computed in float64 and clipped to the smallest positive
    and the largest finite float of the dtype seen in ``fit``, so it always lies strictly
    inside ``(0, inf)``, also once cast back to that dtype.

    Parameters
    ----------
    keys : str or list of str
        The variables to transform.

    Attributes
    ----------
    keys_ : list of str
    dtypes_ : dict of str to str

    Raises
    ------
    SupportError
        If a value is zero or negative.

    Examples
    --------
    A positive scale ``sigma`` becomes unbounded; the inverse maps any real ``z`` back to
    a positive value, even where ``exp(z)`` underflows:

    >>> import numpy as np
    >>> from skabi.adapters import Log
    >>> batch = {"sigma": np.random.default_rng(0).gamma(2.0, size=(5, 1))}
    >>> step = Log("sigma")
    >>> z = step.fit_transform(batch)
    >>> np.allclose(z["sigma"], np.log(batch["sigma"]))
    True
    >>> np.allclose(step.inverse_transform(z)["sigma"], batch["sigma"])
    True
    >>> bool(step.inverse_transform({"sigma": np.array([[-1000.0]])})["sigma"][0, 0] > 0)
    True
    """

    _elementwise = True  # datasets of different sizes go through part by part
    _parameter_constraints = {"keys": [str, list, tuple]}

    def __init__(self, keys):
        self.keys = keys

    def _check_inputs(self, data, keys):
        for k in keys:
            _check_support("Log", k, data[k], 0.0, None)

    def _forward(self, key, x):
        return np.log(np.asarray(x, dtype=np.float64)).astype(_out_dtype(x), copy=False)

    def _inverse(self, key, z):
        with np.errstate(over="ignore"):
            x = np.exp(z)
        dtype = np.dtype(getattr(self, "dtypes_", {}).get(key, "float64"))
        return np.clip(x, _smallest_above(0.0, dtype), _largest_finite(dtype))

    def _ldj(self, key, x):
        return _sum_event(-np.log(np.asarray(x, dtype=np.float64)))


def _largest_finite(dtype):
    """The largest finite float of ``dtype`` (float64 for non-float dtypes)."""
    return float(np.finfo(dtype if dtype.kind == "f" else np.float64).max)


def _smallest_above(value, dtype):
    """The smallest float of ``dtype`` strictly above ``value``, as float64.

    Under flush-to-zero (``torch.set_flush_denormal(True)`` sets the CPU's FTZ/DAZ flags,
    which numpy shares) a subnormal reads as zero, so the step falls back to the smallest
    normal float.
    """
    dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)
    info = np.finfo(dtype)
    out = np.asarray(value, dtype=dtype)
    for _ in range(3):  # dtype rounding of `value` may land below it: step again
        nxt = np.nextafter(out, np.asarray(np.inf, dtype=dtype))
        if not float(nxt) > float(out):  # subnormals flushed: nextafter cannot move
            nxt = np.asarray(float(out) + max(abs(float(out)) * float(info.eps),
                                              float(info.tiny)), dtype=dtype)
        out = nxt
        if float(out) > value:
            return float(out)
    raise FloatingPointError(f"No {dtype} float above {value!r} could be found.")


def _largest_below(value, dtype):
    """The largest float of ``dtype`` strictly below ``value``, as float64."""
    return -_smallest_above(-value, dtype)
