"""The :class:`Adapter` pipeline and :func:`make_adapter`."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import _name_estimators
from sklearn.utils import Bunch
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_is_fitted

from .._validation import check_finite, suggest
from ..bank import is_ragged
from ..exceptions import NonFiniteError, ShapeError, SkabiError
from ._base import Transform
from ._config import decode as _decode
from ._config import encode as _encode
from .as_set import AsSet, AsTimeSeries
from .as_tokens import AsTokens
from .broadcast import Broadcast
from .concatenate import Concatenate
from .constrain import Constrain
from .convert_dtype import ConvertDType
from .elementwise import Log, Sqrt
from .observations import AsObservations
from .one_hot import OneHot
from .rename import Rename
from .roles import ROLES
from .select import Drop, Keep
from .standardize import Standardize

__all__ = ["Adapter", "make_adapter", "ROLE_KEYS", "TRANSFORMS"]

#: The network inputs an adapter produces, by name (defined in :mod:`.roles`).
ROLE_KEYS = ROLES

#: The step classes :meth:`Adapter.from_config` may rebuild (nothing else is ever imported).
TRANSFORMS = {
    cls.__name__: cls
    for cls in (Broadcast, AsSet, AsTimeSeries, AsTokens, AsObservations, Constrain, Standardize,
                Sqrt, Log, OneHot, Concatenate, Rename, ConvertDType, Keep, Drop)
}

_CONFIG_VERSION = 1


@contextmanager
def _in_step(name):
    """Prefix errors raised inside a step with the step's name."""
    try:
        yield
    except (SkabiError, ValueError, TypeError, NotImplementedError) as exc:
        try:
            new = type(exc)(f"Step {name!r}: {exc}")
        except Exception:  # an exception type with another signature: leave it alone
            raise exc
        raise new from exc


def _check_batch(data, where):
    if not isinstance(data, Mapping):
        raise TypeError(
            f"{where} expects a batch: a dict of variable name to array; "
            f"got {type(data).__name__}."
        )
    out = {}
    for key, value in data.items():
        parts = list(value) if is_ragged(value) else None
        for array in (parts if parts is not None else [value]):
            array = np.asarray(array)
            if array.dtype == object:
                raise TypeError(f"Variable {key!r} is not a numeric array (dtype object).")
            if array.dtype.kind in "cUSV":
                what = "complex" if array.dtype.kind == "c" else f"not numeric ({array.dtype})"
                raise TypeError(f"Variable {key!r} is {what}; skabi needs real numbers "
                                "(split a complex variable into its real and imaginary parts).")
            check_finite(key, array)
        out[key] = [np.asarray(p) for p in parts] if parts is not None else np.asarray(value)
    return out


def _cast(role, value, dtype):
    """A role in the network dtype, checked finite: the one finiteness check of every
    network input (a transform's NaN or inf is named as such; values the dtype cannot
    hold are an error, not inf)."""
    value = np.asarray(value)
    with np.errstate(over="ignore"):
        cast = value.astype(dtype)
    if cast.dtype.kind == "f" and not np.isfinite(cast).all():
        check_finite(role, value)   # NaN or inf before the cast: said so
        big = float(np.max(np.abs(value)))
        raise NonFiniteError(
            f"{role!r} holds values beyond the range of {np.dtype(dtype).name} (up to "
            f"{big:.3g}); rescale them in the adapter (Standardize, Log) so that the network "
            "inputs are of order 1, or use Adapter(dtype='float64').")
    return cast


def _no_ragged_roles(data):
    for k in ROLE_KEYS:
        if k in data and is_ragged(data[k]):
            raise ShapeError(
                f"{k!r} holds datasets of different sizes (a ragged variable), which the "
                "networks cannot take; pad them into a set with AsSet (or AsTimeSeries) "
                f"before they become {k!r}.")


def _trailing(value):
    """Trailing shape of a batch value; ``None`` for the axis where ragged datasets differ."""
    if is_ragged(value):
        return (None, *np.shape(value[0])[1:])
    return tuple(np.shape(value)[1:])


def _sum_or_none(parts):
    if any(p is None for p in parts):
        return None
    return sum(parts[1:], parts[0])


class Adapter(_BaseComposition):
    """A pipeline of named steps mapping a simulated batch to the network inputs.

    Like :class:`sklearn.pipeline.Pipeline`: ``steps`` is a list of ``(name, transform)``;
    ``get_params(deep=True)`` / ``set_params(name__param=...)`` route to the steps and the
    adapter can be cloned. ``fit`` learns the steps' statistics on a full batch;
    ``transform`` maps a batch to the role keys ``inference_variables (B, D)``,
    ``inference_conditions (B, C)`` and ``summary_variables (B, N, F)`` (cast to ``dtype``);
    ``inverse_transform`` maps ``inference_variables`` of any leading shape back to the
    user's variables. Each transform has a fluent method (``Adapter().as_set(...)``) that
    appends it as a step and returns the adapter, for BayesFlow users.

    Steps whose inputs are all absent are skipped (at sample time there are no
    parameters); a step with only some of its inputs raises ``MissingKeyError``.

    Parameters
    ----------
    steps : list of (str, Transform) or None, default=None
        Names must be unique and contain no ``"__"``.
    dtype : str, default="float32"
        The dtype of the role keys in ``transform``'s output.

    Attributes
    ----------
    input_variables_ : dict of str to tuple
        The fit batch's variables and their trailing shapes.
    inference_variables_ : dict of str to tuple
        The user variables that make up ``inference_variables``, in order, with their
        trailing shapes (what ``inverse_transform`` returns).
    inference_dtypes_ : dict of str to str
        Their dtypes in the fit batch.
    output_shapes_ : dict of str to tuple
        Trailing shapes of the role keys in ``fit``'s output.
    n_inference_dims_ : int or None
        ``D``, the last-axis size of ``inference_variables`` (None if not produced).

    Examples
    --------
    Parameters ``mu`` and ``sigma > 0`` become ``inference_variables``; the data ``x``
    becomes a set for the summary network:

    >>> import numpy as np
    >>> from skabi import Adapter
    >>> rng = np.random.default_rng(0)
    >>> batch = {"mu": rng.normal(size=(8, 2)), "sigma": rng.gamma(2.0, size=(8, 1)),
    ...          "x": rng.normal(size=(8, 5))}
    >>> adapter = (Adapter().constrain("sigma", lower=0)
    ...            .concatenate(["mu", "sigma"], into="inference_variables")
    ...            .as_set("x").rename("x", "summary_variables"))
    >>> out = adapter.fit_transform(batch)
    >>> out["inference_variables"].shape, out["summary_variables"].shape
    ((8, 3), (8, 5, 1))
    >>> back = adapter.inverse_transform(out["inference_variables"])
    >>> np.allclose(back["mu"], batch["mu"]), np.allclose(back["sigma"], batch["sigma"])
    (True, True)
    """

    def __init__(self, steps=None, *, dtype="float32"):
        self.steps = steps
        self.dtype = dtype

    # ------------------------------------------------------------------ params
    def get_params(self, deep=True):
        """Parameters of the adapter and, with ``deep``, of its steps (``name__param``)."""
        return self._get_params("steps", deep=deep)

    def set_params(self, **params):
        """Set parameters, routing ``name__param`` to steps; returns ``self``."""
        self._set_params("steps", **params)
        return self

    @property
    def named_steps(self):
        """The steps as a :class:`~sklearn.utils.Bunch`, by name."""
        return Bunch(**dict(self.steps or []))

    def __len__(self):
        return len(self.steps or [])

    def __getitem__(self, ind):
        steps = list(self.steps or [])
        if isinstance(ind, slice):
            return Adapter(steps[ind], dtype=self.dtype)
        if isinstance(ind, str):
            return self.named_steps[ind]
        return steps[ind][1]

    def _validated_steps(self):
        steps = [] if self.steps is None else self.steps
        if not isinstance(steps, (list, tuple)) or not all(
            isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str) for s in steps
        ):
            raise TypeError(
                f"Adapter steps must be a list of (name, transform) tuples; got {steps!r}."
            )
        if steps:
            names, transforms = zip(*steps)
            self._validate_names(list(names))
            self._check_estimators_are_instances(transforms)
            for name, step in steps:
                if not isinstance(step, Transform):
                    raise TypeError(
                        f"Step {name!r} is a {type(step).__name__}; adapter steps must be "
                        f"skabi.adapters transforms ({', '.join(TRANSFORMS)})."
                    )
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind != "f":
            raise ValueError(f"Adapter's 'dtype' must be a floating dtype; got {self.dtype!r}.")
        return list(steps)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "output_shapes_")

    # ------------------------------------------------------------------ fit / transform
    def fit(self, data, y=None):
        """Fit every step in turn on a full simulated batch; return ``self``.

        Learns standardization statistics, concatenation sizes and the dtypes and trailing
        shapes of the user variables that end up in ``inference_variables``.
        """
        steps = self._validated_steps()
        user = _check_batch(data, "Adapter.fit")
        data = dict(user)
        origins = {k: [k] for k in user}
        rows = user   # the user's variables, one row per what the networks see
        for name, step in steps:
            with _in_step(name):
                data = step.fit(data).transform(data)
            if getattr(step, "_new_rows", False):   # AsObservations: rows are observations
                rows = step._user_rows({k: data[k] for k in user if k in data})
            origins = step._route(origins, lambda parts: sum(parts, []))
        _no_ragged_roles(data)
        names = origins.get("inference_variables") or []
        self.input_variables_ = {k: _trailing(v) for k, v in user.items()}
        self.inference_variables_ = {k: tuple(np.shape(rows[k])[1:]) for k in names}
        self.inference_dtypes_ = {k: np.asarray(rows[k]).dtype.name for k in names}
        self.output_shapes_ = {k: tuple(data[k].shape[1:]) for k in ROLE_KEYS if k in data}
        iv = data.get("inference_variables")
        self.n_inference_dims_ = int(iv.shape[-1]) if iv is not None and iv.ndim >= 2 else None
        return self

    def transform(self, data, *, log_det_jac=False):
        """Map a batch to the network inputs.

        Parameters
        ----------
        data : dict of str to array-like
            A batch with a leading batch axis (meta variables may be scalars). Parameters
            may be absent (sample time): steps whose inputs are all absent are skipped.
        log_det_jac : bool, default=False
            Also return ``log |det d inference_variables / d (user variables)|``.

        Returns
        -------
        out : dict of str to ndarray
            The batch after every step; role keys cast to ``dtype``. Never aliases input.
        ldj : ndarray of shape (B,), float64
            Only with ``log_det_jac=True``.
        """
        steps = self._validated_steps()
        data = _check_batch(data, "Adapter.transform")
        input_ids = {id(v) for v in data.values()}
        ldj = {} if log_det_jac else None
        for name, step in steps:
            with _in_step(name):
                data, present = step._prepare(data)
                if not present:
                    continue
                if ldj is not None and step.invertible:
                    for k, v in step._log_det_jac_present(data, present).items():
                        prev = ldj.get(k, 0.0)
                        ldj[k] = None if prev is None else prev + v
                data = step._transform_present(data, present)
            if ldj is not None:
                ldj = step._route(ldj, _sum_or_none, undefined=True)
        dtype = np.dtype(self.dtype)
        out = {}
        _no_ragged_roles(data)
        for k, v in data.items():
            if k in ROLE_KEYS:
                out[k] = _cast(k, v, dtype)
            else:
                out[k] = v.copy() if id(v) in input_ids else v
        if not log_det_jac:
            return out
        if "inference_variables" not in out:
            raise ValueError(
                "transform(..., log_det_jac=True) needs 'inference_variables', which this batch "
                f"does not produce (its keys: {sorted(data)!r}); pass a batch with parameters."
            )
        value = ldj.get("inference_variables", 0.0)
        if value is None:
            bad = [n for n, s in steps if not s.invertible]
            raise ValueError(
                "The log-det Jacobian of 'inference_variables' is undefined: it passes through "
                f"a non-invertible step (one of {bad!r})."
            )
        n = out["inference_variables"].shape[0]
        return out, np.array(np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)))

    def fit_transform(self, data, y=None, *, log_det_jac=False):
        """``fit(data).transform(data, log_det_jac=log_det_jac)``."""
        return self.fit(data).transform(data, log_det_jac=log_det_jac)

    def __call__(self, data, *, inverse=False, log_det_jac=False):
        """:meth:`transform`, or :meth:`inverse_transform` with ``inverse=True``.

        BayesFlow's ``adapter(data)`` and ``adapter(draws, inverse=True)``.
        """
        if inverse:
            if log_det_jac:
                raise TypeError("log_det_jac=True is only for the forward direction; "
                                "inverse=True returns the user's variables only.")
            return self.inverse_transform(data)
        return self.transform(data, log_det_jac=log_det_jac)

    def inverse(self, data):
        """Same as :meth:`inverse_transform` (BayesFlow's ``adapter.inverse(data)``)."""
        return self.inverse_transform(data)

    def inverse_transform(self, data):
        """Map network-scale ``inference_variables`` back to the user's variables.

        Parameters
        ----------
        data : dict of str to ndarray, or ndarray
            ``{"inference_variables": array of shape (..., D)}`` with any leading shape
            (e.g. ``(datasets, draws, D)``); a bare array is taken as that.

        Returns
        -------
        dict of str to ndarray
            ``{name: array of shape (..., *trailing shape seen in fit)}`` on the user's
            scale, in the dtype seen in ``fit``. Computed in float64; variables of
            ``Constrain`` lie strictly inside their support, except with
            ``method="reject"``, whose values pass unchanged (the estimator rejects the
            draws outside).
        """
        return self._inverse(data)[0]

    @property
    def rejects_draws(self):
        """Whether a step keeps draws inside bounds by rejection
        (``Constrain(method="reject")``): the estimator then draws again for those outside."""
        return bool(self._rejecting_steps())

    def _rejecting_steps(self):
        """Names of the steps that keep bounds by rejection."""
        return [name for name, step in self._validated_steps()
                if getattr(step, "rejects", False)]

    def _method_candidates(self):
        """The adapters a fit chooses among for the :class:`Constrain` steps that leave the
        method to it (``"select"``, or ``"auto"`` with both bounds): copies with every such
        step set to ``"map"`` and to ``"reject"`` (two, however many steps), or ``[self]``
        where there is none."""
        names = [name for name, step in self._validated_steps()
                 if isinstance(step, Constrain) and step.left_to_fit]
        if not names:
            return [self]
        return [clone(self).set_params(**{f"{name}__method": method for name in names})
                for method in ("map", "reject")]

    def _inverse(self, data, support=False):
        """:meth:`inverse_transform`, and with ``support=True`` also which draws lie inside
        the bounds of the rejecting steps: bool of the leading shape of
        ``inference_variables`` (None without)."""
        check_is_fitted(self)
        steps = self._validated_steps()
        if not isinstance(data, Mapping):
            data = {"inference_variables": data}
        data = {k: np.asarray(v, dtype=np.float64) for k, v in data.items()}
        if "inference_variables" in data:
            if self.n_inference_dims_ is None:
                raise ValueError(
                    "This adapter produces no 'inference_variables' of shape (B, D) to invert "
                    f"(its outputs in fit: {self.output_shapes_!r}, trailing shapes)."
                )
            z = data["inference_variables"]
            if z.ndim < 1 or z.shape[-1] != self.n_inference_dims_:
                raise ShapeError(
                    f"'inference_variables' has shape {z.shape}; expected (..., "
                    f"{self.n_inference_dims_}) as in fit (variables "
                    f"{list(self.inference_variables_)!r})."
                )
        lead = tuple(data["inference_variables"].shape[:-1]) if (
            "inference_variables" in data) else None
        inside = None
        for name, step in reversed(steps):
            outputs = [k for k in step._output_keys() if k in data]
            if not outputs:
                continue
            if not step.invertible:
                raise ValueError(
                    f"Step {name!r} ({type(step).__name__}) is not invertible, but "
                    f"inverse_transform would have to undo it for {outputs!r}."
                )
            with _in_step(name):
                data = step.inverse_transform(data)
            if support and getattr(step, "rejects", False):
                here = step.support_mask(data, lead)
                inside = here if inside is None else inside & here
        for k, shape in self.inference_variables_.items():
            if k not in data:
                continue
            x = data[k]
            if tuple(x.shape[x.ndim - len(shape):]) != shape or x.ndim < len(shape):
                raise ShapeError(
                    f"{k!r} came back with shape {x.shape}; expected (..., *{shape})."
                )
            dtype = np.dtype(self.inference_dtypes_[k])
            data[k] = np.rint(x).astype(dtype) if dtype.kind in "iub" else x.astype(dtype)
        if support and inside is None and lead is not None:
            inside = np.ones(lead, dtype=bool)
        return data, inside

    # ------------------------------------------------------------------ config
    def get_config(self):
        """A JSON-serialisable dict: params, steps (class, params, fitted statistics)."""
        steps = self._validated_steps()
        fitted = {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}
        return {
            "class": "Adapter",
            "config_version": _CONFIG_VERSION,
            "params": _encode({"dtype": self.dtype}),
            "steps": [
                {
                    "name": name,
                    "class": type(step).__name__,
                    "params": _encode(step.get_params(deep=False)),
                    "fitted": _encode(step._fitted_state()),
                }
                for name, step in steps
            ],
            "fitted": _encode(fitted),
        }

    @classmethod
    def from_config(cls, config):
        """Rebuild an (optionally fitted) adapter from :meth:`get_config`'s output.

        Only the classes in :data:`TRANSFORMS` are rebuilt; nothing is imported or unpickled.

        Raises
        ------
        ValueError
            For an unknown step class or a malformed config.
        """
        if not isinstance(config, Mapping) or config.get("class") != "Adapter":
            raise ValueError("Not an adapter config: expected a dict with 'class': 'Adapter'.")
        steps = []
        for entry in config.get("steps", []):
            name, cls_name = entry.get("name"), entry.get("class")
            if cls_name not in TRANSFORMS:
                raise ValueError(
                    f"Unknown adapter step class {cls_name!r} (step {name!r}); known classes are "
                    f"{sorted(TRANSFORMS)!r}.{suggest(cls_name, TRANSFORMS)}"
                )
            step = TRANSFORMS[cls_name](**_decode(entry.get("params", {"__dict__": []})))
            for attr, value in _decode(entry.get("fitted", {"__dict__": []})).items():
                setattr(step, attr, value)
            steps.append((name, step))
        adapter = cls(steps, **_decode(config.get("params", {"__dict__": []})))
        for attr, value in _decode(config.get("fitted", {"__dict__": []})).items():
            setattr(adapter, attr, value)
        return adapter

    # ------------------------------------------------------------------ fluent form
    def _append(self, step):
        # Steps named automatically are renamed as make_adapter would name them (so the
        # fluent form equals make_adapter's); user-chosen names are kept.
        steps = list(self.steps or [])
        old_auto = [n for n, _ in _name_estimators([s for _, s in steps])]
        auto = [i for i, (n, _) in enumerate(steps) if n == old_auto[i]]
        new_auto = [n for n, _ in _name_estimators([steps[i][1] for i in auto] + [step])]
        for i, name in zip(auto, new_auto):
            steps[i] = (name, steps[i][1])
        name, taken, j = new_auto[-1], {n for n, _ in steps}, 1
        while name in taken:
            name, j = f"{new_auto[-1]}-{j}", j + 1
        self.steps = steps + [(name, step)]
        return self

    def broadcast(self, keys, *, to):
        """Append :class:`Broadcast` ``(keys, to=to)``; return ``self``."""
        return self._append(Broadcast(keys, to=to))

    def as_set(self, keys):
        """Append :class:`AsSet` ``(keys)``; return ``self``."""
        return self._append(AsSet(keys))

    def as_observations(self, keys):
        """Append :class:`AsObservations` ``(keys)``; return ``self``."""
        return self._append(AsObservations(keys))

    def as_time_series(self, keys):
        """Append :class:`AsTimeSeries` ``(keys)``; return ``self``."""
        return self._append(AsTimeSeries(keys))

    def as_tokens(self, keys):
        """Append :class:`AsTokens` ``(keys)``; return ``self``."""
        return self._append(AsTokens(keys))

    def constrain(self, keys, *, lower=None, upper=None, method="auto"):
        """Append :class:`Constrain` ``(keys, lower=, upper=, method=)``; return ``self``."""
        return self._append(Constrain(keys, lower=lower, upper=upper, method=method))

    def standardize(self, keys=None, *, exclude=None):
        """Append :class:`Standardize` ``(keys, exclude=)``; return ``self``."""
        return self._append(Standardize(keys, exclude=exclude))

    def sqrt(self, keys):
        """Append :class:`Sqrt` ``(keys)``; return ``self``."""
        return self._append(Sqrt(keys))

    def log(self, keys):
        """Append :class:`Log` ``(keys)``; return ``self``."""
        return self._append(Log(keys))

    def one_hot(self, keys, *, num_classes):
        """Append :class:`OneHot` ``(keys, num_classes=)``; return ``self``."""
        return self._append(OneHot(keys, num_classes=num_classes))

    def concatenate(self, keys, *, into, axis=-1):
        """Append :class:`Concatenate` ``(keys, into=, axis=)``; return ``self``."""
        return self._append(Concatenate(keys, into=into, axis=axis))

    def rename(self, from_key, to_key):
        """Append :class:`Rename` ``(from_key, to_key)``; return ``self``."""
        return self._append(Rename(from_key, to_key))

    def convert_dtype(self, keys=None, *args, from_dtype=None, to_dtype=None):
        """Append :class:`ConvertDType` ``(keys, from_dtype=, to_dtype=)``; return ``self``.

        BayesFlow's spelling names two dtypes and no variables,
        ``convert_dtype("float64", "float32")`` (or ``from_dtype=``, ``to_dtype=`` without
        ``keys``): it casts what the networks read. skabi's adapter already casts its
        outputs (the role keys) to its ``dtype``, so that form sets ``dtype`` to the
        second dtype and appends no step. Both dtypes must then be floating point.
        """
        skabi_form = keys is not None and not args
        if skabi_form and from_dtype is not None and to_dtype is not None:
            return self._append(ConvertDType(keys, from_dtype=from_dtype, to_dtype=to_dtype))
        # BayesFlow's form: two floating-point dtypes, positional or keyword, not both
        dtypes = (keys, *args) if args else (from_dtype, to_dtype)
        mixed = bool(args) and (from_dtype, to_dtype) != (None, None)
        if not skabi_form and not mixed and len(dtypes) == 2 \
                and all(map(_is_float_dtype, dtypes)):
            self.dtype = np.dtype(dtypes[1]).name
            return self
        raise TypeError(
            "convert_dtype takes the variables and two keyword dtypes, "
            "convert_dtype(keys, from_dtype=..., to_dtype=...), or BayesFlow's two "
            "floating-point dtypes for everything the networks read, "
            f"convert_dtype('float64', 'float32'); got keys={keys!r}, "
            f"further arguments {list(args)!r}, from_dtype={from_dtype!r}, "
            f"to_dtype={to_dtype!r}."
        )

    def keep(self, keys):
        """Append :class:`Keep` ``(keys)``; return ``self``."""
        return self._append(Keep(keys))

    def drop(self, keys):
        """Append :class:`Drop` ``(keys)``; return ``self``."""
        return self._append(Drop(keys))


def make_adapter(*steps, dtype="float32"):
    """Build an :class:`Adapter` from transforms, naming the steps automatically.

    Like :func:`sklearn.pipeline.make_pipeline`: each step is named by its lowercase class
    name, with ``-1``, ``-2``, ... for duplicates.

    Examples
    --------
    >>> from skabi.adapters import make_adapter, AsSet, Concatenate
    >>> adapter = make_adapter(
    ...     AsSet(["x", "y"]), Concatenate(["x", "y"], into="summary_variables")
    ... )
    >>> [name for name, _ in adapter.steps]
    ['asset', 'concatenate']
    """
    return Adapter(_name_estimators(list(steps)), dtype=dtype)


def _is_float_dtype(value):
    """Whether ``value`` names a floating-point numpy dtype (``"float32"``, ``np.float64``)."""
    try:
        return value is not None and np.dtype(value).kind == "f"
    except (TypeError, ValueError):
        return False
