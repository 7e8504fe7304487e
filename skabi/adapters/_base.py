"""The :class:`Transform` base class shared by every adapter step.

A transform maps a batch (``dict[str, ndarray]`` with a leading batch axis) to a new batch.
It follows scikit-learn's estimator contract: ``__init__`` only stores its parameters,
``fit(data)`` validates them, checks the batch and learns statistics (attributes ending in
``_``), ``transform(data)`` is pure (it returns a new dict and never mutates the input dict
or its arrays) and, for bijective steps, ``inverse_transform(data)`` undoes it (computed
in float64) and ``log_det_jac(data)`` gives ``log |det dz/dx|`` of the forward map per batch
element, one entry per variable.

Missing inputs at transform time
--------------------------------
``fit`` needs every input of a step. ``transform`` skips a step whose inputs are *all*
absent (at sample time the batch holds no parameters) and raises
:class:`~skabi.exceptions.MissingKeyError` when only *some* of them are present.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._validation import check_finite, check_keys, suggest
from ..bank import is_ragged
from ..exceptions import MissingKeyError, ShapeError, SupportError

__all__ = ["Transform", "as_key_list"]


def as_key_list(keys, *, param="keys", owner="Transform"):
    """Return ``keys`` (a str or a sequence of str) as a list of str, validating it."""
    if isinstance(keys, str):
        return [keys]
    if isinstance(keys, (list, tuple)) and keys and all(isinstance(k, str) for k in keys):
        if len(set(keys)) != len(keys):
            raise ValueError(
                f"The {param!r} parameter of {owner} holds duplicates: {list(keys)!r}."
            )
        return list(keys)
    raise ValueError(
        f"The {param!r} parameter of {owner} must be a str or a non-empty list of str; "
        f"got {keys!r}."
    )


def _float(array):
    """``array`` as float64 (a new array only where a cast is needed)."""
    return np.asarray(array, dtype=np.float64)


def _sum_event(values):
    """Sum ``values`` over every axis but the first (the batch axis); float64 ``(B,)``."""
    values = _float(values)
    if values.ndim <= 1:
        return values.copy()
    return values.reshape(values.shape[0], -1).sum(axis=1)


def _out_dtype(array):
    """Floating inputs keep their dtype in forward maps; others become float64."""
    dtype = np.asarray(array).dtype
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _check_support(owner, key, array, low, high, *, low_closed=False, high_closed=False):
    """Raise :class:`SupportError` naming ``key`` if values fall outside (low, high)."""
    x = np.asarray(array)
    if x.dtype.kind not in "biuf":
        raise SupportError(f"{owner} needs numeric values for {key!r}; got dtype {x.dtype}.")
    bad = np.zeros(x.shape, dtype=bool)
    if low is not None:
        bad |= (x < low) if low_closed else (x <= low)
    if high is not None:
        bad |= (x > high) if high_closed else (x >= high)
    n_bad = int(bad.sum())
    if n_bad:
        lo = "-inf" if low is None else repr(float(low))
        hi = "inf" if high is None else repr(float(high))
        interval = ("[" if low_closed else "(") + f"{lo}, {hi}" + ("]" if high_closed else ")")
        first = x[bad].ravel()[0]
        raise SupportError(
            f"{owner}: {n_bad} of {x.size} values of {key!r} lie outside the support "
            f"{interval} (e.g. {float(first):g})."
        )


class Transform(BaseEstimator):
    """Base class of adapter steps.

    Subclasses implement ``_fit_key`` / ``_forward`` / ``_inverse`` /
    ``_ldj`` for per-variable maps, or override ``_transform_present`` and
    friends for structural steps. Class attributes:

    ``invertible``
        Whether :meth:`inverse_transform` and :meth:`log_det_jac` exist.

    Examples
    --------
    Every step (here :class:`~skabi.adapters.Log`) shares this interface:

    >>> import numpy as np
    >>> from skabi.adapters import Log, Transform
    >>> step = Log("sigma")
    >>> isinstance(step, Transform), step.invertible, step.get_params()
    (True, True, {'keys': 'sigma'})
    >>> batch = {"sigma": np.array([[0.5], [2.0], [4.0]])}
    >>> z = step.fit(batch).transform(batch)
    >>> np.allclose(step.inverse_transform(z)["sigma"], batch["sigma"])
    True
    >>> np.allclose(step.log_det_jac(batch)["sigma"], -np.log([0.5, 2.0, 4.0]))
    True
    """

    invertible = True
    _lenient = False  # True: apply to the present inputs, skip absent ones individually
    _ragged = False  # True: takes ragged inputs (lists of per-dataset arrays of other sizes)
    _elementwise = False  # True: maps each value alone, so ragged inputs go part by part

    # ------------------------------------------------------------------ keys
    def _input_keys(self):
        """The variables this step reads (and, for per-variable maps, writes)."""
        if hasattr(self, "keys_"):
            return list(self.keys_)
        return as_key_list(self.keys, owner=type(self).__name__)

    def _output_keys(self):
        """The variables this step writes (what ``inverse_transform`` reads)."""
        return self._input_keys()

    def _required_keys(self):
        """Keys needed whenever the step runs, beyond its inputs (e.g. ``Broadcast.to``)."""
        return []

    @property
    def _owner(self):
        return type(self).__name__

    def _validate(self):
        """Validate parameters (called by ``fit`` and by ``transform``); override to extend."""
        self._validate_params()

    def _present_inputs(self, data):
        """Input keys present in ``data``; ``[]`` means skip; partial presence raises."""
        keys = self._input_keys()
        present = [k for k in keys if k in data]
        if not present:
            return []
        if len(present) != len(keys) and not self._lenient:
            missing = [k for k in keys if k not in data]
            hint = suggest(missing[0], data) if len(missing) == 1 else ""
            raise MissingKeyError(
                f"{self._owner} needs all of {keys!r} (or none, to be skipped at sample time); "
                f"the batch has {present!r} but lacks {missing!r}. Available keys are "
                f"{sorted(map(str, data))!r}.{hint}"
            )
        check_keys(data, self._required_keys(), where=self._owner)
        return present

    # ------------------------------------------------------------------ sklearn API
    def fit(self, data, y=None):
        """Validate the parameters, check ``data`` and learn statistics; return ``self``.

        Parameters
        ----------
        data : dict of str to ndarray
            A full batch: every input of this step must be present.
        y : None
            Ignored (scikit-learn convention).
        """
        self._validate()
        data = {k: (v if is_ragged(v) else np.asarray(v)) for k, v in data.items()}
        keys = self._resolve_keys(data)
        check_keys(data, list(keys) + self._required_keys(), where=self._owner)
        self._check_ragged(data, keys)
        for key in keys:
            for part in (data[key] if is_ragged(data[key]) else [data[key]]):
                check_finite(key, part)
        self.keys_ = list(keys)
        self.dtypes_ = {k: (data[k][0] if is_ragged(data[k]) else data[k]).dtype.name
                        for k in keys}
        view = self._flat_view(data, self.keys_)
        self._fit_present(view, self.keys_)
        self._check_inputs(view, self.keys_)
        return self

    def _flat_view(self, data, keys):
        """For elementwise steps: ragged inputs as one array of all their values, shape
        ``(1, sum of sizes, ...)``, so that checks and statistics see every value once."""
        ragged = [k for k in keys if k in data and is_ragged(data[k])]
        if not ragged:
            return data
        view = dict(data)
        view.update({k: np.concatenate(data[k])[None] for k in ragged})
        return view

    def _resolve_keys(self, data):
        return as_key_list(self.keys, owner=self._owner)

    def _check_ragged(self, data, keys):
        """Datasets of different sizes go through elementwise steps part by part and are
        padded by AsSet / AsTimeSeries; other steps refuse them."""
        if self._ragged or self._elementwise:
            return
        ragged = [k for k in keys if is_ragged(data[k])]
        if ragged:
            sizes = sorted({np.shape(a)[0] for a in data[ragged[0]]})
            raise ShapeError(
                f"{self._owner} got {ragged[0]!r} as datasets of different sizes (first axis "
                f"{sizes[0]}..{sizes[-1]}); elementwise steps (Log, Sqrt, Constrain, "
                "ConvertDType) take them as they are, AsSet / AsTimeSeries pad them with a "
                f"mask, and other steps work after the padding: put {self._owner} after "
                f"AsSet({ragged[0]!r}).")

    def _fit_present(self, data, keys):
        """Learn statistics from ``data`` (all of ``keys`` present). Default: nothing."""

    def _check_inputs(self, data, keys):
        """Raise before anything is computed if an input is unusable. Default: nothing."""

    def _needs_fit(self):
        return False

    def _prepare(self, data):
        if self._needs_fit():
            check_is_fitted(self, "keys_")
        if not hasattr(self, "keys_"):
            self._validate()
        data = dict(data)
        present = self._present_inputs(data)
        if present:
            present_keys = [k for k in present if k in data]
            self._check_ragged(data, present_keys)
            data.update({k: np.asarray(data[k]) for k in present_keys if not is_ragged(data[k])})
            self._check_inputs(self._flat_view(data, present_keys), present)
        return data, present

    def transform(self, data):
        """Return a new batch with this step applied (inputs all absent: a copy, unchanged).

        Parameters
        ----------
        data : dict of str to ndarray

        Returns
        -------
        dict of str to ndarray
        """
        data, present = self._prepare(data)
        if not present:
            return data
        return self._transform_present(data, present)

    def fit_transform(self, data, y=None):
        """``fit(data).transform(data)``."""
        return self.fit(data).transform(data)

    def log_det_jac(self, data):
        """``log |det dz/dx|`` of the forward map per batch element, per variable.

        Returns
        -------
        dict of str to ndarray of shape (B,)
            One float64 entry per transformed (present) variable, keyed by its input name.
        """
        self._check_invertible("log_det_jac")
        data, present = self._prepare(data)
        if not present:
            return {}
        return self._log_det_jac_present(data, present)

    def _log_det_jac_present(self, data, keys):
        return {k: (np.array([self._ldj(k, p[None])[0] for p in data[k]])
                    if is_ragged(data[k]) else self._ldj(k, data[k])) for k in keys}

    def inverse_transform(self, data):
        """Undo the step on whichever of its outputs are present, computing in float64.

        Arrays may carry any leading shape in front of the trailing shape seen in ``fit``.
        """
        self._check_invertible("inverse_transform")
        check_is_fitted(self, "keys_")
        data = dict(data)
        outputs = [k for k in self._output_keys() if k in data]
        if not outputs:
            return data
        return self._inverse_present(data, outputs)

    def _check_invertible(self, what):
        if not self.invertible:
            raise NotImplementedError(f"{self._owner} is not invertible: it has no {what}.")

    # ------------------------------------------------------------------ per-variable default
    def _transform_present(self, data, keys):
        for k in keys:
            x = data[k]
            data[k] = [self._forward(k, p[None])[0] for p in x] if is_ragged(x) \
                else self._forward(k, x)
        return data

    def _inverse_present(self, data, keys):
        for k in keys:
            data[k] = self._inverse(k, _float(data[k]))
        return data

    def _forward(self, key, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _inverse(self, key, z):  # pragma: no cover - abstract
        raise NotImplementedError

    def _ldj(self, key, x):
        """Forward log-det per batch element; default: volume preserving (zeros)."""
        x = np.asarray(x)
        return np.zeros(x.shape[:1], dtype=np.float64)

    # ------------------------------------------------------------------ bookkeeping
    def _route(self, mapping, combine, *, undefined=False):
        """Move per-variable bookkeeping (log-dets, origins) the way the step moves data.

        ``mapping`` is a dict keyed by variable; per-variable maps keep it as is.
        With ``undefined=True`` non-invertible steps mark their variables ``None``
        (log-det undefined). ``combine`` merges the entries of joined variables.
        """
        if undefined and not self.invertible:
            for k in self._input_keys():
                mapping[k] = None
        return mapping

    # ------------------------------------------------------------------ config
    def _fitted_state(self):
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_rank(owner, key, x, ranks, expected):
    if np.ndim(x) not in ranks:
        raise ShapeError(
            f"{owner} expects {key!r} of shape {expected}; got shape {np.shape(x)} "
            f"(rank {np.ndim(x)})."
        )
