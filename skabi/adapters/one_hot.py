"""One-hot encoding of integer class labels: :class:`OneHot`."""

from __future__ import annotations

import numbers

import numpy as np

from ..exceptions import SupportError
from ._base import Transform

__all__ = ["OneHot"]


class OneHot(Transform):
    """Encode integer labels in ``[0, num_classes)`` as one-hot vectors (float32).

    ``(B, ...) -> (B, ..., num_classes)``, except that one label per row, ``(B,)`` or
    ``(B, 1)`` (the form :meth:`skabi.Simulator.sample` gives a 1-D variable), becomes
    ``(B, num_classes)``. Not invertible (the map is discrete).

    Parameters
    ----------
    keys : str or list of str
    num_classes : int
        Number of classes, >= 1.

    Attributes
    ----------
    keys_ : list of str
    dtypes_ : dict of str to str

    Raises
    ------
    SupportError
        If a value is not an integer in ``[0, num_classes)`` (naming the variable).

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters import OneHot
    >>> batch = {"model": np.array([0, 2, 1])}
    >>> z = OneHot("model", num_classes=3).fit_transform(batch)
    >>> z["model"].shape, z["model"].dtype.name
    ((3, 3), 'float32')
    >>> z["model"].argmax(axis=-1).tolist()
    [0, 2, 1]
    """

    invertible = False
    _parameter_constraints = {"keys": [str, list, tuple], "num_classes": [numbers.Integral]}

    def __init__(self, keys, *, num_classes):
        self.keys = keys
        self.num_classes = num_classes

    def _validate(self):
        super()._validate()
        if isinstance(self.num_classes, bool) or self.num_classes < 1:
            raise ValueError(f"OneHot needs num_classes >= 1; got {self.num_classes!r}.")

    def _check_inputs(self, data, keys):
        for k in keys:
            x = np.asarray(data[k])
            if x.dtype.kind not in "biuf":
                raise SupportError(f"OneHot needs integer labels for {k!r}; got dtype {x.dtype}.")
            bad = (x < 0) | (x >= self.num_classes) | (x != np.round(x))
            n_bad = int(bad.sum())
            if n_bad:
                raise SupportError(
                    f"OneHot: {n_bad} of {x.size} values of {k!r} are not integers in "
                    f"[0, {self.num_classes}) (e.g. {x[bad].ravel()[0].item()!r})."
                )

    def _forward(self, key, x):
        x = np.asarray(x)
        if x.ndim == 2 and x.shape[1] == 1:  # one label per row
            x = x[:, 0]
        return np.eye(self.num_classes, dtype=np.float32)[x.astype(np.intp)]
