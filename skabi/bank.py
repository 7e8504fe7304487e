"""Batches and banks of simulations, and the one rule for reading them.

The batch rule
--------------
A *batch* is a ``dict[str, array]``: every array has a leading axis, the simulations (or
datasets); 0-d values are meta variables, constant over the batch (``N``); a 1-D array
becomes ``(n, 1)`` (one value per simulation, as a simulator gives a scalar per draw).
A variable whose datasets differ in size (``x`` with 5 observations in one dataset and
12 in another) is *ragged*: a list of per-dataset arrays, padded into ``(B, N_max, F)``
with a mask by :class:`~skabi.adapters.AsSet` / :class:`~skabi.adapters.AsTimeSeries`.
:func:`as_rows` applies the rule to one value; everything that reads or writes batches
(simulators, banks, storage, the estimator) goes through it.

What ``fit`` and ``sample`` accept is sorted by :mod:`skabi.inputs`, with this rule.

Banks
-----
scikit-learn's cross-validation cannot split a plain dict (it reports inconsistent
numbers of samples), so :class:`SimulationBank` exposes ``shape``, ``len`` and
integer/boolean/slice indexing along the simulation axis, which is what
``GridSearchCV`` and ``cross_val_score`` use.
"""

import numbers

import numpy as np

from ._validation import suggest
from .exceptions import MissingKeyError, ShapeError

__all__ = ["Batch", "SimulationBank", "as_bank", "as_rows", "is_ragged", "dataset",
           "batch_size_of", "stack_datasets", "concatenate_batches"]


# --------------------------------------------------------------------------- the rule
def is_ragged(value, *, any_sequence=False):
    """Whether ``value`` is a ragged variable: a list (or 1-D object array) of arrays whose
    shapes differ. A list of arrays of one shape is an ordinary array, stacked.

    With ``any_sequence``, as the output containers read user values: a tuple counts as a
    list, and its items need not be arrays yet (a list of lists of different lengths is
    ragged).

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.bank import is_ragged
    >>> is_ragged([np.zeros(2), np.zeros(3)]), is_ragged([np.zeros(2), np.zeros(2)])
    (True, False)
    >>> is_ragged([[0, 1], [0]]), is_ragged([[0, 1], [0]], any_sequence=True)
    (False, True)
    """
    if isinstance(value, np.ndarray):
        if value.dtype != object or value.ndim != 1:
            return False
    elif not isinstance(value, (list, tuple) if any_sequence else list):
        return False
    if not len(value):
        return False
    if any_sequence:
        arrays = [np.asarray(v) for v in value]
    elif all(isinstance(v, np.ndarray) for v in value):
        arrays = value
    else:
        return False
    first = arrays[0].shape
    return any(a.shape != first for a in arrays)


def dataset(value, k):
    """Dataset ``k`` of a batch variable: item ``k`` of a ragged list, row ``k`` of a
    ``(K, ...)`` array, or a 0-d (meta) value as it is.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.bank import dataset
    >>> dataset(np.arange(6).reshape(3, 2), 1), dataset(np.array(7), 2), dataset([[1], [2, 3]], 1)
    (array([2, 3]), array(7), array([2, 3]))
    """
    if isinstance(value, list):
        return np.asarray(value[k])
    arr = np.asarray(value)
    return arr if arr.ndim == 0 else arr[k]


def as_rows(value, key="variable"):
    """The batch rule for one value: 0-d stays (meta), 1-D becomes ``(n, 1)``, ragged
    lists stay lists of arrays, everything else is an array with a leading batch axis."""
    if is_ragged(value):
        return list(value)
    arr = np.asarray(value)
    if arr.dtype == object:
        raise ShapeError(
            f"{key!r} could not be read as a numeric array (it holds {type(value).__name__} "
            "of differing shapes or non-numbers); pass an array, or a list of datasets "
            "whose arrays have the same rank.")
    return arr[:, None] if arr.ndim == 1 else arr


def batch_size_of(value):
    """Rows of a batch value (None for meta)."""
    if is_ragged(value):
        return len(value)
    return None if np.ndim(value) == 0 else np.shape(value)[0]


def stack_datasets(datasets, expected=None):
    """One batch from a list of datasets, each a dict of ONE dataset's variables.

    Arrays of equal shape are stacked; arrays whose shapes differ along their first axis
    (observations, time steps) become a ragged list. A scalar stays a meta variable where
    it is equal in every dataset and was meta in training (``expected[key] == ()``; without
    ``expected``: where there are several datasets); otherwise it becomes one value per
    dataset ``(n, 1)``, as a scalar parameter of each simulation does.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.bank import stack_datasets
    >>> batch = stack_datasets([{"x": np.zeros(5), "N": 5}, {"x": np.zeros(12), "N": 12}])
    >>> [a.shape for a in batch["x"]], batch["N"].ravel().tolist()
    ([(5,), (12,)], [5, 12])
    >>> stack_datasets([{"x": np.zeros(3), "N": 3}, {"x": np.ones(3), "N": 3}])["x"].shape
    (2, 3)
    """
    if not datasets or not all(isinstance(d, dict) for d in datasets):
        raise TypeError("A list of datasets must hold at least one dict of that dataset's "
                        "variables (no leading dataset axis).")
    keys = list(datasets[0])
    for i, d in enumerate(datasets):
        if set(d) != set(keys):
            raise MissingKeyError(
                f"Dataset {i} has variables {sorted(d)!r} but dataset 0 has {sorted(keys)!r}; "
                "every dataset of a list needs the same variables.")
    batch = {}
    for key in keys:
        values = [np.asarray(d[key]) for d in datasets]
        shapes = [v.shape for v in values]
        if all(v.ndim == 0 for v in values):
            same = all(np.array_equal(v, values[0]) for v in values)
            meta = expected.get(key) == () if expected and key in expected \
                else len(values) > 1
            batch[key] = values[0][()] if same and meta else as_rows(np.stack(values), key)
        elif len(set(shapes)) == 1:
            batch[key] = as_rows(np.stack(values), key)
        else:
            first = shapes[0]
            odd = next((i for i, s in enumerate(shapes)
                        if len(s) == 0 or len(s) != len(first) or s[1:] != first[1:]), None)
            if odd is not None:
                raise ShapeError(
                    f"{key!r} has shape {shapes[odd]} in dataset {odd} but {first} in dataset "
                    "0; datasets may differ in their first axis only (the number of "
                    "observations or time steps).")
            batch[key] = values
    return batch


# --------------------------------------------------------------------------- batches
def _take_rows(value, index):
    """Rows ``index`` (an int array) of one batch value; meta variables stay."""
    if is_ragged(value):
        return [value[i] for i in index]
    if np.ndim(value) == 0:
        return value
    return np.asarray(value)[index]


class Batch(dict):
    """A batch of simulations: a dict of variables that scikit-learn can also split.

    What :meth:`~skabi.Simulator.sample` returns. A plain dict to everything that reads
    variables (``batch["x"]``, ``batch.keys()``, ``**batch``); in addition it has
    ``shape == (n_simulations,)`` and takes integer, boolean or slice indexes along the
    simulations (``batch[np.array([0, 5])]`` is a :class:`Batch` of two simulations, meta
    variables kept), which is all scikit-learn's splitters and ``_safe_indexing`` need:
    ``GridSearchCV(est, grid).fit(simulator.sample(600))`` and ``cross_val_score`` work.
    Variables are named by strings; any other key is a row index.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.bank import Batch
    >>> batch = Batch(theta=np.zeros((6, 2)), x=np.ones((6, 10)), N=10)
    >>> batch.shape, batch["x"].shape, batch[np.array([0, 3])]["theta"].shape
    ((6,), (6, 10), (2, 2))
    >>> batch[2:4]["N"], isinstance(batch, dict)
    (10, True)
    """

    @property
    def shape(self):
        """``(n_simulations,)``: the leading axis of the variables."""
        sizes = {batch_size_of(v) for v in self.values()} - {None}
        if len(sizes) > 1:
            raise ShapeError("The variables of this batch disagree on the number of "
                             "simulations (leading axis): "
                             f"{ {k: batch_size_of(v) for k, v in self.items()} }.")
        return (sizes.pop() if sizes else 0,)

    def __getitem__(self, key):
        if isinstance(key, str):
            return dict.__getitem__(self, key)
        if isinstance(key, tuple):  # scikit-learn indexes as X[rows, ...]
            key = key[0]
        n = self.shape[0]
        if isinstance(key, slice):
            index = np.arange(n)[key]
        else:
            index = np.asarray(key)
            if index.size == 0:
                index = index.astype(np.intp)
            if index.dtype == bool:
                if index.shape != (n,):
                    raise IndexError(f"A boolean mask over this batch needs shape ({n},); got "
                                     f"{index.shape}.")
                index = np.flatnonzero(index)
            elif index.dtype.kind not in "iu":
                return dict.__getitem__(self, key)
            # an int selects one simulation and keeps the axis: a Batch of one
            index = np.arange(n)[np.atleast_1d(index)]
        return Batch({k: _take_rows(v, index) for k, v in self.items()})

    def copy(self):
        """A shallow copy that is a :class:`Batch` too."""
        return Batch(self)

    def __reduce__(self):  # pickled as a Batch, not a plain dict
        return (Batch, (dict(self),))


def concatenate_batches(batches):
    """One :class:`Batch` of the simulations of several batches, in order.

    Variables whose per-simulation shapes agree are concatenated; where the meta variables
    of the batches gave them different sizes (``x`` with ``N = 5`` in one batch and 12 in
    another) they become ragged (one array per simulation); meta variables equal in every
    batch stay meta, otherwise they become one value per simulation ``(n, 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.bank import concatenate_batches
    >>> both = concatenate_batches([{"x": np.zeros((2, 5)), "N": 5},
    ...                             {"x": np.zeros((3, 12)), "N": 12}])
    >>> both.shape, [a.shape for a in both["x"]], both["N"].ravel().tolist()
    ((5,), [(5,), (5,), (12,), (12,), (12,)], [5, 5, 12, 12, 12])
    """
    batches = [dict(b) for b in batches]
    if not batches:
        raise ValueError("concatenate_batches needs at least one batch.")
    keys = list(batches[0])
    for i, b in enumerate(batches):
        if set(b) != set(keys):
            raise MissingKeyError(f"Batch {i} has variables {sorted(b)!r} but batch 0 has "
                                  f"{sorted(keys)!r}; batches to join need the same ones.")
    sizes = [Batch(b).shape[0] for b in batches]
    if 0 in sizes:
        raise ValueError(f"Batch {sizes.index(0)} holds no array with a leading axis (only "
                         "meta variables): there are no simulations to join.")
    out = {}
    for key in keys:
        values = [b[key] for b in batches]
        if all(not is_ragged(v) and np.ndim(v) == 0 for v in values) and \
                all(np.array_equal(v, values[0]) for v in values):
            out[key] = values[0]
            continue
        rows = [list(v) if is_ragged(v) else
                np.full((n, 1), v) if np.ndim(v) == 0 else as_rows(v, key)
                for v, n in zip(values, sizes)]
        if all(isinstance(r, np.ndarray) for r in rows) and len({r.shape[1:] for r in rows}) == 1:
            out[key] = np.concatenate(rows)
        else:
            out[key] = [np.asarray(x) for r in rows for x in r]
    return Batch(out)


# --------------------------------------------------------------------------- banks
class SimulationBank:
    """A fixed bank of simulations, indexable along the simulation axis.

    Parameters
    ----------
    data : dict of str to array-like
        Arrays with a common leading axis (the simulations); scalars and shape-``()``
        arrays are meta variables shared by every simulation. 1-D arrays become
        ``(n, 1)``, as in a simulator's output (:func:`as_rows`). A list of arrays of
        different sizes is a ragged variable (one array per simulation).

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
            value = as_rows(value, key)
            if isinstance(value, list):
                ragged = np.empty(len(value), dtype=object)
                ragged[:] = value
                arrays[key] = ragged
            elif value.ndim == 0:
                meta[key] = data[key]
            else:
                arrays[key] = value
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
        """The bank as a plain batch dict (no copy; ragged variables as lists)."""
        return {**{k: (list(v) if v.dtype == object else v) for k, v in self._arrays.items()},
                **self._meta}

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
        shapes = ", ".join(f"{k}: {'ragged' if v.dtype == object else v.shape[1:]}"
                           for k, v in self._arrays.items())
        meta = f"; meta {self._meta}" if self._meta else ""
        return f"SimulationBank({self._n} simulations; {shapes}{meta})"


def as_bank(data):
    """Turn a dict, list of simulations, :class:`SimulationBank`, xarray Dataset or pandas
    DataFrame into a bank.

    An xarray Dataset's variables are taken with their first dimension as the simulation
    axis (0-d variables are meta); a DataFrame's columns become ``(n, 1)`` variables; a
    list holds one dict per simulation (:func:`stack_datasets`).
    """
    if isinstance(data, SimulationBank):
        return data
    if isinstance(data, dict):
        return SimulationBank(data)
    if isinstance(data, list):
        return SimulationBank(stack_datasets(data))
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return SimulationBank({str(c): data[c].to_numpy() for c in data.columns})
    import xarray as xr

    if isinstance(data, xr.Dataset):
        return SimulationBank(
            {str(k): (v.values if v.ndim else v.values[()]) for k, v in data.data_vars.items()}
        )
    raise TypeError(
        "Expected a simulator, a dict of arrays, a list of datasets, a SimulationBank, an "
        f"xarray Dataset or a pandas DataFrame; got {type(data).__name__}."
    )
