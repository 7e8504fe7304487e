"""The base of every estimator: :class:`AmortizedEstimator`, its hooks, and what the
family shares (training parameters, ``fit``, committed fitted attributes, observations in,
``save`` and ``load``, threads and seeds).

An estimator class is the public contract of its job (its parameters, methods and tags);
it supplies the declared hooks (``_build``, ``_networks``, ``_initial_spec``, ``_commit``,
``_fit_state`` and, optionally, ``_save_extra``, ``_restore_extra`` and ``_bank_defaults``)
and inherits the rest (``doc/contributing.rst``, "Adding an estimator"). The mechanics
underneath are the engine's (:mod:`skabi.training`), which knows no estimator.
"""

import numbers
import os

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import HasMethods, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._bayesflow import WORKFLOW_METHODS, missing_attribute
from .._validation import NumberInterval, as_numpy_rng
from ..bank import SimulationBank
from ..exceptions import LoadError, MissingKeyError
from ..inputs import is_array, observations
from ..training import fitting, persistence
from ..training.roles import check_roles
from ..training.state import CANDIDATE_COLUMNS, HISTORY_COLUMNS, FitState
from ..training.threads import torch_threads

__all__ = ["AmortizedEstimator", "TRAINING_CONSTRAINTS", "WEIGHT_AVERAGING", "NOT_RESTORED",
           "ADDED_PARAMS",
           "n_features", "check_n_features", "check_saved_params"]

#: Parameters a saved file never sets: they name a file, a device or the process.
NOT_RESTORED = ("checkpoint_path", "device", "n_threads", "verbose")

_AUTO = StrOptions({"auto"})

#: Parameters added to an estimator after files were written without them, with the value
#: such a file trained under (``weight_averaging`` came to the point estimator, the model
#: comparison and the multilevel posterior with their ``"auto"`` defaults, issue 30).
ADDED_PARAMS = {"weight_averaging": None}

#: The constraint of ``weight_averaging`` (estimators that offer it add it to theirs).
WEIGHT_AVERAGING = [NumberInterval(numbers.Real, 0, 1, closed="left"), _AUTO, None]

#: scikit-learn constraints of the parameters every estimator trains with (the names and
#: meanings of :class:`~skabi.training.fitting.TrainingSettings`).
TRAINING_CONSTRAINTS = {
    "adapter": [HasMethods(["fit", "transform", "inverse_transform"]), None],
    "summary_network": [HasMethods(["build"]), None],
    "epochs": [NumberInterval(numbers.Integral, 1, None, closed="left"), _AUTO],
    "batches_per_epoch": [NumberInterval(numbers.Integral, 1, None, closed="left")],
    "batch_size": [NumberInterval(numbers.Integral, 1, None, closed="left"), _AUTO],
    "learning_rate": [NumberInterval(numbers.Real, 0, None, closed="neither"), _AUTO],
    "lr_schedule": [StrOptions({"cosine", "constant", "auto"})],
    "weight_decay": [NumberInterval(numbers.Real, 0, None, closed="left")],
    "clip_grad_norm": [NumberInterval(numbers.Real, 0, None, closed="neither"), None],
    "validation_sims": [NumberInterval(numbers.Integral, 1, None, closed="left"),
                        NumberInterval(RealNotInt, 0, 1, closed="neither"), dict, tuple,
                        SimulationBank, _AUTO, None],
    "early_stopping": ["boolean", _AUTO],
    "patience": [NumberInterval(numbers.Integral, 1, None, closed="left"), _AUTO],
    "standardize": ["boolean"],
    "pilot_size": [NumberInterval(numbers.Integral, 2, None, closed="left")],
    "rounds": [NumberInterval(numbers.Integral, 1, None, closed="left"), None],
    "replay_capacity": [NumberInterval(numbers.Integral, 1, None, closed="left"), None],
    "checkpoint_path": [str, os.PathLike, None],
    "device": [str, torch.device],
    "random_state": ["random_state", np.random.Generator],
    "n_threads": [NumberInterval(numbers.Integral, None, -1, closed="right"),
                  NumberInterval(numbers.Integral, 1, None, closed="left"), None],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "on_nonfinite": [StrOptions({"raise", "drop"})],
}



class AmortizedEstimator(BaseEstimator):
    """The base of skabi's estimators: one training engine behind one contract.

    A subclass stores its parameters in ``__init__`` (keyword-only, as given; scikit-learn
    reads them from the signature), adds its own ``_parameter_constraints`` to
    ``TRAINING_CONSTRAINTS``, supplies the hooks below and writes its public ``fit`` and
    ``partial_fit`` (their documentation is its contract) as calls of ``_fit``; ``save``,
    ``load``, the seed and thread handling and the scikit-learn tags come from here.

    Notes
    -----
    The hooks a subclass supplies:

    ``_build``
        The engine function ``build(networks, shapes, params)`` that makes the
        estimator's torch model (a static method), also used to rebuild a checkpoint or
        a saved file.
    ``_networks()``
        The network hyperparameter holders, by parameter name, defaults filled in.
    ``_initial_spec()``
        What a fresh fit starts from, as data: the keyword arguments of
        ``skabi.training.fitting.initial_state`` (adapter, networks, build, checks,
        default adapter, names), and ``densities=True`` where the model has log
        densities (the fit may then choose among adapters: ``Constrain`` of a box).
        The engine builds the state from it and never calls back into the estimator.
    ``_commit(state, n_features_in)``
        Set the fitted attributes from a state: the only place a fit changes the
        estimator. Subclasses call ``super()._commit`` and add their own.
    ``_fit_state()``
        The committed fit as a :class:`~skabi.training.state.FitState` (what ``save``,
        ``warm_start`` and the inference functions read); override to name the
        variables (``super()._fit_state(names)``).
    ``_save_extra()`` and ``_restore_extra(extra, path)``
        Fitted values a saved file holds besides the state (optional).
    ``_bank_defaults``
        What ``"auto"`` training parameters become with a bank (a class attribute; None
        takes ``skabi.training.defaults.BANK``; optional).

    The helpers a subclass uses: ``_fit`` (``fit``, ``partial_fit`` and ``resume``),
    ``_observations`` and ``_roles`` (the data of ``sample`` and the like, checked
    against training), ``_threads()`` (``n_threads`` for a call) and ``_rng(seed)`` (the
    call's seed, else ``random_state``).

    Examples
    --------
    >>> from skabi import AmortizedPosterior
    >>> from skabi.estimators.base import AmortizedEstimator
    >>> isinstance(AmortizedPosterior(), AmortizedEstimator)
    True
    >>> sorted(AmortizedEstimator._parameter_constraints)[:3]
    ['adapter', 'batch_size', 'batches_per_epoch']
    """

    _parameter_constraints = dict(TRAINING_CONSTRAINTS)

    #: The engine function building this estimator's torch model (a subclass sets it).
    _build = None

    #: What its ``"auto"`` training parameters become with a bank (None: the bank column
    #: of :mod:`skabi.training.defaults`, measured for the posterior; a subclass whose
    #: measurements chose other values names its own, ``benchmarks/family_defaults.py``).
    _bank_defaults = None

    def _store(self, given):
        """Store the constructor's arguments ``given`` (its ``locals()``) as they are."""
        for name in self._get_param_names():
            setattr(self, name, given[name])

    # ------------------------------------------------------------------ declared hooks
    def _networks(self):
        """``{parameter name: network hyperparameter holder}``, defaults filled in."""
        raise NotImplementedError(f"{type(self).__name__} must define _networks()")

    def _initial_spec(self):
        """What a fresh fit starts from, as data for the engine: the keyword arguments of
        :func:`skabi.training.fitting.initial_state` (``adapter``, ``networks``,
        ``build`` and, as needed, ``check``, ``check_adapter``, ``params``, ``default``,
        ``names``). Functions in it come from the layers below (the engine's checks and
        builds, :mod:`skabi.adapters.defaults`), so the engine never calls back into an
        estimator."""
        raise NotImplementedError(f"{type(self).__name__} must define _initial_spec()")

    def _commit(self, state, n_features_in=None):
        """Set the fitted attributes every estimator has from ``state`` (``n_features_in``:
        the width of the arrays it was fitted on, when it was)."""
        import pandas as pd

        self.adapter_ = state.adapter
        self.approximator_ = state.model
        self.summary_network_ = state.model.summary_network
        self.role_shapes_ = state.shapes
        self.networks_ = state.networks
        self._given_networks = dict(state.given_networks)
        self.device_ = state.device
        self.size_links_ = state.size_links
        self.history_ = pd.DataFrame(state.history, columns=HISTORY_COLUMNS)
        self.candidates_ = pd.DataFrame(state.candidates, columns=CANDIDATE_COLUMNS).astype(
            {"val_loss": float, "val_log_density": float, "seconds": float})
        self.n_simulations_ = int(state.n_simulations)
        self._set_n_features(n_features_in)

    def _fit_state(self, names=None):
        """The committed fit as a :class:`~skabi.training.state.FitState` (``names``: its
        variables; by default ``parameter_names_``)."""
        check_is_fitted(self, "approximator_")
        if names is None:
            names = getattr(self, "parameter_names_", None)
        return FitState(adapter=self.adapter_, model=self.approximator_,
                        shapes=self.role_shapes_, device=self.device_, names=names,
                        networks=self.networks_, history=self.history_.to_dict("records"),
                        given_networks=getattr(self, "_given_networks", {}),
                        candidates=_rows(getattr(self, "candidates_", None)),
                        n_simulations=self.n_simulations_,
                        size_links=getattr(self, "size_links_", {}))

    def _save_extra(self):
        """Fitted values (JSON-able) a saved file holds besides the state."""
        return {}

    def _restore_extra(self, extra, path):
        """Set what :meth:`_save_extra` saved, checked (``path``: named in errors)."""

    # ------------------------------------------------------------------ training
    def _fit(self, X, y=None, *, resume=False, partial=False, spec=None, validation=None):
        """Train on ``X`` and commit the result (the only way a fit changes the estimator).

        One call into the engine (:func:`skabi.training.fitting.fit`), with data only:
        the parameters, ``spec`` (default :meth:`_initial_spec`) and the committed fit to
        continue. With ``partial``, one epoch, continuing a fitted estimator; otherwise
        ``epochs``, continuing it only with ``warm_start``. ``validation`` replaces the
        ``validation_sims`` parameter for this fit (an estimator that had to translate
        it, such as labels into the model index).
        """
        self._validate_params()
        fitted = hasattr(self, "approximator_")
        if partial and fitted and isinstance(X, np.ndarray):
            check_n_features(self, X)
        params = self.get_params(deep=False)
        if validation is not None:
            params["validation_sims"] = validation
        spec = self._initial_spec() if spec is None else spec
        go_on = fitted and (partial or self.warm_start)
        with self._threads():
            state = fitting.fit(params, X, y, spec=spec,
                                fitted=self._fit_state() if go_on else None,
                                epochs=1 if partial else None, resume=resume and not partial,
                                owner=type(self).__name__, header=self._header(),
                                bank_defaults=self._bank_defaults)
        self._commit(state, n_features(X, y))
        return self

    def _set_n_features(self, n_features_in):
        """``n_features_in_``: the width of the arrays it was fitted on, or none."""
        if n_features_in is not None:
            self.n_features_in_ = int(n_features_in)
        elif hasattr(self, "n_features_in_"):
            del self.n_features_in_   # refitted on something other than an array

    # ------------------------------------------------------------------ threads and seeds
    def _threads(self):
        """A context in which torch uses ``n_threads`` CPU threads (restored on exit)."""
        return torch_threads(getattr(self, "n_threads", 1))

    def _rng(self, random_state=None):
        """The numpy Generator of a call: ``random_state``, else the estimator's."""
        return as_numpy_rng(random_state if random_state is not None else self.random_state)

    # ------------------------------------------------------------------ observations
    def _observations(self, X, meta, *, frame_is_dataset=True):
        """The datasets ``X`` (and ``meta``) as a dict of arrays, checked against training
        (:func:`skabi.inputs.observations`)."""
        check_is_fitted(self, "approximator_")
        return observations(X, meta, frame_is_dataset=frame_is_dataset,
                            expected=getattr(self.adapter_, "input_variables_", None),
                            size_links=getattr(self, "size_links_", {}),
                            n_features=getattr(self, "n_features_in_", None),
                            owner=type(self).__name__)

    def _roles(self, data, *, need_theta, skip=(), log_det_jac=False):
        """The network inputs of ``data`` through the fitted adapter, checked; ``(roles, ldj)``.

        A missing input names the variables the simulations had in training (``skip``: the
        ones that are not needed now, such as the parameters when sampling).
        """
        if log_det_jac:
            out, ldj = self.adapter_.transform(data, log_det_jac=True)
        else:
            out, ldj = self.adapter_.transform(data), None
        try:
            check_roles(out, self.role_shapes_, given_keys=data.keys(), need_theta=need_theta)
        except MissingKeyError as exc:
            seen = getattr(self.adapter_, "input_variables_", {})
            lacking = [k for k in seen if k not in data and k not in skip]
            if not lacking:
                raise
            raise MissingKeyError(f"{exc} The data lack {lacking!r}, which the simulations "
                                  "had in training (pass batch scalars such as N through "
                                  "meta=).") from None
        return out, ldj

    # ------------------------------------------------------------------ persistence
    def _header(self, **extra):
        """What a checkpoint or a saved file stores besides the state: class, parameters
        and fitted extras (JSON-able)."""
        extra["adapter_param"] = "none" if self.adapter is None else "fitted-copy"
        if hasattr(self, "n_features_in_"):
            extra["n_features_in"] = int(self.n_features_in_)
        return {"owner": type(self).__name__, "params": self.get_params(deep=False),
                "extra": extra}

    def save(self, path):
        """Save the fitted estimator: a zip with a JSON config and weights (no pickle).

        Parameters
        ----------
        path : str or path
            The file to write (atomically: a temporary file, then a rename).
        """
        persistence.save(path, self._fit_state(), **self._header(**self._save_extra()))

    @classmethod
    def load(cls, path, *, device="auto"):
        """Load an estimator written by :meth:`save`; never runs pickled code.

        Parameters that name a file, a device or a process are never taken from the file.

        Parameters
        ----------
        path : str or path
        device : str, default="auto"

        Returns
        -------
        estimator
            Fitted, of this class; a file another class wrote is refused.
        """
        head, state, _ = persistence.load(path, device=device, build=cls._build,
                                          owner=cls.__name__)
        saved = {**{k: v for k, v in ADDED_PARAMS.items() if k in cls._get_param_names()},
                 **head["params"]}
        check_saved_params(cls, saved, state.networks, path)
        params = {k: v for k, v in saved.items() if k not in NOT_RESTORED}
        try:
            est = cls(**params)
            est.set_params(adapter=head["adapter"], device=device,
                           **{**state.networks, **state.given_networks})
            est._validate_params()
        except (TypeError, ValueError) as exc:
            raise LoadError(f"{os.fspath(path)!r} holds parameters this {cls.__name__} does "
                            f"not take: {exc}") from None
        extra = head["extra"]
        est._commit(state, extra.get("n_features_in"))
        est._restore_extra(extra, path)
        return est

    def __getattr__(self, name):
        # only for attributes that do not exist: BayesFlow's workflow methods are named
        if name in WORKFLOW_METHODS:
            raise missing_attribute(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        return training_tags(self, tags)


def training_tags(est, tags):
    """scikit-learn tags every estimator shares: no required target (simulators), and
    non-deterministic without a seed."""
    tags.target_tags.required = False
    tags.non_deterministic = est.random_state is None
    return tags


def n_features(X, y=None):
    """The width of a 2-D array (or table) ``X`` fitted with targets ``y`` (scikit-learn's
    ``n_features_in_``); None for simulators and banks."""
    if not (is_array(X) or (y is not None and hasattr(X, "columns"))):
        return None
    shape = np.shape(np.asarray(X))
    return int(shape[1]) if len(shape) == 2 else None


def check_n_features(est, X):
    """scikit-learn's rule for arrays: as many features as in ``fit(X, y)``."""
    if hasattr(est, "n_features_in_") and X.ndim == 2 and X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input.")


def check_saved_params(cls, params, networks, path):
    """A file ``cls`` wrote holds every parameter of ``cls`` (components, and those a file
    never sets, aside): a file of another class relabelled as this one (the likelihood's
    parameters are a subset of the posterior's) is refused, never loaded with defaults
    filled in."""
    expected = (set(cls().get_params(deep=False)) - set(persistence.COMPONENTS)
                - set(networks) - set(NOT_RESTORED))
    missing = sorted(expected - set(params))
    if missing:
        raise LoadError(f"{os.fspath(path)!r} lacks the parameters {missing} that every "
                        f"{cls.__name__} file holds: another estimator wrote it, or it was "
                        "altered.")


def _rows(frame):
    """``candidates_`` as :attr:`FitState.candidates` rows: dicts, a missing number None
    (JSON-able); none before a fit."""
    if frame is None:
        return []
    return [{k: None if isinstance(v, float) and v != v else v for k, v in row.items()}
            for row in frame.to_dict("records")]
