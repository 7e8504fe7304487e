"""Turn the inputs of every diagnostic into arrays with one column per variable element.

Diagnostics accept either an ArviZ container (read only through
:func:`skabi._arviz.from_arviz`) or plain dicts of arrays:

``estimates``
    ``{name: ndarray of shape (n_datasets, n_draws, ...)}``
``targets``
    ``{name: ndarray of shape (n_datasets, ...)}``

Each variable's trailing dims are flattened into elements named ``"beta[0]"``,
``"beta[1]"``; a scalar variable (no trailing dims, or one trailing dim of length 1) is a
single element named after the variable (``"sigma"``).
"""

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from .._arviz import data_from_arviz, from_arviz
from ..bank import is_ragged
from .._validation import suggest
from ..exceptions import MissingKeyError, NonFiniteError, ShapeError

__all__ = ["Inputs", "resolve", "read_estimates", "element_names", "is_container"]


@dataclass
class Inputs:
    """Draws and true values flattened to one column per element.

    Attributes
    ----------
    draws : ndarray of shape (n_datasets, n_draws, n_elements)
    truths : ndarray of shape (n_datasets, n_elements) or None
    names : list of str
        Element names (``"beta[0]"``); test quantities are named by their key.
    labels : list of str
        Display labels: ``variable_names`` (for parameter elements) or the names.
    estimates, targets : dict of str to ndarray
        The variables as given (targets reshaped to the draws' trailing shape).
    """

    draws: np.ndarray
    truths: np.ndarray | None
    names: list
    labels: list
    estimates: dict = field(repr=False)
    targets: dict | None = field(repr=False)

    @property
    def n_datasets(self):
        return self.draws.shape[0]

    @property
    def n_draws(self):
        return self.draws.shape[1]


def element_names(name, trailing_shape):
    """Names of the flattened elements of a variable with trailing shape ``trailing_shape``."""
    trailing_shape = tuple(trailing_shape)
    if int(np.prod(trailing_shape, dtype=int)) == 1:
        return [str(name)]
    if len(trailing_shape) == 1:
        return [f"{name}[{i}]" for i in range(trailing_shape[0])]
    return [f"{name}[{','.join(map(str, idx))}]" for idx in np.ndindex(*trailing_shape)]


def is_container(obj):
    """An ArviZ InferenceData or DataTree (both are Mappings too), or anything not a dict."""
    if obj is None:
        return False
    if isinstance(obj, xr.DataTree) or callable(getattr(obj, "groups", None)):
        return True
    return not isinstance(obj, Mapping)


def _check_finite(where, arr):
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        n_bad = int(np.sum(~np.isfinite(arr)))
        raise NonFiniteError(
            f"{where} holds {n_bad} NaN or infinite value(s) out of {arr.size} "
            f"(shape {arr.shape}); diagnostics need finite values."
        )


def _as_float(where, value):
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        kind = type(value).__name__
        raise TypeError(f"{where} must be an array of numbers; got {kind}.") from err


def read_estimates(estimates, targets=None, *, require_targets=True, with_data=False):
    """Unpack a container, or check dicts; return ``(estimates, targets)`` as dicts
    (and the container's data, ``observed_data`` with ``constant_data``, or None, when
    ``with_data``)."""
    data = None
    if estimates is None:
        raise TypeError(
            "Pass the ArviZ container returned by est.sample(...) as first argument, "
            "or estimates={name: array of shape (n_datasets, n_draws, ...)}."
        )
    if is_container(estimates):
        container = estimates
        estimates, stored = from_arviz(container)
        data = data_from_arviz(container)
        if targets is None:
            targets = stored
        if targets is None and require_targets:
            raise ValueError(
                "The container has no 'true_values' group (the data held no true "
                "parameters); pass targets={name: array of shape (n_datasets, ...)} with "
                "the true parameter values."
            )
    elif targets is None and require_targets:
        raise ValueError(
            "This diagnostic compares draws with true values; pass "
            "targets={name: array of shape (n_datasets, ...)}."
        )
    if targets is not None and not isinstance(targets, Mapping):
        raise TypeError(
            f"targets must be a dict of arrays keyed by variable; got {type(targets).__name__}."
        )
    out = dict(estimates), (dict(targets) if targets is not None else None)
    return (*out, data) if with_data else out


def _check_variable(key, estimates, targets, n_datasets, n_draws):
    """Validate one variable; return (draws (K, S, *t), truth (K, *t) or None)."""
    if key not in estimates:
        raise MissingKeyError(
            f"estimates has no variable {key!r}; available variables are "
            f"{sorted(map(str, estimates))!r}.{suggest(key, estimates)}"
        )
    draws = _as_float(f"estimates[{key!r}]", estimates[key])
    if draws.ndim < 2:
        raise ShapeError(
            f"estimates[{key!r}] has shape {draws.shape}; expected (n_datasets, n_draws, ...)."
        )
    if draws.shape[:2] != (n_datasets, n_draws):
        raise ShapeError(
            f"estimates[{key!r}] has shape {draws.shape}, but other variables have "
            f"{n_datasets} datasets and {n_draws} draws: expected ({n_datasets}, {n_draws}, ...)."
        )
    _check_finite(f"estimates[{key!r}]", draws)
    if targets is None:
        return draws, None
    if key not in targets:
        raise MissingKeyError(
            f"targets has no variable {key!r}; available variables are "
            f"{sorted(map(str, targets))!r}.{suggest(key, targets)}"
        )
    truth = _as_float(f"targets[{key!r}]", targets[key])
    trailing = draws.shape[2:]
    expected = (n_datasets,) + trailing
    if truth.ndim < 1 or truth.shape[0] != n_datasets:
        raise ShapeError(
            f"targets[{key!r}] has shape {truth.shape} but estimates[{key!r}] has shape "
            f"{draws.shape}: expected {n_datasets} datasets, shape {expected}."
        )
    if truth[0].size != int(np.prod(trailing, dtype=int)):
        raise ShapeError(
            f"targets[{key!r}] has shape {truth.shape} but estimates[{key!r}] has shape "
            f"{draws.shape}: expected shape {expected} (element counts differ)."
        )
    _check_finite(f"targets[{key!r}]", truth)
    return draws, truth.reshape(expected)


def _n_params(fn):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in params if p.kind in kinds and p.default is inspect.Parameter.empty)


def _repeat_data(data, n_datasets, n_draws):
    out = {}
    for k, v in data.items():
        arr = np.asarray(v)
        if arr.ndim >= 1 and arr.shape[0] == n_datasets:
            out[k] = np.repeat(arr, n_draws, axis=0)
        else:  # batch-constant (such as N)
            out[k] = arr
    return out


def _call(fn, params, data, name=None):
    try:
        if data is None:
            return fn(params)
        if _n_params(fn) >= 2:
            return fn(params, data)
        return fn({**data, **params})
    except KeyError as exc:
        key = exc.args[0] if exc.args else None
        if not isinstance(key, str) or key in params or (data is not None and key in data):
            raise
        have = sorted(params) + sorted(data or {})
        raise MissingKeyError(
            f"test_quantities[{name!r}] reads {key!r}, which is neither a parameter nor in "
            f"the data (available: {have!r}). Pass the container returned by est.sample(...) "
            "(its observed_data group is passed on), or data={name: array of shape "
            "(n_datasets, ...)}."
        ) from None


def _evaluate(fn, name, params, data, n_rows, n_datasets):
    """``fn`` on ``params`` (``n_rows`` rows: ``n_datasets`` blocks); ragged data (a list
    of arrays, one per dataset) are handled one dataset at a time."""
    ragged = data is not None and any(is_ragged(v, any_sequence=True) or isinstance(v, list)
                                       for v in data.values())
    if not ragged:
        rep = _repeat_data(data, n_datasets, n_rows // n_datasets) if data is not None else None
        return np.asarray(_call(fn, params, rep, name), dtype=float).reshape(-1)
    per = n_rows // n_datasets
    out = []
    for i in range(n_datasets):
        block = {k: np.asarray(v)[i * per:(i + 1) * per] for k, v in params.items()}
        one = {}
        for k, v in data.items():
            if isinstance(v, list) or is_ragged(v, any_sequence=True):
                one[k] = np.repeat(np.asarray(v[i])[None], per, axis=0)
            elif np.ndim(v) >= 1 and np.shape(v)[0] == n_datasets:
                one[k] = np.repeat(np.asarray(v)[i:i + 1], per, axis=0)
            else:
                one[k] = v
        out.append(np.asarray(_call(fn, block, one, name), dtype=float).reshape(-1))
    return np.concatenate(out)


def evaluate_test_quantities(test_quantities, estimates, targets, data, n_datasets, n_draws):
    """Evaluate ``{name: fn}`` on every draw and on the true values.

    ``fn`` gets a dict of arrays with one leading batch axis (``n_datasets * n_draws`` for
    the draws, ``n_datasets`` for the true values): all variables of ``estimates``, plus
    ``data`` (repeated once per draw) merged in, or as second argument when ``fn`` takes
    two. It returns one number per batch entry.

    Returns
    -------
    draws : ndarray of shape (n_datasets, n_draws, n_quantities)
    truths : ndarray of shape (n_datasets, n_quantities) or None
    """
    flat = {
        k: np.asarray(v).reshape((n_datasets * n_draws,) + np.shape(v)[2:])
        for k, v in estimates.items()
    }
    draws, truths = [], []
    for name, fn in test_quantities.items():
        if not callable(fn):
            raise TypeError(f"test_quantities[{name!r}] must be callable; got {fn!r}.")
        values = _evaluate(fn, name, flat, data, n_datasets * n_draws, n_datasets)
        if values.size != n_datasets * n_draws:
            raise ShapeError(
                f"test_quantities[{name!r}] returned shape {values.shape} for "
                f"{n_datasets * n_draws} draws; expected ({n_datasets * n_draws},), one "
                "number per draw."
            )
        values = values.reshape(n_datasets, n_draws)
        _check_finite(f"test_quantities[{name!r}] on the draws", values)
        draws.append(values)
        if targets is not None:
            missing = [k for k in estimates if k not in targets]
            if missing:
                raise MissingKeyError(
                    f"test_quantities[{name!r}] is evaluated on the true values, but targets "
                    f"has no {missing!r}; pass targets for every variable of estimates."
                )
            truth = _evaluate(fn, name, targets, data, n_datasets, n_datasets)
            if truth.size != n_datasets:
                raise ShapeError(
                    f"test_quantities[{name!r}] returned shape {truth.shape} for the true "
                    f"values; expected ({n_datasets},), one number per dataset."
                )
            _check_finite(f"test_quantities[{name!r}] on the true values", truth)
            truths.append(truth.reshape(n_datasets))
    d = np.stack(draws, axis=-1)
    t = np.stack(truths, axis=-1) if targets is not None else None
    return d, t


def resolve(
    estimates=None,
    targets=None,
    *,
    variable_keys=None,
    variable_names=None,
    test_quantities=None,
    data=None,
    require_targets=True,
):
    """Validate the inputs of a diagnostic and flatten them (see the module docstring).

    Parameters
    ----------
    estimates : ArviZ container or dict of str to ndarray of shape (K, S, ...)
    targets : dict of str to ndarray of shape (K, ...), optional
        Overrides the container's ``true_values`` group. Extra keys are ignored.
    variable_keys : list of str, optional
        Subset and order of variables; all of ``estimates`` by default. ``[]`` with
        ``test_quantities`` checks only the test quantities.
    variable_names : list of str, optional
        Display labels, one per parameter element.
    test_quantities : dict of str to callable, optional
    data : dict of str to ndarray of shape (K, ...), optional
        Conditioning data passed to the test quantities; by default a container's
        ``observed_data`` and ``constant_data``. Datasets of different sizes (a list of
        arrays, one per dataset) are passed to the test quantities one dataset at a time.
    require_targets : bool
        Raise when no true values are available.

    Returns
    -------
    Inputs
    """
    estimates, targets, stored_data = read_estimates(
        estimates, targets, require_targets=require_targets, with_data=True)
    if data is None:
        data = stored_data
    if not estimates:
        raise ValueError("estimates holds no variables.")
    if variable_keys is None:
        keys = list(estimates)
    elif isinstance(variable_keys, str):
        keys = [variable_keys]
    else:
        keys = list(variable_keys)
    first = _as_float(f"estimates[{next(iter(estimates))!r}]", next(iter(estimates.values())))
    if first.ndim < 2:
        raise ShapeError(
            f"estimates[{next(iter(estimates))!r}] has shape {first.shape}; expected "
            "(n_datasets, n_draws, ...)."
        )
    n_datasets, n_draws = first.shape[:2]

    # normalise every variable (test quantities may read ones outside variable_keys)
    norm_est, norm_tgt = {}, (dict(targets) if targets is not None else None)
    for key in dict.fromkeys(keys + (list(estimates) if test_quantities else [])):
        has_truth = targets is not None and (key in keys or key in targets)
        draws, truth = _check_variable(
            key, estimates, targets if has_truth else None, n_datasets, n_draws
        )
        norm_est[key] = draws
        if truth is not None:
            norm_tgt[key] = truth

    columns, truth_cols, names = [], [], []
    for key in keys:
        draws = norm_est[key]
        columns.append(draws.reshape(n_datasets, n_draws, -1))
        if norm_tgt is not None:
            truth_cols.append(norm_tgt[key].reshape(n_datasets, -1))
        names += element_names(key, draws.shape[2:])

    if variable_names is None:
        labels = list(names)
    else:
        labels = [str(v) for v in variable_names]
        if len(labels) != len(names):
            raise ValueError(
                f"variable_names has {len(labels)} labels, but the variables {keys!r} have "
                f"{len(names)} elements {names!r}: pass one label per element."
            )

    if test_quantities:
        tq_draws, tq_truths = evaluate_test_quantities(
            dict(test_quantities), norm_est, norm_tgt, data, n_datasets, n_draws
        )
        columns.append(tq_draws)
        if tq_truths is not None:
            truth_cols.append(tq_truths)
        names += [str(k) for k in test_quantities]
        labels += [str(k) for k in test_quantities]
    if not names:
        raise ValueError("No variables selected: variable_keys is empty and no test_quantities.")

    draws = np.concatenate(columns, axis=-1)
    truths = np.concatenate(truth_cols, axis=-1) if norm_tgt is not None else None
    return Inputs(draws, truths, names, labels, norm_est, norm_tgt)
