"""Join variables into one array: :class:`Concatenate`."""

from __future__ import annotations

import numbers

import numpy as np

from ..exceptions import ShapeError
from ._base import Transform

__all__ = ["Concatenate"]


class Concatenate(Transform):
    """Concatenate variables along an axis (the last by default) into one variable.

    ``fit`` remembers each part's size along ``axis`` so ``inverse_transform`` can split
    the result back (arrays of any leading shape, e.g. ``(datasets, draws, D)``). Parts
    with one dimension fewer than the others (e.g. a ``(B,)`` scalar parameter next to a
    ``(B, 2)`` one) gain a trailing axis of size 1 when ``axis=-1``; the inverse removes it.
    Volume preserving (log-det 0).

    Parameters
    ----------
    keys : str or list of str
        The parts, in order.
    into : str
        The name of the result (e.g. ``"inference_variables"``).
    axis : int, default=-1

    Attributes
    ----------
    keys_ : list of str
    dtypes_ : dict of str to str
    sizes_ : list of int
        Each part's size along ``axis``.
    expanded_ : list of bool
        Whether a part gained a trailing axis.
    axis_ : int
        ``axis`` as a negative index (valid for any leading shape).

    Raises
    ------
    ShapeError
        If the parts' shapes differ on another axis than ``axis`` (naming them).

    Examples
    --------
    A ``(B,)`` part gains a trailing axis; the inverse splits posterior draws of any
    leading shape back into the parts:

    >>> import numpy as np
    >>> from skabi.adapters import Concatenate
    >>> batch = {"beta": np.ones((4, 2)), "sigma": np.full(4, 3.0)}
    >>> step = Concatenate(["beta", "sigma"], into="inference_variables")
    >>> step.fit_transform(batch)["inference_variables"].shape
    (4, 3)
    >>> back = step.inverse_transform({"inference_variables": np.zeros((4, 100, 3))})
    >>> back["beta"].shape, back["sigma"].shape, step.sizes_
    ((4, 100, 2), (4, 100), [2, 1])
    """

    _parameter_constraints = {
        "keys": [str, list, tuple],
        "into": [str],
        "axis": [numbers.Integral],
    }

    def __init__(self, keys, *, into, axis=-1):
        self.keys = keys
        self.into = into
        self.axis = axis

    def _output_keys(self):
        return [self.into]

    def _check_inputs(self, data, keys):
        self._parts(data, keys)

    def _parts(self, data, keys):
        """The parts (expanded where needed), their negative axis, and expansion flags."""
        arrays = [np.asarray(data[k]) for k in keys]
        rank = max(a.ndim for a in arrays)
        expand = [self.axis == -1 and a.ndim == rank - 1 for a in arrays]
        arrays = [a[..., None] if e else a for a, e in zip(arrays, expand)]
        if rank == 0 or any(a.ndim != rank for a in arrays):
            shapes = ", ".join(f"{k!r} {np.shape(data[k])}" for k in keys)
            raise ShapeError(
                f"Concatenate into {self.into!r}: the parts need the same rank (>= 1); "
                f"got {shapes}."
            )
        axis = self.axis if self.axis < 0 else self.axis - rank
        if not -rank <= axis < 0:
            raise ShapeError(f"Concatenate into {self.into!r}: axis {self.axis} is out of range "
                             f"for parts of rank {rank}.")
        others = [a.shape[:axis] + (a.shape[axis + 1:] if axis != -1 else ()) for a in arrays]
        if len(set(others)) > 1:
            shapes = ", ".join(f"{k!r} {np.shape(data[k])}" for k in keys)
            raise ShapeError(
                f"Concatenate into {self.into!r}: the parts' shapes must agree on every axis "
                f"but axis {self.axis}; got {shapes}."
            )
        return arrays, axis, expand

    def _fit_present(self, data, keys):
        arrays, axis, expand = self._parts(data, keys)
        self.axis_ = int(axis)
        self.sizes_ = [int(a.shape[axis]) for a in arrays]
        self.expanded_ = [bool(e) for e in expand]

    def _transform_present(self, data, keys):
        arrays, axis, _ = self._parts(data, keys)
        for k in keys:
            del data[k]
        data[self.into] = np.concatenate(arrays, axis=axis)
        return data

    def _log_det_jac_present(self, data, keys):
        return {}

    def _inverse_present(self, data, keys):
        z = np.asarray(data.pop(self.into), dtype=np.float64)
        total = sum(self.sizes_)
        if z.ndim < -self.axis_ or z.shape[self.axis_] != total:
            raise ShapeError(
                f"Concatenate: {self.into!r} has shape {z.shape}; expected size {total} along "
                f"axis {self.axis_} (parts {dict(zip(self.keys_, self.sizes_))!r})."
            )
        parts = np.split(z, np.cumsum(self.sizes_)[:-1], axis=self.axis_)
        for k, part, expanded in zip(self.keys_, parts, self.expanded_):
            data[k] = part[..., 0] if expanded else part
        return data

    def _route(self, mapping, combine, *, undefined=False):
        keys = self._input_keys()
        parts = [mapping.pop(k) for k in keys if k in mapping]
        if parts:
            mapping[self.into] = combine(parts)
        return mapping
