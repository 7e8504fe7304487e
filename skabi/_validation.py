"""Small checks shared by all layers: keys, finiteness, random states."""

import difflib
import numbers

import numpy as np
from sklearn.utils._param_validation import Interval

from .exceptions import MissingKeyError, NonFiniteError

__all__ = ["check_keys", "check_finite", "as_numpy_rng", "suggest", "check_positive_int",
           "check_result_size", "memory_bytes", "NumberInterval"]


def suggest(key, options):
    """Return ``" Did you mean 'x'?"`` for a near miss of ``key`` in ``options``, else ``""``."""
    close = difflib.get_close_matches(str(key), [str(o) for o in options], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_keys(data, keys, *, where):
    """Raise :class:`MissingKeyError` naming every key of ``keys`` absent from ``data``.

    Parameters
    ----------
    data : mapping
        The batch.
    keys : iterable of str
        The keys that must be present.
    where : str
        Who needs them, for the message (``"step 'concatenate'"``).
    """
    missing = [k for k in keys if k not in data]
    if missing:
        hint = suggest(missing[0], data.keys()) if len(missing) == 1 else ""
        raise MissingKeyError(
            f"{where} needs {missing!r}, which the batch lacks; available keys are "
            f"{sorted(map(str, data.keys()))!r}.{hint}"
        )


def check_finite(name, array):
    """Raise :class:`NonFiniteError` if the float array ``array`` holds NaN or inf."""
    array = np.asarray(array)
    if array.dtype.kind in "fc":
        bad = ~np.isfinite(array)
        n_bad = int(bad.sum())
        if n_bad:
            first = np.unravel_index(int(np.argmax(bad)), array.shape) if array.ndim else ()
            raise NonFiniteError(
                f"{name!r} holds {n_bad} NaN or infinite value(s) out of {array.size} "
                f"(shape {array.shape}; first at index {tuple(int(i) for i in first)})."
            )
    return array


def as_numpy_rng(random_state):
    """Turn ``None``, an int, a ``SeedSequence`` or a ``Generator`` into a numpy ``Generator``.

    A ``numpy.random.RandomState`` is accepted too (its stream seeds a new Generator).
    """
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.SeedSequence)):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise ValueError(
        "random_state must be None, an int, a numpy SeedSequence, Generator or RandomState; "
        f"got {random_state!r} of type {type(random_state).__name__}."
    )


def check_positive_int(name, value):
    """Return ``value`` as an int if it is a positive integer (not a bool), else raise
    ``ValueError`` naming ``name`` and the value got."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}.")
    return int(value)


def memory_bytes():
    """The machine's physical memory in bytes (64 GiB where the system does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 64 * 2**30


def _bytes(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def check_result_size(name, value, n_values, *, itemsize=8, what="the result"):
    """Refuse a request whose result would not fit in memory, before anything is allocated.

    Parameters
    ----------
    name : str
        The argument that sets the size (``"num_samples"``).
    value : int
        Its value.
    n_values : int
        Values the result would hold (``datasets * num_samples * values per draw``).
    itemsize : int, default=8
        Bytes per value (float64).
    what : str, default="the result"
        What would be allocated, for the message.

    Examples
    --------
    >>> from skabi._validation import check_result_size
    >>> check_result_size("num_samples", 10**12, 3 * 10**12, what="3 datasets x 1 value")
    Traceback (most recent call last):
    ...
    ValueError: num_samples=1000000000000 makes 3 datasets x 1 value = 3000000000000 values (21.8 TiB as float64), more than this machine's memory (...); draw fewer per call (several calls with different random_state give independent draws).
    """
    size = int(n_values) * int(itemsize)
    limit = memory_bytes()
    if size > limit:
        raise ValueError(
            f"{name}={value!r} makes {what} = {int(n_values)} values ({_bytes(size)} as "
            f"float64), more than this machine's memory ({_bytes(limit)}); draw fewer per "
            "call (several calls with different random_state give independent draws).")


class NumberInterval(Interval):
    """scikit-learn's :class:`~sklearn.utils._param_validation.Interval` without bools.

    ``True`` is an ``Integral`` to Python, but never a meaningful depth, width or rate, so
    a ``bool`` does not satisfy this constraint. The error message is scikit-learn's.

    Examples
    --------
    >>> from numbers import Integral
    >>> from skabi._validation import NumberInterval
    >>> depth = NumberInterval(Integral, 1, None, closed="left")
    >>> depth.is_satisfied_by(3), depth.is_satisfied_by(True), str(depth)
    (True, False, 'an int in the range [1, inf)')
    """

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)
