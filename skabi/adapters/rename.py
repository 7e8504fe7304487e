"""Rename a variable: :class:`Rename`."""

from __future__ import annotations

from ._base import Transform

__all__ = ["Rename"]


class Rename(Transform):
    """Rename ``from_key`` to ``to_key`` (e.g. to a role key such as ``inference_conditions``).

    Volume preserving; the inverse renames back.

    Parameters
    ----------
    from_key : str
    to_key : str
        Must not already exist in the batch.

    Attributes
    ----------
    keys_ : list of str
        ``[from_key]``.
    dtypes_ : dict of str to str

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters import Rename
    >>> batch = {"theta": np.zeros((4, 2)), "x": np.zeros((4, 10))}
    >>> step = Rename("theta", "inference_variables")
    >>> z = step.fit_transform(batch)
    >>> sorted(z), sorted(step.inverse_transform(z))
    (['inference_variables', 'x'], ['theta', 'x'])
    """

    _parameter_constraints = {"from_key": [str], "to_key": [str]}

    _ragged = True

    def __init__(self, from_key, to_key):
        self.from_key = from_key
        self.to_key = to_key

    def _input_keys(self):
        return [self.from_key]

    def _output_keys(self):
        return [self.to_key]

    def _resolve_keys(self, data):
        return [self.from_key]

    def _check_inputs(self, data, keys):
        if self.to_key in data and self.to_key != self.from_key:
            raise ValueError(
                f"Rename {self.from_key!r} -> {self.to_key!r} would overwrite the existing "
                f"variable {self.to_key!r}; drop it first or pick another name."
            )

    def _transform_present(self, data, keys):
        data[self.to_key] = data.pop(self.from_key)
        return data

    def _inverse_present(self, data, keys):
        data[self.from_key] = data.pop(self.to_key)
        return data

    def _log_det_jac_present(self, data, keys):
        return {}

    def _route(self, mapping, combine, *, undefined=False):
        if self.from_key in mapping:
            mapping[self.to_key] = mapping.pop(self.from_key)
        return mapping
