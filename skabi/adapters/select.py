"""Keep or drop variables: :class:`Keep`, :class:`Drop`."""

from __future__ import annotations

from ._base import Transform
from .roles import MASK

__all__ = ["Keep", "Drop"]


class _Select(Transform):
    _parameter_constraints = {"keys": [str, list, tuple]}
    _lenient = True
    _ragged = True

    def __init__(self, keys):
        self.keys = keys

    def _output_keys(self):
        return []  # nothing to undo: the inverse passes data through

    def _present_inputs(self, data):
        # Keep/Drop always run; absent keys are simply not there to keep or drop.
        return list(self._input_keys()) or []

    def _inverse_present(self, data, keys):  # pragma: no cover - never reached
        return data

    def _route(self, mapping, combine, *, undefined=False):
        return self._select(mapping)

    def _log_det_jac_present(self, data, keys):
        return {}

    def _transform_present(self, data, keys):
        return self._select(data)


class Keep(_Select):
    """Keep only the given variables; drop every other one.

    ``fit`` checks that they exist; at transform time absent ones are ignored.

    Parameters
    ----------
    keys : str or list of str

    Attributes
    ----------
    keys_ : list of str
    dtypes_ : dict of str to str

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters import Keep
    >>> batch = {"theta": np.zeros((4, 2)), "x": np.zeros((4, 10)), "N": 10}
    >>> sorted(Keep(["theta", "x"]).fit_transform(batch))
    ['theta', 'x']
    """

    def _select(self, mapping):
        keep = {*self._input_keys(), MASK}  # the padding mask goes with the sets it marks
        return {k: v for k, v in mapping.items() if k in keep}


class Drop(_Select):
    """Drop the given variables.

    ``fit`` checks that they exist; at transform time absent ones are ignored.

    Parameters
    ----------
    keys : str or list of str

    Attributes
    ----------
    keys_ : list of str
    dtypes_ : dict of str to str

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters import Drop
    >>> batch = {"theta": np.zeros((4, 2)), "x": np.zeros((4, 10)), "N": 10}
    >>> sorted(Drop("N").fit_transform(batch))
    ['theta', 'x']
    """

    def _select(self, mapping):
        drop = set(self._input_keys())
        return {k: v for k, v in mapping.items() if k not in drop}
