"""Simulation banks and the one rule for what users pass to ``fit`` and ``sample``.

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

The input dispatcher
--------------------
:func:`fit_input` sorts what ``fit`` was given (a simulator, a bank in memory, a bank to
stream) and :func:`as_observations` turns what ``sample`` / ``log_prob`` were given into
one batch. Neither guesses silently: where the rule and the shapes seen in training
disagree they raise an error that says what skabi understood.

Banks
-----
scikit-learn's cross-validation cannot split a plain dict (it reports inconsistent
numbers of samples), so :class:`SimulationBank` exposes ``shape``, ``len`` and
integer/boolean/slice indexing along the simulation axis, which is what
``GridSearchCV`` and ``cross_val_score`` use.
"""

import numbers
import os

import numpy as np

from ._validation import suggest
from .exceptions import MissingKeyError, ShapeError

__all__ = ["Batch", "SimulationBank", "as_bank", "as_rows", "is_ragged", "stack_datasets",
           "concatenate_batches",
           "is_simulator", "is_stream", "array_bank", "fit_input", "as_observations",
           "size_links", "check_size_links"]


# --------------------------------------------------------------------------- the rule
def is_ragged(value):
    """Whether ``value`` is a ragged variable: a list (or 1-D object array) of arrays whose
    shapes differ. A list of arrays of one shape is an ordinary array, stacked."""
    if isinstance(value, np.ndarray):
        if value.dtype != object or value.ndim != 1:
            return False
    elif not isinstance(value, list):
        return False
    if not len(value) or not all(isinstance(v, np.ndarray) for v in value):
        return False
    first = value[0].shape
    return any(v.shape != first for v in value)


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


# --------------------------------------------------------------------------- dispatch
def is_stream(obj):
    """A path to a bank on disk, or an xarray Dataset/DataTree: read batch by batch."""
    if isinstance(obj, (str, os.PathLike)):
        return True
    import xarray as xr

    return isinstance(obj, (xr.Dataset, xr.DataTree))


def is_simulator(obj):
    """Anything with ``sample(batch_size, random_state=...)`` that is not a bank of data."""
    import pandas as pd

    if isinstance(obj, (SimulationBank, dict, list, pd.DataFrame, np.ndarray)) or is_stream(obj):
        return False
    return callable(getattr(obj, "sample", None))


def array_bank(X, y):
    """``fit(X, y)`` with arrays: a bank of data ``"x"`` and parameters ``"theta"``."""
    from sklearn.utils.validation import check_array

    if y is None:
        raise ValueError("fit(X) with an array X requires y to be passed, but the target y is "
                         "None; pass the parameters as y, or a dict/bank of simulations as X.")
    # scikit-learn's own checks: 2+ dims, at least one simulation and feature, finite.
    X = check_array(X, allow_nd=True, dtype="numeric", input_name="X")
    y = check_array(y, ensure_2d=False, dtype="numeric", input_name="y")
    if y.shape[0] != X.shape[0]:
        raise ShapeError(f"X and y need the same number of simulations; got X {X.shape}, "
                         f"y {y.shape}.")
    return as_bank({"x": X, "theta": y})


def fit_input(X, y=None):
    """Sort what ``fit`` was given: ``(kind, data)`` with kind ``"simulator"`` (data: the
    simulator), ``"stream"`` (a path or xarray object, read batch by batch) or ``"bank"``
    (data: a :class:`SimulationBank` in memory).

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import make_simulator
    >>> from skabi.bank import fit_input
    >>> fit_input(make_simulator(lambda rng: dict(theta=rng.normal())))[0]
    'simulator'
    >>> kind, bank = fit_input(np.zeros((10, 3)), np.zeros(10))
    >>> kind, bank
    ('bank', SimulationBank(10 simulations; x: (3,), theta: (1,)))
    >>> fit_input("bank.zarr")[0]
    'stream'
    """
    if y is not None or isinstance(X, np.ndarray):
        return "bank", array_bank(X, y)
    if is_simulator(X):
        return "simulator", X
    if is_stream(X):
        return "stream", X
    return "bank", as_bank(X)


def _one_dimensional(key, arr, expected):
    """Refuse to read a 1-D array as one value per dataset when training had more."""
    trailing = expected.get(key)
    if trailing is None or tuple(trailing) in ((), (1,)) or arr.ndim != 1:
        return  # unknown, meta in training (now one value per dataset), or one value
    shown = tuple("N" if s is None else s for s in trailing)
    raise ShapeError(
        f"{key!r} has shape {arr.shape}: skabi reads a 1-D array as one value per dataset "
        f"({arr.shape[0]} datasets), but in training {key!r} had shape (batch, "
        f"{', '.join(map(str, shown))}) per simulation. For ONE dataset pass "
        f"{{{key!r}: {key}[None]}} (shape (1, {arr.shape[0]})) or a list of datasets "
        "[{...}, {...}]; for several, stack them along a leading axis.")


def as_observations(X, meta=None, *, frame_is_dataset=True, expected=None):
    """A batch with a leading dataset axis from the forms ``sample`` / ``log_prob`` accept.

    Parameters
    ----------
    X : dict, list of dict, SimulationBank, xarray.Dataset, pandas.DataFrame or ndarray
        A dict is several datasets under the batch rule; a list holds one dict per dataset
        (sizes may differ); a DataFrame is one dataset (``frame_is_dataset``, as in
        ``sample``: each column becomes ``(1, n_rows)``) or a bank whose rows are
        simulations; an ndarray is the data ``"x"`` of a ``fit(X, y)`` estimator.
    meta : dict, optional
        Extra variables merged into the batch, e.g. ``{"N": 7}``.
    expected : dict of str to tuple, optional
        Trailing shapes of the variables in training (the adapter's ``input_variables_``):
        a 1-D array of a variable that had more than one value per simulation is refused
        instead of being read as one value per dataset.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.bank import as_observations
    >>> as_observations({"x": np.zeros((4, 7)), "sigma": np.ones(4)})["sigma"].shape
    (4, 1)
    >>> as_observations({"x": np.zeros(7)}, expected={"x": (9,)})
    Traceback (most recent call last):
    ...
    skabi.exceptions.ShapeError: 'x' has shape (7,): skabi reads a 1-D array as one value per dataset (7 datasets), but in training 'x' had shape (batch, 9) per simulation. For ONE dataset pass {'x': x[None]} (shape (1, 7)) or a list of datasets [{...}, {...}]; for several, stack them along a leading axis.
    """
    import pandas as pd

    expected = expected or {}
    if isinstance(X, pd.DataFrame) and frame_is_dataset:
        data = {str(c): X[c].to_numpy()[None, :] for c in X.columns}
    elif isinstance(X, np.ndarray):
        data = {"x": X}
    elif isinstance(X, dict):
        data = {}
        for k, v in X.items():
            if not is_ragged(v) and np.ndim(v) == 1:
                _one_dimensional(k, np.asarray(v), expected)
            data[k] = as_rows(v, k)
    elif isinstance(X, list):
        data = stack_datasets(X, expected)
    elif isinstance(X, SimulationBank):
        data = X.to_dict()
    elif is_simulator(X):
        raise TypeError(
            f"sample, log_prob and score need simulated or observed data, not a simulator "
            f"({type(X).__name__}); pass simulator.sample(n) (a search's training score on "
            "a simulator has no fixed data: return_train_score=False).")
    else:
        data = as_bank(X).to_dict()
    if meta:
        data.update(meta)
    return data


# --------------------------------------------------------------------------- size links
def _meta_size(value):
    if isinstance(value, (bool, np.bool_)) or np.ndim(value) != 0:
        return None
    value = np.asarray(value)[()]
    if isinstance(value, (numbers.Integral, np.integer)) or (
            isinstance(value, (numbers.Real, np.floating)) and float(value).is_integer()):
        return int(value)
    return None


def size_links(batches):
    """Axes whose size equalled a meta variable in every batch, where that meta variable
    took at least two values: ``{"N": [["x", 1], ["y", 1]]}``.

    Learned from the pilot batches of online training (where ``N`` varies between
    batches) and checked when sampling (:func:`check_size_links`).

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.bank import check_size_links, size_links
    >>> batches = [{"x": np.zeros((8, n)), "theta": np.zeros((8, 2)), "N": n} for n in (5, 9)]
    >>> links = size_links(batches)
    >>> links
    {'N': [['x', 1]]}
    >>> check_size_links({"x": np.zeros((1, 7)), "N": 9}, links)
    Traceback (most recent call last):
    ...
    skabi.exceptions.ShapeError: N=9 but 'x' has 7 along axis 1; in every training batch N equalled the size of axis 1 of 'x'. Pass N=7 (meta=) or the data it describes.
    """
    if len(batches) < 2:
        return {}
    links = {}
    for key, value in batches[0].items():
        if _meta_size(value) is None:
            continue
        sizes = [_meta_size(b.get(key)) for b in batches]
        if None in sizes or len(set(sizes)) < 2:
            continue
        found = []
        for var, arr in batches[0].items():
            if var == key or np.ndim(arr) < 2 or is_ragged(arr):
                continue
            for axis in range(1, np.ndim(arr)):
                if all(var in b and np.ndim(b[var]) > axis and not is_ragged(b[var])
                       and np.shape(b[var])[axis] == s for b, s in zip(batches, sizes)):
                    found.append([var, axis])
        if found:
            links[key] = found
    return links


def check_size_links(data, links):
    """Raise :class:`ShapeError` where a meta variable disagrees with the size it equalled
    in training (``N=9`` passed with 7 observations)."""
    for key, pairs in (links or {}).items():
        if key not in data:
            continue
        value = data[key]
        per_row = np.ravel(value) if np.ndim(value) else None
        for var, axis in pairs:
            if var not in data:
                continue
            arr = data[var]
            if is_ragged(arr):
                got = [np.shape(a)[axis - 1] for a in arr]
            elif np.ndim(arr) > axis:
                got = [np.shape(arr)[axis]] * np.shape(arr)[0]
            else:
                continue
            want = [value] * len(got) if per_row is None else list(per_row)
            bad = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), None)
            if bad is not None:
                raise ShapeError(
                    f"{key}={_meta_size(want[bad])} but {var!r} has {got[bad]} along axis {axis}"
                    f"{'' if per_row is None else f' in dataset {bad}'}; in every training "
                    f"batch {key} equalled the size of axis {axis} of {var!r}. Pass "
                    f"{key}={got[bad]} (meta=) or the data it describes.")
