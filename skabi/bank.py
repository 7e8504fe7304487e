"""Simulation banks: fixed sets of simulations that scikit-learn can split.

A bank holds one array per simulated variable with a leading *simulation* axis, plus
meta variables that are constant over the bank (``N``). scikit-learn's cross-validation
cannot split a plain dict (it reports inconsistent numbers of samples), so
:class:`SimulationBank` exposes ``shape``, ``len`` and integer/boolean/slice indexing
along the simulation axis, which is what ``GridSearchCV`` and ``cross_val_score`` use.
"""

import numbers

import numpy as np

from .exceptions import MissingKeyError, ShapeError
from ._validation import suggest

__all__ = ["SimulationBank", "as_bank"]


class SimulationBank:
    """A fixed bank of simulations, indexable along the simulation axis.

    Parameters
    ----------
    data : dict of str to array-like
        Arrays with a common leading axis (the simulations); scalars and shape-``()``
        arrays are meta variables shared by every simulation. 1-D arrays become
        ``(n, 1)``, as in a simulator's output.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.bank import SimulationBank
    >>> bank = SimulationBank({"theta": np.zeros((100, 2)), "x": np.ones((100, 10)), "N": 10})
    >>> len(bank), bank.shape, bank[:30]["x"].shape, bank[np.array([0, 5])]["theta"].shape
    (100, (100,), (30, 10), (2, 2))
    """

    def __init__(self, data):
        arrays, meta = {}, {}
        for key, value in dict(data).items():
            arr = np.asarray(value)
            if arr.ndim == 0:
                meta[key] = value
            else:
                arrays[key] = arr[:, None] if arr.ndim == 1 else arr
        if not arrays:
            raise ValueError("A simulation bank needs at least one array with a leading axis.")
        lengths = {k: v.shape[0] for k, v in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise ShapeError(
                f"All variables of a bank need the same number of simulations (leading axis); "
                f"got {lengths}."
            )
        self._arrays, self._meta = arrays, meta
        self._n = next(iter(lengths.values()))

    @property
    def shape(self):
        """``(n_simulations,)``."""
        return (self._n,)

    def __len__(self):
        return self._n

    def keys(self):
        """Names of all variables, arrays and meta."""
        return [*self._arrays, *self._meta]

    def __contains__(self, key):
        return key in self._arrays or key in self._meta

    def to_dict(self):
        """The bank as a plain batch dict (no copy)."""
        return {**self._arrays, **self._meta}

    def __getitem__(self, index):
        if isinstance(index, str):
            if index in self._arrays:
                return self._arrays[index]
            if index in self._meta:
                return self._meta[index]
            raise MissingKeyError(
                f"The bank has no variable {index!r}; it holds {self.keys()!r}."
                f"{suggest(index, self.keys())}"
            )
        if isinstance(index, tuple):  # scikit-learn indexes as bank[key, ...]
            index = index[0]
        if isinstance(index, numbers.Integral):
            index = [index]
        if not isinstance(index, slice):
            index = np.asarray(index)
        out = SimulationBank.__new__(SimulationBank)
        out._arrays = {k: v[index] for k, v in self._arrays.items()}
        out._meta = dict(self._meta)
        out._n = next(iter(out._arrays.values())).shape[0]
        return out

    def __repr__(self):
        shapes = ", ".join(f"{k}: {v.shape[1:]}" for k, v in self._arrays.items())
        meta = f"; meta {self._meta}" if self._meta else ""
        return f"SimulationBank({self._n} simulations; {shapes}{meta})"


def as_bank(data):
    """Turn a dict, :class:`SimulationBank`, xarray Dataset or pandas DataFrame into a bank.

    An xarray Dataset's variables are taken with their first dimension as the simulation
    axis (0-d variables are meta); a DataFrame's columns become ``(n, 1)`` variables.
    """
    if isinstance(data, SimulationBank):
        return data
    if isinstance(data, dict):
        return SimulationBank(data)
    try:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return SimulationBank({str(c): data[c].to_numpy() for c in data.columns})
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    try:
        import xarray as xr

        if isinstance(data, xr.Dataset):
            return SimulationBank(
                {str(k): (v.values if v.ndim else v.values[()]) for k, v in data.data_vars.items()}
            )
    except ImportError:  # pragma: no cover - xarray is a dependency
        pass
    raise TypeError(
        "Expected a simulator, a dict of arrays, a SimulationBank, an xarray Dataset or a "
        f"pandas DataFrame; got {type(data).__name__}."
    )
