"""Cast variables: :class:`ConvertDType`."""

from __future__ import annotations

import numpy as np

from ._base import Transform

__all__ = ["ConvertDType"]


class ConvertDType(Transform):
    """Cast variables from ``from_dtype`` to ``to_dtype``; the inverse casts back.

    Log-det 0 (a cast is treated as the identity on values).

    Parameters
    ----------
    keys : str or list of str
    from_dtype : str or numpy dtype
        The dtype the variables must have (checked).
    to_dtype : str or numpy dtype

    Attributes
    ----------
    keys_ : list of str
    dtypes_ : dict of str to str

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters import ConvertDType
    >>> batch = {"n": np.array([[3], [7]], dtype="int64")}
    >>> step = ConvertDType("n", from_dtype="int64", to_dtype="float32")
    >>> z = step.fit_transform(batch)
    >>> z["n"].dtype.name, step.inverse_transform(z)["n"].dtype.name
    ('float32', 'int64')
    >>> step.inverse_transform(z)["n"].tolist()
    [[3], [7]]
    """

    _elementwise = True  # datasets of different sizes go through part by part
    _parameter_constraints = {
        "keys": [str, list, tuple],
        "from_dtype": [str, type, np.dtype],
        "to_dtype": [str, type, np.dtype],
    }

    def __init__(self, keys, *, from_dtype, to_dtype):
        self.keys = keys
        self.from_dtype = from_dtype
        self.to_dtype = to_dtype

    def _validate(self):
        super()._validate()
        for name in ("from_dtype", "to_dtype"):
            try:
                np.dtype(getattr(self, name))
            except TypeError as exc:
                raise ValueError(
                    f"ConvertDType's {name!r} must name a numpy dtype; "
                    f"got {getattr(self, name)!r}."
                ) from exc

    def _check_inputs(self, data, keys):
        want = np.dtype(self.from_dtype)
        for k in keys:
            got = np.asarray(data[k]).dtype
            if got != want:
                raise TypeError(
                    f"ConvertDType expects {k!r} of dtype {want.name}; got {got.name}."
                )

    def _forward(self, key, x):
        return np.asarray(x).astype(np.dtype(self.to_dtype))

    def _inverse(self, key, z):
        return np.asarray(z).astype(np.dtype(self.from_dtype))
