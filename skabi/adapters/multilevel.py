"""Adapters of a two-level (hierarchical) model: one ordinary :class:`Adapter` per level.

A multilevel batch holds global variables ``(B, ...)``, local variables ``(B, J, ...)``
(one entry per group: parameters, covariates, the group's data ``(B, J, N, ...)``) and
meta variables such as ``J`` and ``N``. :class:`MultilevelAdapter` applies its global
adapter to the global variables and its local adapter to the ``B * J`` groups as if they
were ``B * J`` datasets, so that every adapter step works per level unchanged; it lays
the local roles out again as ``(B, J, ...)`` under the names ``local_<role>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from ..bank import is_ragged, stack_datasets
from ..exceptions import MissingKeyError, ShapeError
from .adapter import Adapter
from .roles import GROUP_MASK, MASK, ROLES, local_role

__all__ = ["MultilevelAdapter", "Levels", "adapter_from_config"]


@dataclass
class Levels:
    """A multilevel batch split by level: what :class:`MultilevelAdapter` reads.

    Attributes
    ----------
    global_ : dict
        The global variables, one row per dataset (``B``), and the meta variables.
    local : dict
        The local variables, one row per group of every dataset (``R`` rows, ragged where
        groups differ in size), and the meta variables.
    index : ndarray of int of shape (B, J)
        The row of ``local`` of group ``j`` of dataset ``b``; -1 for padding (datasets
        with fewer than ``J`` groups).
    """

    global_: dict
    local: dict
    index: np.ndarray


def _leading(value):
    return len(value) if is_ragged(value) else (None if np.ndim(value) == 0
                                                  else np.shape(value)[0])


class MultilevelAdapter(BaseEstimator):
    """Two adapters, one per level of a hierarchical model.

    The global adapter reads the global variables (one row per dataset) and produces
    ``inference_variables`` (the hyperparameters) and, optionally,
    ``inference_conditions`` (known global covariates). The local adapter reads one
    group at a time: it produces ``inference_variables`` (the group's parameters),
    optionally ``inference_conditions`` (known group covariates, such as eight schools'
    standard errors, or the data of a group of one observation) and
    ``summary_variables`` (the group's observations, e.g. with :class:`AsSet`, for the
    group summary network).

    Parameters
    ----------
    global_adapter : Adapter
    local_adapter : Adapter
    groups : str, default="J"
        The meta variable that holds the number of groups of a batch. A variable whose
        second axis has ``J`` entries in the fit batch is local (and so at transform
        time).

    Attributes
    ----------
    local_variables_ : list of str
        The variables read as local (one entry per group).
    global_variables_ : list of str
        The other variables with a leading batch axis.
    input_variables_ : dict of str to tuple
        Trailing shapes of the variables of the fit batch (local ones per group).
    n_inference_dims_ : int
        Size of the global ``inference_variables``.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters import MultilevelAdapter, make_adapter, Rename, Constrain, \
Concatenate, AsSet
    >>> rng = np.random.default_rng(0)
    >>> batch = {"mu": rng.normal(size=(4, 1)), "tau": rng.gamma(2.0, size=(4, 1)),
    ...          "theta": rng.normal(size=(4, 3, 1)), "y": rng.normal(size=(4, 3, 5)),
    ...          "J": 3, "N": 5}
    >>> adapter = MultilevelAdapter(
    ...     global_adapter=make_adapter(Constrain("tau", lower=0),
    ...                                 Concatenate(["mu", "tau"], into="inference_variables")),
    ...     local_adapter=make_adapter(AsSet("y"), Rename("y", "summary_variables"),
    ...                                Rename("theta", "inference_variables")))
    >>> out = adapter.fit_transform(batch)
    >>> {k: v.shape for k, v in out.items()}   # doctest: +NORMALIZE_WHITESPACE
    {'inference_variables': (4, 2), 'local_inference_variables': (4, 3, 1),
     'local_summary_variables': (4, 3, 5, 1)}
    >>> adapter.local_variables_
    ['theta', 'y']
    """

    def __init__(self, global_adapter=None, local_adapter=None, *, groups="J"):
        self.global_adapter = global_adapter
        self.local_adapter = local_adapter
        self.groups = groups

    # ------------------------------------------------------------------ splitting
    def _check_params(self):
        for name in ("global_adapter", "local_adapter"):
            value = getattr(self, name)
            if not isinstance(value, Adapter):
                raise TypeError(f"MultilevelAdapter's {name!r} must be an Adapter (e.g. "
                                f"make_adapter(...)); got {type(value).__name__}.")
        if not isinstance(self.groups, str):
            raise TypeError(f"MultilevelAdapter's 'groups' must be a str; got {self.groups!r}.")

    def split(self, data, local_variables=None):
        """The :class:`Levels` of a batch whose meta variable ``groups`` is one number.

        ``local_variables``: the variables read as local (by default those whose second
        axis has ``J`` entries). A :class:`Levels` is returned as it is.
        """
        if isinstance(data, Levels):
            return data
        if not isinstance(data, Mapping):
            raise TypeError(f"A multilevel batch is a dict of arrays; got {type(data).__name__}.")
        if self.groups not in data:
            raise MissingKeyError(
                f"The batch has no {self.groups!r} (the number of groups, drawn once per "
                f"batch by the simulator's meta_fn); its keys are {sorted(data)!r}.")
        n_groups = np.asarray(data[self.groups])
        if n_groups.ndim != 0:
            raise ShapeError(
                f"{self.groups!r} has shape {n_groups.shape}; a multilevel batch holds one "
                "number of groups (datasets with different J are padded by the estimator).")
        n_groups = int(n_groups)
        if local_variables is None:
            local_variables = [k for k, v in data.items()
                               if k != self.groups and not is_ragged(v) and np.ndim(v) >= 2
                               and np.shape(v)[1] == n_groups]
        meta = {k: v for k, v in data.items() if not is_ragged(v) and np.ndim(v) == 0}
        present = [k for k in local_variables if k in data]
        rows = {_leading(data[k]) for k in data if k not in meta}
        if len(rows) > 1:
            raise ShapeError(f"The variables of the batch disagree on the number of datasets "
                             f"({sorted(rows)}).")
        batch = rows.pop() if rows else 1
        local = {}
        for k in present:
            v = np.asarray(data[k])
            if v.ndim < 2 or v.shape[1] != n_groups:
                raise ShapeError(f"Local variable {k!r} has shape {v.shape}; expected "
                                 f"(batch, {self.groups}={n_groups}, ...).")
            local[k] = v.reshape(batch * n_groups, *v.shape[2:])
        global_ = {k: v for k, v in data.items() if k not in present and k not in meta}
        return Levels({**global_, **meta}, {**local, **meta},
                      np.arange(batch * n_groups).reshape(batch, n_groups))

    def split_datasets(self, datasets):
        """The :class:`Levels` of a list of datasets, each a dict of ONE dataset's
        variables: local ones with a leading axis of that dataset's groups (their data
        ``(J, N, ...)``, or a list of ``J`` arrays when the groups differ in size)."""
        check_is_fitted(self, "local_variables_")
        local_names = set(self.local_variables_)
        n_groups, globals_, groups = [], [], []
        for i, d in enumerate(datasets):
            if not isinstance(d, Mapping):
                raise TypeError(f"Dataset {i} is a {type(d).__name__}; expected a dict.")
            local = {k: v for k, v in d.items() if k in local_names}
            sizes = {k: len(v) for k, v in local.items()}
            if len(set(sizes.values())) != 1:
                raise ShapeError(
                    f"Dataset {i}: its local variables {sorted(local_names)!r} must have one "
                    f"entry per group (the same number); got {sizes!r}." if sizes else
                    f"Dataset {i} holds none of the local variables "
                    f"{sorted(local_names)!r}; it needs at least its groups' data.")
            n = next(iter(sizes.values()))
            if self.groups in d and int(np.asarray(d[self.groups])) != n:
                raise ShapeError(f"Dataset {i}: {self.groups}={int(np.asarray(d[self.groups]))}"
                                 f" but its local variables have {n} groups.")
            if n == 0:
                raise ShapeError(f"Dataset {i} has no groups.")
            n_groups.append(n)
            meta = {k: v for k, v in d.items() if k not in local_names and np.ndim(v) == 0
                    and not isinstance(v, list) and k != self.groups}
            globals_.append({k: v for k, v in d.items() if k not in local_names
                             and k != self.groups})
            groups += [{**{k: np.asarray(v[j]) for k, v in local.items()}, **meta}
                       for j in range(n)]
        expected = getattr(self, "input_variables_", None)
        width = max(n_groups)
        index = np.full((len(datasets), width), -1)
        start = 0
        for b, n in enumerate(n_groups):
            index[b, :n] = np.arange(start, start + n)
            start += n
        global_batch = stack_datasets(globals_, expected) if globals_[0] else {}
        return Levels(global_batch, stack_datasets(groups, self._local_expected(expected)),
                      index)

    def _local_expected(self, expected):
        return getattr(self, "local_inputs_", None) or expected

    # ------------------------------------------------------------------ fit / transform
    def fit(self, data, y=None):
        """Fit the global adapter on the global variables and the local adapter on the
        groups of a batch; return ``self``."""
        self._check_params()
        levels = self.split(data)
        local = [k for k in levels.local if np.ndim(levels.local[k]) > 0]
        self.global_adapter.fit(levels.global_)
        self.local_adapter.fit(levels.local)
        self.local_variables_ = local
        self.global_variables_ = [k for k in levels.global_ if np.ndim(levels.global_[k]) > 0]
        self.input_variables_ = {**self.global_adapter.input_variables_,
                                 **self.local_adapter.input_variables_}
        self.local_inputs_ = dict(self.local_adapter.input_variables_)
        made = self.global_adapter.output_shapes_
        if "summary_variables" in made:
            raise ValueError("The global adapter produces 'summary_variables'; the global "
                             "level reads the group summaries. Feed each group's data to "
                             "the local adapter's 'summary_variables' instead.")
        if "inference_variables" not in made:
            raise ValueError("The global adapter produces no 'inference_variables'; "
                             "concatenate or rename the hyperparameters into it.")
        if "inference_variables" not in self.local_adapter.output_shapes_:
            raise ValueError("The local adapter produces no 'inference_variables'; "
                             "concatenate or rename the group parameters into it.")
        self.n_inference_dims_ = self.global_adapter.n_inference_dims_
        return self

    def __sklearn_is_fitted__(self):
        return hasattr(self, "local_variables_")

    def levels(self, data):
        """The :class:`Levels` of ``data``: a batch of one number of groups
        (:meth:`split`), or a list of datasets (:meth:`split_datasets`)."""
        check_is_fitted(self, "local_variables_")
        if isinstance(data, (list, tuple)):
            return self.split_datasets(data)
        return self.split(data, self.local_variables_)

    def transform(self, data, *, log_det_jac=False):
        """The network inputs of a batch (or of :class:`Levels`, or of a list of
        datasets): the global adapter's roles, and the local adapter's as
        ``local_<role>`` laid out ``(B, J, ...)``, with ``group_mask`` (B, J) where
        datasets were padded to a common number of groups.

        With ``log_det_jac=True`` also returns ``(global (B,), local (B, J))``: the
        log-det Jacobians of ``inference_variables`` and of each group's
        ``local_inference_variables`` with respect to the user's variables (0 for padded
        groups). The batch must then hold the global and the local parameters.
        """
        _, out, ldj = self.transform_levels(data, log_det_jac=log_det_jac)
        return (out, ldj) if log_det_jac else out

    def transform_levels(self, data, *, log_det_jac=False):
        """``(levels, roles, log-det Jacobians or None)`` of ``data`` in one call: what
        an estimator needs of new data (the :class:`Levels` lay out its output, the roles
        feed the networks), as :meth:`levels` and :meth:`transform` give them."""
        levels = self.levels(data)
        glob = self.global_adapter.transform(levels.global_, log_det_jac=log_det_jac)
        local = self.local_adapter.transform(levels.local, log_det_jac=log_det_jac)
        if log_det_jac:
            (glob, ldj_global), (local, ldj_local) = glob, local
        out = {k: v for k, v in glob.items() if k in ROLES}
        take = np.maximum(levels.index, 0)   # padded groups repeat a real one, masked out
        for role in (*ROLES, MASK):
            if role in local:
                out[local_role(role)] = np.asarray(local[role])[take]
        if (levels.index < 0).any():
            out[GROUP_MASK] = levels.index >= 0
        if not log_det_jac:
            return levels, out, None
        return levels, out, (ldj_global, np.where(levels.index >= 0, ldj_local[take], 0.0))

    def fit_transform(self, data, y=None):
        """``fit(data).transform(data)``."""
        return self.fit(data).transform(data)

    def inverse_transform(self, data):
        """Draws back to the user's variables: ``inference_variables`` through the global
        adapter, ``local_inference_variables`` through the local one (any leading axes)."""
        check_is_fitted(self, "local_variables_")
        out = {}
        if "inference_variables" in data:
            out.update(self.global_adapter.inverse_transform(
                {"inference_variables": data["inference_variables"]}))
        if "local_inference_variables" in data:
            out.update(self.local_adapter.inverse_transform(
                {"inference_variables": data["local_inference_variables"]}))
        return out

    def parameter_names(self):
        """``(global names, local names)``: the user's variables that are inferred."""
        check_is_fitted(self, "local_variables_")
        return (list(self.global_adapter.inference_variables_),
                list(self.local_adapter.inference_variables_))

    # ------------------------------------------------------------------ config
    def get_config(self):
        """A JSON-serialisable dict: both adapters' configs and the fitted variables."""
        fitted = {k: list(getattr(self, k)) for k in ("local_variables_", "global_variables_")
                  if hasattr(self, k)}
        return {"class": "MultilevelAdapter", "groups": self.groups,
                "global_adapter": self.global_adapter.get_config(),
                "local_adapter": self.local_adapter.get_config(), "fitted": fitted}

    @classmethod
    def from_config(cls, config):
        """Rebuild a (fitted) adapter from :meth:`get_config`'s output."""
        if not isinstance(config, Mapping) or config.get("class") != "MultilevelAdapter":
            raise ValueError("Not a multilevel adapter config.")
        out = cls(Adapter.from_config(config["global_adapter"]),
                  Adapter.from_config(config["local_adapter"]), groups=str(config["groups"]))
        fitted = config.get("fitted") or {}
        if "local_variables_" in fitted:
            out.local_variables_ = list(fitted["local_variables_"])
            out.global_variables_ = list(fitted.get("global_variables_", []))
            out.input_variables_ = {**out.global_adapter.input_variables_,
                                    **out.local_adapter.input_variables_}
            out.local_inputs_ = dict(out.local_adapter.input_variables_)
            out.n_inference_dims_ = out.global_adapter.n_inference_dims_
        return out

    def __sklearn_clone__(self):
        return MultilevelAdapter(clone(self.global_adapter), clone(self.local_adapter),
                                 groups=self.groups)


def adapter_from_config(config):
    """An :class:`Adapter` or a :class:`MultilevelAdapter` from its config."""
    if isinstance(config, Mapping) and config.get("class") == "MultilevelAdapter":
        return MultilevelAdapter.from_config(config)
    return Adapter.from_config(config)
