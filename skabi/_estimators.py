"""What every estimator of the family shares: the training parameters, ``fit``, the
committed fitted attributes, observations in, and ``load``.

Functions over an estimator, not a base class: each estimator class stays the public
contract of its job (its parameters, methods and tags) and calls these for the parts that
are the same everywhere. The mechanics underneath are the engine's
(:mod:`skabi.training`).
"""

import numbers
import os

import numpy as np
import torch
from sklearn.utils._param_validation import HasMethods, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._validation import NumberInterval
from .bank import SimulationBank
from .exceptions import LoadError, MissingKeyError
from .inputs import as_observations, check_size_links, checked_array, is_array
from .training import fitting, persistence
from .training.roles import check_roles
from .training.state import HISTORY_COLUMNS, FitState
from .training.threads import torch_threads

__all__ = ["TRAINING_CONSTRAINTS", "WEIGHT_AVERAGING", "NOT_RESTORED", "fit", "commit",
           "fit_state", "header", "observations", "roles", "check_n_features", "n_features",
           "set_n_features", "load", "training_tags"]

#: Parameters a saved file never sets: they name a file, a device or the process.
NOT_RESTORED = ("checkpoint_path", "device", "n_threads", "verbose")

_AUTO = StrOptions({"auto"})

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


def fit(est, X, y=None, *, resume=False, partial=False, build, initial, validation=None):
    """Train ``est`` on ``X`` and commit the result (the only way a fit changes ``est``).

    ``initial(settings, source)`` makes a fresh :class:`FitState`; ``build`` rebuilds the
    model of a checkpoint (``resume``). With ``partial``, one epoch, continuing a fitted
    estimator; otherwise ``epochs``, continuing it only with ``warm_start``.
    ``validation`` replaces the ``validation_sims`` parameter for this fit (an estimator
    that had to translate it, such as labels into the model index).
    """
    est._validate_params()
    fitted = hasattr(est, "approximator_")
    if partial and fitted and isinstance(X, np.ndarray):
        check_n_features(est, X)
    params = est.get_params(deep=False)
    if validation is not None:
        params["validation_sims"] = validation
    settings, source = fitting.settings_and_source(params, X, y)
    go_on = fitted and (partial or est.warm_start)
    with torch_threads(est.n_threads):
        state = fitting.run_fit(
            settings, source, initial=lambda: initial(settings, source),
            fitted=est._fit_state() if go_on else None, epochs=1 if partial else None,
            resume=resume and not partial, build=build, owner=type(est).__name__,
            networks=est._networks(), header=header(est))
    est._commit(state, n_features(X, y))
    return est


def n_features(X, y=None):
    """The width of a 2-D array (or table) ``X`` fitted with targets ``y`` (scikit-learn's
    ``n_features_in_``); None for simulators and banks."""
    if not (is_array(X) or (y is not None and hasattr(X, "columns"))):
        return None
    shape = np.shape(np.asarray(X))
    return int(shape[1]) if len(shape) == 2 else None


def commit(est, state, n_features_in=None):
    """Set the fitted attributes every estimator has from ``state`` (``n_features_in``:
    the width of the arrays it was fitted on, when it was)."""
    import pandas as pd

    est.adapter_ = state.adapter
    est.approximator_ = state.model
    est.summary_network_ = state.model.summary_network
    est.role_shapes_ = state.shapes
    est.networks_ = state.networks
    est.device_ = state.device
    est.size_links_ = state.size_links
    est.history_ = pd.DataFrame(state.history, columns=HISTORY_COLUMNS)
    est.n_simulations_ = int(state.n_simulations)
    set_n_features(est, n_features_in)


def set_n_features(est, n_features_in):
    """``n_features_in_``: the width of the arrays ``est`` was fitted on, or none."""
    if n_features_in is not None:
        est.n_features_in_ = int(n_features_in)
    elif hasattr(est, "n_features_in_"):
        del est.n_features_in_   # refitted on something other than an array


def fit_state(est, names):
    """The committed fit of ``est`` as a :class:`FitState` (``names``: its variables)."""
    check_is_fitted(est, "approximator_")
    return FitState(adapter=est.adapter_, model=est.approximator_, shapes=est.role_shapes_,
                    device=est.device_, names=names, networks=est.networks_,
                    history=est.history_.to_dict("records"), n_simulations=est.n_simulations_,
                    size_links=getattr(est, "size_links_", {}))


def header(est, **extra):
    """What a checkpoint or a saved file stores besides the state: class, parameters and
    fitted extras (JSON-able)."""
    extra["adapter_param"] = "none" if est.adapter is None else "fitted-copy"
    if hasattr(est, "n_features_in_"):
        extra["n_features_in"] = int(est.n_features_in_)
    return {"owner": type(est).__name__, "params": est.get_params(deep=False), "extra": extra}


def load(cls, path, *, device, build):
    """``(estimator, extra)``: the estimator of class ``cls`` saved at ``path``, committed,
    and the fitted extras saved with it. Never runs pickled code; parameters that name a
    file, a device or a process are never taken from the file."""
    head, state, _ = persistence.load(path, device=device, build=build, owner=cls.__name__)
    check_saved_params(cls, head["params"], state.networks, path)
    params = {k: v for k, v in head["params"].items() if k not in NOT_RESTORED}
    try:
        est = cls(**params)
        est.set_params(adapter=head["adapter"], device=device, **state.networks)
        est._validate_params()
    except (TypeError, ValueError) as exc:
        raise LoadError(f"{os.fspath(path)!r} holds parameters this {cls.__name__} does "
                        f"not take: {exc}") from None
    extra = head["extra"]
    est._commit(state, extra.get("n_features_in"))
    return est, extra


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


def check_n_features(est, X):
    """scikit-learn's rule for arrays: as many features as in ``fit(X, y)``."""
    if hasattr(est, "n_features_in_") and X.ndim == 2 and X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input.")


def observations(est, X, meta, *, frame_is_dataset=True):
    """The datasets ``X`` (and ``meta``) as a dict of arrays, checked against training."""
    check_is_fitted(est, "approximator_")
    if hasattr(est, "n_features_in_") and hasattr(X, "columns") and hasattr(X, "to_numpy"):
        X = X.to_numpy()   # fitted on arrays: a table's rows are datasets, as in fit(X, y)
    if is_array(X):
        X = checked_array(X)
        check_n_features(est, X)
    data = as_observations(X, meta, frame_is_dataset=frame_is_dataset,
                           expected=getattr(est.adapter_, "input_variables_", None))
    check_size_links(data, getattr(est, "size_links_", {}))
    return data


def roles(est, data, *, need_theta, skip=(), log_det_jac=False):
    """The network inputs of ``data`` through the fitted adapter, checked; ``(roles, ldj)``.

    A missing input names the variables the simulations had in training (``skip``: the
    ones that are not needed now, such as the parameters when sampling).
    """
    if log_det_jac:
        out, ldj = est.adapter_.transform(data, log_det_jac=True)
    else:
        out, ldj = est.adapter_.transform(data), None
    try:
        check_roles(out, est.role_shapes_, given_keys=data.keys(), need_theta=need_theta)
    except MissingKeyError as exc:
        seen = getattr(est.adapter_, "input_variables_", {})
        lacking = [k for k in seen if k not in data and k not in skip]
        if not lacking:
            raise
        raise MissingKeyError(f"{exc} The data lack {lacking!r}, which the simulations "
                              "had in training (pass batch scalars such as N through "
                              "meta=).") from None
    return out, ldj


def training_tags(est, tags):
    """scikit-learn tags every estimator shares: no required target (simulators), and
    non-deterministic without a seed."""
    tags.target_tags.required = False
    tags.non_deterministic = est.random_state is None
    return tags
