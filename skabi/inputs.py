"""What ``fit`` and ``sample`` accept, sorted once: the input dispatcher, and size links.

:func:`fit_input` sorts what ``fit`` was given (a simulator, a bank in memory, a bank to
stream) and :func:`as_observations` turns what ``sample`` / ``log_prob`` / ``score`` were
given into one batch, both by the batch rule of :mod:`skabi.bank`. Neither guesses
silently: where the rule and the shapes seen in training disagree they raise an error
that says what skabi understood. :func:`size_links` learns which meta variables gave the
size of which axes in training (``N`` and the observations of ``x``), and
:func:`check_size_links` holds new data to them.
"""

import numbers
import os
import sys

import numpy as np

from .bank import SimulationBank, as_bank, as_rows, batch_size_of, is_ragged, stack_datasets
from .exceptions import ShapeError

__all__ = ["is_simulator", "is_stream", "is_array", "checked_array", "table_rows", "array_bank",
           "fit_input", "finite_rows", "observations", "multilevel_observations",
           "as_observations", "check_datasets",
           "size_links", "check_size_links"]


# --------------------------------------------------------------------------- dispatch
def is_stream(obj):
    """A path to a bank on disk, an xarray Dataset/DataTree or a BankReader: read batch by
    batch."""
    if isinstance(obj, (str, os.PathLike)):
        return True
    import xarray as xr

    # a BankReader exists only once skabi.storage is loaded: looked up, never imported here
    # (the storage layer sits above the inputs)
    read = sys.modules.get("skabi.storage.read")
    return isinstance(obj, (xr.Dataset, xr.DataTree)) or (
        read is not None and isinstance(obj, read.BankReader))


def is_simulator(obj):
    """Anything with ``sample(batch_size, random_state=...)`` that is not a bank of data."""
    import pandas as pd

    if isinstance(obj, (SimulationBank, dict, list, pd.DataFrame, np.ndarray)) or is_stream(obj):
        return False
    return callable(getattr(obj, "sample", None))


def is_array(X):
    """An ndarray or an array-like that is not a table (``np.asarray`` reads it whole)."""
    if isinstance(X, np.ndarray):
        return True
    return hasattr(X, "__array__") and not any(
        hasattr(X, attr) for attr in ("columns", "data_vars", "keys", "to_dict"))


def checked_array(X, name="X", *, finite=True):
    """scikit-learn's checks of an array of data: numeric (object dtype converted), finite
    (unless ``finite=False``), at least one row and feature; any rank from 2 (sets: 3)."""
    from sklearn.utils.validation import check_array

    return check_array(X, allow_nd=True, dtype="numeric", input_name=name,
                       ensure_all_finite=finite)


def table_rows(X, y=None, *, finite=True):
    """``X`` checked (:func:`checked_array`) when it holds rows of data: an array, or a
    table given with targets ``y``; None for other inputs (simulators, banks).

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.inputs import table_rows
    >>> table_rows(np.ones((2, 3))).shape, table_rows({"x": np.zeros(3)}) is None
    ((2, 3), True)
    """
    if is_array(X) or (y is not None and hasattr(X, "columns")):
        return checked_array(X, finite=finite)
    return None


def array_bank(X, y, *, finite=True):
    """``fit(X, y)`` with arrays: a bank of data ``"x"`` and parameters ``"theta"``
    (floats: the parameters of a regression are continuous, whatever their dtype).
    ``finite=False`` lets NaN and inf through (rows to drop, see :func:`finite_rows`)."""
    from sklearn.utils.validation import FLOAT_DTYPES, check_array

    if y is None:
        raise ValueError("fit(X) with an array X requires y to be passed, but the target y is "
                         "None; pass the parameters as y, or a dict/bank of simulations as X.")
    # scikit-learn's own checks: 2+ dims, at least one simulation and feature, finite.
    X = checked_array(X, finite=finite)
    y = check_array(y, ensure_2d=False, dtype=FLOAT_DTYPES, input_name="y",
                    ensure_all_finite=finite)
    if y.shape[0] != X.shape[0]:
        raise ShapeError(f"X and y need the same number of simulations; got X {X.shape}, "
                         f"y {y.shape}.")
    return as_bank({"x": X, "theta": y})


def fit_input(X, y=None, *, finite=True):
    """Sort what ``fit`` was given: ``(kind, data)`` with kind ``"simulator"`` (data: the
    simulator), ``"stream"`` (a path or xarray object, read batch by batch) or ``"bank"``
    (data: a :class:`SimulationBank` in memory).

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import make_simulator
    >>> from skabi.inputs import fit_input
    >>> fit_input(make_simulator(lambda rng: dict(theta=rng.normal())))[0]
    'simulator'
    >>> kind, bank = fit_input(np.zeros((10, 3)), np.zeros(10))
    >>> kind, bank
    ('bank', SimulationBank(10 simulations; x: (3,), theta: (1,)))
    >>> fit_input("bank.zarr")[0]
    'stream'
    """
    if y is not None or is_array(X):
        return "bank", array_bank(X, y, finite=finite)
    if is_simulator(X):
        return "simulator", X
    if is_stream(X):
        return "stream", X
    return "bank", as_bank(X)


def finite_rows(bank):
    """A boolean mask of the simulations of ``bank`` whose every array value is finite
    (failed simulations often come back as NaN)."""
    keep = np.ones(len(bank), dtype=bool)
    for key, value in bank.to_dict().items():
        if np.ndim(value) == 0 and not is_ragged(value):
            continue
        if is_ragged(value):
            keep &= np.array([np.all(np.isfinite(np.asarray(v, dtype=float))) for v in value])
            continue
        arr = np.asarray(value)
        if arr.dtype.kind in "fc":
            keep &= np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    return keep


def _one_dimensional(key, arr, expected):
    """Refuse to read an array without its leading dataset axis as several datasets.

    A 1-D array where training had more than one value per simulation, or an array of
    higher rank whose shape is that of ONE simulation in training (``x`` of shape (8, 1)
    where training had ``x`` of shape (batch, N, 1)), would be read as ``len(arr)``
    datasets of the wrong rank: it is refused, naming the spellings that say what is meant.
    """
    trailing = expected.get(key)
    if trailing is None or tuple(trailing) in ((), (1,)) or arr.ndim != len(trailing):
        return  # unknown, meta in training (now one value per dataset), or another rank
    if arr.ndim > 1 and not all(t is None or t == s for t, s in zip(trailing, arr.shape)):
        return  # not the shape of one simulation: left to the adapter's checks
    shown = tuple("N" if s is None else s for s in trailing)
    per_sim = f"(batch, {', '.join(map(str, shown))})"
    if arr.ndim == 1:
        what = "a 1-D array as one value per dataset"
    else:
        what = "the first axis of an array as its datasets"
    raise ShapeError(
        f"{key!r} has shape {arr.shape}: skabi reads {what} ({arr.shape[0]} datasets), but "
        f"in training {key!r} had shape {per_sim} per simulation. For ONE dataset pass "
        f"{{{key!r}: {key}[None]}} (shape {(1, *arr.shape)}) or a list of datasets "
        "[{...}, {...}]; for several, stack them along a leading axis.")


def _empty_list(name):
    """The error for a list of 0 datasets given as ``name``."""
    return ValueError(f"{name} is an empty list: 0 datasets; at least 1 dataset is expected "
                      "(a list of one dict per dataset).")


def check_datasets(data, name="X"):
    """Raise ``ValueError`` when the batch ``data`` holds 0 datasets (a leading dataset
    axis of length 0), naming the argument ``name`` and a variable of that length.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.inputs import check_datasets
    >>> check_datasets({"x": np.zeros((0, 8)), "N": 8})
    Traceback (most recent call last):
    ...
    ValueError: X holds 0 datasets ('x' has shape (0, 8)); at least 1 dataset is expected (a leading dataset axis of length >= 1, or a non-empty list of datasets).
    """
    for key, value in data.items():
        if batch_size_of(value) == 0:
            shape = "an empty list" if is_ragged(value) else f"shape {np.shape(value)}"
            raise ValueError(
                f"{name} holds 0 datasets ({key!r} has {shape}); at least 1 dataset is "
                "expected (a leading dataset axis of length >= 1, or a non-empty list of "
                "datasets).")


def as_observations(X, meta=None, *, frame_is_dataset=True, expected=None, name="X"):
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
        instead of being read as one value per dataset (and so is an array of higher
        rank with the shape of one simulation).
    name : str, default="X"
        The argument the data came in, for the error when they hold 0 datasets.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.inputs import as_observations
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
    elif is_array(X):
        data = {"x": checked_array(X)}
    elif isinstance(X, dict):
        data = {}
        for k, v in X.items():
            if not is_ragged(v) and np.ndim(v) >= 1:
                _one_dimensional(k, np.asarray(v), expected)
            data[k] = as_rows(v, k)
    elif isinstance(X, list):
        if not X:
            raise _empty_list(name)
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
    check_datasets(data, name)
    return data


def observations(X, meta=None, *, frame_is_dataset=True, expected=None, size_links=None,
                 n_features=None, owner="estimator"):
    """The datasets a fitted estimator is given (``sample``, ``log_prob``, ...) as a batch,
    checked against training: the one entry from an estimator into this module.

    :func:`as_observations` of ``X`` and ``meta``, after scikit-learn's checks of an
    array (numeric, finite, ``n_features`` columns when the estimator was fitted on
    arrays of that width; a table is then read as rows of datasets), then
    :func:`check_size_links` with the links seen in training.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.inputs import observations
    >>> observations(np.zeros((2, 3)), n_features=3)["x"].shape
    (2, 3)
    >>> observations(np.zeros((2, 4)), n_features=3, owner="AmortizedPosterior")
    Traceback (most recent call last):
    ...
    ValueError: X has 4 features, but AmortizedPosterior is expecting 3 features as input.
    """
    if n_features is not None and hasattr(X, "columns") and hasattr(X, "to_numpy"):
        X = X.to_numpy()   # fitted on arrays: a table's rows are datasets, as in fit(X, y)
    if is_array(X):
        X = checked_array(X)
        if n_features is not None and X.ndim == 2 and X.shape[1] != n_features:
            raise ValueError(f"X has {X.shape[1]} features, but {owner} is expecting "
                             f"{n_features} features as input.")
    data = as_observations(X, meta, frame_is_dataset=frame_is_dataset, expected=expected)
    check_size_links(data, size_links or {})
    return data


def multilevel_observations(X, meta=None, *, groups, owner="estimator"):
    """The datasets a fitted multilevel estimator is given (``sample``, ``log_prob``),
    with ``meta`` merged in: the one entry from a multilevel estimator into this module.

    A dict whose ``groups`` variable is one number is a batch of that many groups per
    dataset and is returned as it is (checked to hold at least one dataset); any other
    dict is ONE dataset, and a list or tuple holds one dict per dataset (local variables
    with a leading axis of that dataset's groups); both are returned as a list, each
    dataset with ``meta`` merged in. The adapter splits either form into its levels.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.inputs import multilevel_observations
    >>> one = {"y": np.zeros((3, 5))}
    >>> multilevel_observations(one, {"N": 5}, groups="J")[0]["N"]
    5
    >>> multilevel_observations([], groups="J")
    Traceback (most recent call last):
    ...
    ValueError: X is an empty list: 0 datasets; at least 1 dataset is expected (a list of one dict per dataset).
    """
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict of variables; got {type(meta).__name__}.")
    meta = meta or {}
    if isinstance(X, dict):
        X = {**X, **meta}
        if groups in X and not is_ragged(X[groups]) and np.ndim(X[groups]) == 0:
            check_datasets(X)
            return X
        return [X]
    if not isinstance(X, (list, tuple)):
        raise TypeError(
            f"{owner} reads a multilevel batch (a dict whose {groups!r} is one number), one "
            f"dataset (a dict) or a list of datasets; got {type(X).__name__}.")
    if not X:
        raise _empty_list("X")
    for i, d in enumerate(X):
        if not isinstance(d, dict):
            raise TypeError(f"Dataset {i} of X is a {type(d).__name__}; expected a dict of "
                            "that dataset's variables.")
    return [{**d, **meta} for d in X]


# --------------------------------------------------------------------------- size links
def _meta_size(value):
    if is_ragged(value) or isinstance(value, (bool, np.bool_)) or np.ndim(value) != 0:
        return None
    value = np.asarray(value)[()]
    if isinstance(value, (numbers.Integral, np.integer)) or (
            isinstance(value, (numbers.Real, np.floating)) and float(value).is_integer()):
        return int(value)
    return None


def _row_sizes(value, rows):
    """The integer a size variable takes in each of ``rows`` datasets: a batch scalar
    (meta, such as ``N``) repeated, or one integer per dataset (``(rows,)`` or
    ``(rows, 1)``, as :class:`~skabi.model_comparison.ModelMixture` gives ``N`` when the
    models draw it separately); None for anything else."""
    size = _meta_size(value)
    if size is not None:
        return [size] * rows
    if is_ragged(value) or isinstance(value, (bool, np.bool_)):
        return None
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.ndim not in (1, 2) or arr.shape[0] != rows \
            or arr.size != rows:
        return None
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        return None
    return [int(v) for v in arr.ravel()]


def _axis_sizes(arr, axis):
    """The size of ``axis`` (counted with the dataset axis) in each dataset of a batch
    variable (ragged or not); None where it has no such axis."""
    if is_ragged(arr):
        shapes = [np.shape(a) for a in arr]
        if not all(len(s) > axis - 1 for s in shapes):
            return None
        return [s[axis - 1] for s in shapes]
    if np.ndim(arr) <= axis:
        return None
    return [np.shape(arr)[axis]] * np.shape(arr)[0]


def size_links(batches):
    """Axes whose size equalled a size variable in every dataset of every batch, where
    that variable took at least two values: ``{"N": [["x", 1], ["y", 1]]}``.

    A size variable is a batch scalar (``N`` drawn once per batch) or an integer per
    dataset (``N`` of shape (batch, 1) when the datasets of a batch differ in size).
    Learned from the pilot batches of training (where ``N`` varies between batches or
    between datasets) and checked when sampling (:func:`check_size_links`).

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.inputs import check_size_links, size_links
    >>> batches = [{"x": np.zeros((8, n)), "theta": np.zeros((8, 2)), "N": n} for n in (5, 9)]
    >>> links = size_links(batches)
    >>> links
    {'N': [['x', 1]]}
    >>> check_size_links({"x": np.zeros((1, 7)), "N": 9}, links)
    Traceback (most recent call last):
    ...
    skabi.exceptions.ShapeError: N=9 but 'x' has 7 along axis 1; in every training batch N equalled the size of axis 1 of 'x'. Pass N=7 (meta=) or the data it describes.
    """
    if not batches:
        return {}

    def rows(batch):
        return next((batch_size_of(v) for v in batch.values()
                     if batch_size_of(v) is not None), 0)

    links = {}
    for key in batches[0]:
        sizes = [_row_sizes(b.get(key), rows(b)) for b in batches]
        if any(s is None for s in sizes) or len({v for s in sizes for v in s}) < 2:
            continue
        found = []
        for var, arr in batches[0].items():
            if var == key:
                continue
            rank = max((len(np.shape(a)) + 1 for a in arr), default=0) if is_ragged(arr) \
                else np.ndim(arr)
            for axis in range(1, rank):
                if all(var in b and _axis_sizes(b[var], axis) == s
                       for b, s in zip(batches, sizes)):
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
