"""One fit, start to end: the initial, warm-started or resumed :class:`FitState`, then
training it on a source.

Functions over a :class:`~skabi.training.state.FitState`, no estimator: an estimator
passes its :class:`TrainingSettings`, the source of its data (``make_source``), the
``build`` of its torch model and, for ``adapter=None``, its default adapter (the engine
knows no estimator, and no default of one). Training works on a copy
of the state's history and returns a new state; the estimator commits it when the fit
succeeded, so a failed (re)fit leaves a fitted estimator as it was.
"""

import copy
import dataclasses
import itertools
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.base import clone

from .._validation import as_numpy_rng
from ..bank import as_bank
from ..inputs import array_bank, fit_input, size_links
from ..exceptions import LoadError
from . import defaults
from .loop import interruptions, make_optimizer, run_epochs, unflatten_parameters
from .model import check_device, resolve_device
from .persistence import Checkpoint, check_writable_file
from .roles import GROUP_MASK, LOCAL_MASK, MASK, Prepare, role_shapes, to_tensors
from .sources import MemorySource, make_source
from .state import FitState
from .warmup import main_epochs, selects, train_linear_once_active, warm_up


__all__ = ["TrainingSettings", "settings_and_source", "fit", "run_fit", "initial_state",
           "continued_state", "warm_state", "resumed_state", "train", "validation_batches",
           "parameter_names", "distributed"]


@dataclass(frozen=True)
class TrainingSettings:
    """The estimator parameters the engine reads (same names and meanings as the
    estimator's; :meth:`from_params` picks them from ``get_params``)."""

    epochs: int
    batches_per_epoch: int
    batch_size: int
    learning_rate: float
    lr_schedule: str
    weight_decay: float
    clip_grad_norm: Any
    validation_sims: Any
    early_stopping: bool
    patience: int
    standardize: bool
    pilot_size: int
    rounds: Any
    replay_capacity: Any
    checkpoint_path: Any
    device: Any
    random_state: Any
    verbose: Any
    summary_mmd_weight: float = 0.0
    on_nonfinite: str = "raise"
    weight_averaging: Any = None
    #: The most epochs of a coupling flow's linear warm-up (None: ``epochs``); no estimator
    #: parameter: ``epochs="auto"`` with a bank sets it (:mod:`skabi.training.defaults`).
    warmup_epochs: Any = None
    #: The names whose value was "auto" (:mod:`skabi.training.defaults` resolved them).
    auto: frozenset = frozenset()

    @classmethod
    def from_params(cls, params):
        """The settings among an estimator's ``get_params(deep=False)``."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in names})


def settings_and_source(params, X, y=None, *, bank_defaults=None):
    """The :class:`TrainingSettings` and the source of one ``fit`` call, checked before
    anything is simulated or built.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params(deep=False)``.
    X, y
        What ``fit`` was given (:func:`skabi.inputs.fit_input` says how it is read).
    bank_defaults : dict, optional
        The estimator's values of ``"auto"`` parameters for a bank (default
        ``skabi.training.defaults.BANK``).
    """
    settings = TrainingSettings.from_params(params)
    check_device(settings.device)
    if settings.checkpoint_path is not None:
        check_writable_file(settings.checkpoint_path, "checkpoint_path")
        _check_nameable_networks(params)
    drop = settings.on_nonfinite == "drop"
    kind, data = fit_input(X, y, finite=not drop)
    if drop and kind == "bank":
        data = _drop_nonfinite(data)
    elif drop and kind == "stream":  # a bank on disk: read once to find them
        from ..storage import open_bank

        data = open_bank(data).without_nonfinite()
    settings = defaults.resolve_validation(settings, kind,
                                           len(data) if kind == "bank" else None,
                                           bank=bank_defaults)
    spec = settings.validation_sims
    if isinstance(spec, tuple):
        spec = _array_validation(spec)
    if kind == "bank" and isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        data, spec = hold_out(data, spec, settings.random_state)
    elif isinstance(spec, numbers.Real) and not isinstance(spec, numbers.Integral):
        raise ValueError(f"validation_sims={spec!r} (a share of the bank) needs a bank in "
                         "memory; with a simulator pass a number of simulations, with a bank "
                         "on disk a bank of validation simulations.")
    settings = dataclasses.replace(settings, validation_sims=spec)
    settings = defaults.resolve(settings, kind, len(data) if kind == "bank" else None,
                                bank=bank_defaults)
    if settings.early_stopping and settings.validation_sims is None:
        raise ValueError("early_stopping=True needs validation_sims (a number of "
                         "simulations or a bank) to decide when to stop.")
    source = make_source(kind, data, batch_size=settings.batch_size,
                         batches_per_epoch=settings.batches_per_epoch, rounds=settings.rounds,
                         replay_capacity=settings.replay_capacity, epochs=settings.epochs)
    return settings, source


def _check_nameable_networks(params):
    """A checkpoint names each network's holder class: refuse an unregistered one before
    training rather than when the first epoch's checkpoint is written."""
    from ..networks.registry import is_holder, network_name

    for value in params.values():
        if is_holder(value):
            network_name(type(value))   # the ValueError names the fix


def _drop_nonfinite(bank):
    """The bank without its simulations that hold NaN or inf, with a warning that counts
    them (``on_nonfinite="drop"``)."""
    import warnings

    from ..inputs import finite_rows

    keep = finite_rows(bank)
    dropped = int((~keep).sum())
    if dropped == len(keep):
        raise ValueError(f"Every one of the bank's {len(keep)} simulations holds NaN or inf; "
                         "nothing is left to train on.")
    if dropped:
        warnings.warn(f"on_nonfinite='drop': {dropped} of the bank's {len(keep)} simulations "
                      "hold NaN or inf and are left out.", UserWarning, stacklevel=4)
        bank = bank[np.flatnonzero(keep)]
    return bank


def _array_validation(spec):
    """``(X_val, y_val)``: the validation bank of an estimator fitted on arrays."""
    if len(spec) != 2:
        raise ValueError(f"validation_sims as a tuple must be (X_val, y_val); got a tuple of "
                         f"{len(spec)} items.")
    return array_bank(*spec)


def hold_out(bank, spec, random_state):
    """``(training bank, validation bank)``: ``spec`` simulations of ``bank`` (a number,
    or a share in (0, 1)) held out at random, the same ones for the same integer
    ``random_state``."""
    n = len(bank)
    count = int(spec) if isinstance(spec, numbers.Integral) else int(round(float(spec) * n))
    if not 1 <= count < n:
        raise ValueError(f"validation_sims={spec!r} holds out {count} of the bank's {n} "
                         "simulations; it must leave at least one for validation and one for "
                         "training.")
    rng = np.random.default_rng([int(as_numpy_rng(random_state).integers(2**62)), 7])
    rows = rng.permutation(n)
    return bank[np.sort(rows[count:])], bank[np.sort(rows[:count])]


def fit(params, X, y=None, *, spec, fitted=None, epochs=None, resume=False, owner=None,
        header=None, bank_defaults=None):
    """One ``fit`` (or ``partial_fit``) call of an estimator, start to end: its settings
    and source (:func:`settings_and_source`), then :func:`run_fit` from a fresh state
    made by :func:`initial_state` with ``spec``. Where the networks or the adapter leave
    a choice to the fit (:func:`network_choices`, :func:`adapter_choices`), a fresh
    ``fit`` runs :func:`run_fit` once per candidate, from one seed, in two stages: first
    each adapter candidate with the first networks candidate, keeping the highest
    validation density on the user's scale (:func:`user_log_density`: their losses are on
    different scales); then the other networks candidates with the adapter kept, keeping
    the lowest validation loss. So ``a`` adapter and ``n`` networks candidates cost
    ``a + n - 1`` trainings, not ``a * n``. A Ctrl-C ends the choice among the trainings
    that ended.

    The estimator hands over data only (its parameters, the keyword arguments of
    :func:`initial_state` and what to continue), so the engine never calls back into it.

    Parameters
    ----------
    params : dict
        The estimator's parameters (``get_params(deep=False)``).
    X, y
        What ``fit`` got.
    spec : dict
        ``adapter``, ``networks``, ``build`` and, optionally, ``check``,
        ``check_adapter``, ``params``, ``default`` and ``names`` of
        :func:`initial_state`; and ``densities`` (default False): the model has log
        densities to compare, so the fit may choose among adapters
        (:func:`adapter_choices`).
    fitted, epochs, resume, owner, header
        As for :func:`run_fit`.
    bank_defaults : dict, optional
        As for :func:`settings_and_source`.

    Returns
    -------
    FitState
    """
    settings, source = settings_and_source(params, X, y, bank_defaults=bank_defaults)
    spec = dict(spec)
    densities = spec.pop("densities", False)
    given = spec["networks"]
    fresh = fitted is None and not resume and epochs is None
    choices = network_choices(given, settings, source)
    adapters = adapter_choices(spec["adapter"], settings, source, densities=densities)
    if not fresh:   # a warm start, resume or partial_fit goes on with one
        choices, adapters = choices[:1], adapters[:1]
    # the holders as given where the fit resolved or chose them (saved, restored by load)
    chose = {name: clone(holder) for name, holder in given.items()
             if holder is not None and any(c[name] is not holder for c in choices)}
    if (len(choices) > 1 or len(adapters) > 1) and not isinstance(settings.random_state,
                                                                     numbers.Integral):
        # one seed for all candidates: the same pilot, adapter and batches for each
        seed = int(as_numpy_rng(settings.random_state).integers(2**62))
        settings = dataclasses.replace(settings, random_state=seed)

    def train_each(candidates, total, before=0):
        """Each candidate (adapter, networks) trained in full: [(state, ended, candidate)]
        and whether the user stopped the choice (``before`` trained in an earlier stage)."""
        states = []
        for adapter, networks in candidates:
            one = {**spec, "networks": networks, "adapter": adapter}
            interrupted = interruptions()
            try:
                state = run_fit(settings, source, initial=lambda one=one: initial_state(
                                    settings, source, **one).replace(given_networks=chose),
                                build=spec["build"], fitted=fitted, epochs=epochs,
                                resume=resume, owner=owner, networks=networks, header=header)
            except KeyboardInterrupt:
                if not before + len(states):
                    raise
                _stopped_choosing(before + len(states), total)
                return states, True
            states.append((state, interruptions() == interrupted
                           and _completed(state.history), (adapter, networks)))
            if not states[-1][1]:   # interrupted by the user: no more candidates
                if before + len(states) < total:
                    _stopped_choosing(before + len(states), total)
                return states, True
        return states, False

    # in two stages: the adapters with the first networks (compared by the density of the
    # validation simulations on the user's scale: their losses are on other scales), then
    # the other networks with the adapter kept (compared by the validation loss)
    total = len(adapters) + len(choices) - 1
    states, stopped = train_each([(adapter, choices[0]) for adapter in adapters], total)
    done = [state for state, ended, _ in states if ended]
    if not done:   # the first training, interrupted
        return _given(states[-1][0], fitted, chose)
    state, densities = done[0], {}
    if len(done) > 1:
        validation = as_bank(settings.validation_sims)   # one bank for every candidate
        densities = {id(s): user_log_density(s, validation) for s in done}
        state = max(done, key=lambda s: densities[id(s)])
    if not stopped and len(choices) > 1:
        adapter = next(c[0] for s, _, c in states if s is state)
        more, _ = train_each([(adapter, networks) for networks in choices[1:]], total,
                             len(states))
        states += more
        state = min([state] + [s for s, ended, _ in more if ended],
                    key=lambda s: _best(s.history))
    if len(states) > 1:
        state = state.replace(candidates=[
            _candidate_row(s, _choice(c, spec["adapter"], given), densities.get(id(s)),
                           s is state) for s, _, c in states])
    return _given(state, fitted, chose)


def _choice(candidate, adapter, networks):
    """What a candidate (adapter, networks) sets that the given ``adapter`` and
    ``networks`` left to the fit (a string such as ``"auto"`` or ``"select"``), as the
    estimator's parameter paths: ``"adapter__constrain__method='reject',
    inference_network__subnet_depth=4"``."""
    pairs = [("adapter", adapter, candidate[0])] + [
        (name, networks[name], holder) for name, holder in candidate[1].items()]
    parts = []
    for prefix, given, chosen in pairs:
        if given is None or chosen is given:
            continue
        before, after = given.get_params(deep=True), chosen.get_params(deep=True)
        parts += [f"{prefix}__{key}={after[key]!r}" for key, value in before.items()
                  if isinstance(value, str) and key in after
                  and not (isinstance(after[key], str) and after[key] == value)]
    return ", ".join(parts)


def _candidate_row(state, choice, density, kept):
    """One row of :attr:`FitState.candidates` (``CANDIDATE_COLUMNS``) for a training."""
    best = _best(state.history)
    return {"choice": choice, "val_loss": best if math.isfinite(best) else None,
            "val_log_density": None if density is None else float(density),
            "epochs": len(state.history),
            "seconds": float(sum(row["seconds"] or 0.0 for row in state.history)),
            "kept": bool(kept)}


def _given(state, fitted, chose):
    """The state a fit returns: a warm start keeps what built the model it continues; a
    resume, as a fresh fit, records the holders it was given (the checkpoint's model
    matches them)."""
    return state if fitted is not None else state.replace(given_networks=chose)


def _stopped_choosing(trained, candidates):
    import warnings

    warnings.warn(
        f"Interrupted by the user while choosing among {candidates} trainings (subnet_depth="
        f"'auto', Constrain's method for a box or another choice left to the fit) after "
        f"{trained} of them: keeping the best of the trainings that ended, or the "
        "interrupted first one.", UserWarning, stacklevel=7)


def _can_choose(settings, source):
    """Whether a fit may train candidates and keep the best: a bank in memory with
    validation simulations and early stopping, in one process, without a checkpoint."""
    return (isinstance(source, MemorySource) and settings.validation_sims is not None
            and settings.early_stopping and settings.checkpoint_path is None
            and distributed()[1] == 1)


def adapter_choices(adapter, settings, source, *, densities):
    """The adapters a fit trains: the two of ``Constrain(method="select")`` (or ``"auto"``
    for a box; ``Adapter._method_candidates``) where the fit can choose (as for
    :func:`network_choices`) and the model has densities to compare (``densities``),
    else the first (``"map"``). ``[adapter]`` for an adapter without such a step or
    None (the estimator's default)."""
    if adapter is None or not hasattr(adapter, "_method_candidates"):
        return [adapter]
    candidates = adapter._method_candidates()
    return candidates if densities and _can_choose(settings, source) else candidates[:1]


def user_log_density(state, validation):
    """Mean ``log q`` of the validation simulations (a bank) on the user's scale: the
    network's density with the adapter's log-det (and, where draws are rejected, divided
    by the share inside: :func:`~skabi.training.inference.log_prob`). Comparable across
    adapters that map the same variables differently."""
    from .inference import log_prob

    roles, ldj = state.adapter.transform(as_bank(validation).to_dict(), log_det_jac=True)
    return float(np.mean(log_prob(state, roles, warn=False) + ldj))


def network_choices(networks, settings, source):
    """The networks a fit trains: a list of dicts like ``networks``, one per combination of
    their holders' :meth:`fit_candidates` (a single one unless a holder leaves a choice to
    the fit). They may choose only on a bank in memory with validation simulations and
    early stopping, in one process, without a checkpoint (as ``linear_warmup="select"``)."""
    bank = _can_choose(settings, source)
    names = list(networks)
    options = []
    for name in names:   # a network of another kind (no fit_candidates) is used as it is
        candidates = getattr(networks[name], "fit_candidates", None)
        options.append([networks[name]] if candidates is None else candidates(bank=bank))
    return [dict(zip(names, combo)) for combo in itertools.product(*options)]


def run_fit(settings, source, *, initial, build, fitted=None, epochs=None, resume=False,
            owner=None, networks=None, header=None):
    """The state one ``fit`` (or ``partial_fit``) call ends with.

    Parameters
    ----------
    initial : callable
        ``initial()`` builds a fresh state (:func:`initial_state` with the estimator's
        networks and checks).
    fitted : FitState, optional
        The committed state to continue (warm start, ``partial_fit``); a copy is trained.
    epochs : int, optional
        Epochs to train (``settings.epochs`` by default; 1 for ``partial_fit``).
    resume : bool, default=False
        Continue the checkpoint at ``settings.checkpoint_path`` up to ``settings.epochs``
        epochs in all (:func:`resumed_state`; ``build``, ``owner`` and ``networks`` are
        for it); without a checkpoint yet, start as without ``resume``. A checkpoint
        with more epochs than that is returned as it is, with a warning.
    header : dict, optional
        Written with every checkpoint (``owner``, ``params``, ``extra``).
    """
    if resume:
        state = resumed_state(settings, build=build, owner=owner, networks=networks)
        if state is not None:
            done = main_epochs(state.history)
            remaining = settings.epochs - done
            if remaining < 0:
                import warnings

                warnings.warn(
                    f"fit(..., resume=True) with epochs={settings.epochs}, but the checkpoint "
                    f"at {settings.checkpoint_path!r} already ran {done} epochs: nothing is "
                    f"trained, and the fit is the checkpoint's ({done} epochs, not "
                    f"{settings.epochs}). Raise epochs above {done} to train on.",
                    UserWarning, stacklevel=4)
            if remaining <= 0:
                return state
            return train(state, source, settings, remaining, total_epochs=settings.epochs,
                         checkpoint_header=header)
    state = warm_state(fitted, settings) if fitted is not None else initial()
    return train(state, source, settings, settings.epochs if epochs is None else epochs,
                 checkpoint_header=header)


def distributed():
    """(rank, world_size) under an initialised torch.distributed process group, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _seeds(random_state):
    rng = as_numpy_rng(random_state)
    rank, _ = distributed()
    torch_seed = int(rng.integers(2**62))
    if rank:  # every process simulates its own batches
        rng = np.random.default_rng([int(rng.integers(2**62)), rank])
    return rng, torch_seed


def parameter_names(adapter, dim):
    """The user's variables behind ``inference_variables``, in order."""
    return list(adapter.inverse_transform({"inference_variables": np.zeros((1, dim))}))


def _flat(roles, role):
    """A role's values as rows of its last axis; padding of a set (or of the groups of a
    multilevel batch) left out."""
    arr = roles[role]
    keep = None
    if role == "summary_variables":
        keep = roles.get(MASK)
    elif role.startswith("local_"):
        keep = roles.get(GROUP_MASK)
        if role == "local_summary_variables" and LOCAL_MASK in roles:
            inner = roles[LOCAL_MASK]
            keep = inner if keep is None else inner & keep[..., None]
        elif role == "local_summary_variables" and keep is not None:
            keep = np.broadcast_to(keep[..., None], arr.shape[:3])
    if keep is not None:
        return arr[keep]
    return arr.reshape(-1, arr.shape[-1])


def initial_state(settings, source, *, adapter, networks, build, check=None,
                  check_adapter=None, params=None, default=None, names=parameter_names):
    """A fresh state: pilot batches, the adapter fitted on them, the model built and its
    standardization learned.

    Parameters
    ----------
    settings : TrainingSettings
    source
        From :func:`~skabi.training.sources.make_source`.
    adapter : Adapter or None
        The estimator's (unfitted) adapter parameter; cloned before fitting. None builds
        ``default(pilot, has_summary)`` (the estimator's, from
        :mod:`skabi.adapters.defaults`); without a ``default`` it is refused.
    networks : dict
        Hyperparameter holders by name (cloned here); ``build(networks, shapes, params)``
        makes the torch model of them.
    check : callable, optional
        ``check(networks, shapes, roles)`` raises before anything is built when the
        adapter's output does not suit the networks.
    check_adapter : callable, optional
        ``check_adapter(adapter)`` raises, before anything is built, when the fitted
        adapter does not suit the model (:func:`~skabi.training.model.check_continuous`).
    params : dict, optional
        The estimator's parameters, for a ``build`` whose model depends on them (the
        estimands of a point estimator); :func:`~skabi.training.persistence.load` passes
        the saved ones.
    build : callable
        ``build(networks, shapes, params)``: the estimator's torch model.
    default : callable, optional
        The adapter used without one (None: an adapter is required).
    names : callable or list of str
        The user's variables behind ``inference_variables``, or ``names(adapter, dim)``
        that gives them (:func:`parameter_names`).
    """
    rng, torch_seed = _seeds(settings.random_state)
    pilot = source.pilot(settings.pilot_size, rng)
    has_summary = networks.get("summary_network") is not None
    if adapter is None and default is None:
        raise ValueError("adapter=None: this estimator has no default adapter; pass one.")
    adapter = clone(adapter) if adapter is not None else default(pilot, has_summary)
    adapter.fit(pilot)
    roles = adapter.transform(pilot)
    shapes = role_shapes(roles)
    if check is not None:
        check(networks, shapes, roles)
    if check_adapter is not None:
        check_adapter(adapter)
    device = resolve_device(settings.device)
    networks = {k: None if v is None else clone(v) for k, v in networks.items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed)
        model = build(networks, shapes, params)
    # Several batches, so that batch-constant variables (N) vary in the pilot.
    extra = source.extra_pilots(settings.batch_size, rng)
    if settings.standardize:
        every = [roles, *(adapter.transform(b) for b in extra)]
        parts = {role: np.concatenate([_flat(r, role) for r in every]) for role in shapes}
        model.set_standardization(to_tensors(parts, "cpu", torch.float64))
    return FitState(adapter=adapter, model=model.to(device), shapes=shapes, device=device,
                    names=(names(adapter, shapes["inference_variables"]) if callable(names)
                           else list(names)), networks=networks,
                    size_links=size_links([pilot, *extra]), rng=rng, torch_seed=torch_seed)


def continued_state(fitted, settings, optimizer_state=None):
    """The state to go on training ``fitted`` (a committed or a checkpointed state).

    The random streams continue from the number of epochs done, so that a resumed fit
    does not repeat the batches of the first one.
    """
    rng, torch_seed = _seeds(settings.random_state)
    done = len(fitted.history)
    return fitted.replace(rng=np.random.default_rng([int(rng.integers(2**62)), done]),
                          torch_seed=torch_seed + done, optimizer_state=optimizer_state)


def warm_state(fitted, settings):
    """:func:`continued_state` on a copy of the model, so that a failed fit changes nothing."""
    return continued_state(fitted.replace(model=copy.deepcopy(fitted.model)), settings)


def validation_batches(settings, source, state, prepare):
    """Fixed validation batches (tensors) from ``settings.validation_sims``, or None
    (``prepare``: the :class:`~skabi.training.roles.Prepare` of the training batches)."""
    spec = settings.validation_sims
    if spec is None:
        return None
    if isinstance(spec, numbers.Integral):
        if not source.online:
            raise ValueError("validation_sims as a number needs a simulator or a bank in "
                             "memory; with a bank on disk pass a bank of validation "
                             "simulations.")
        # drawn in training-sized batches, so that meta variables (N) vary as in training
        size = settings.batch_size
        banks = [source.simulator.sample(min(size, int(spec) - i), random_state=state.rng)
                 for i in range(0, int(spec), size)]
    else:
        banks = [as_bank(spec).to_dict()]
    return [batch for sims in banks for batch in prepare.batches(sims)]


def loss_terms(settings, model):
    """The extra loss terms the settings ask for (:mod:`skabi.training.penalties`)."""
    weight = float(getattr(settings, "summary_mmd_weight", 0.0) or 0.0)
    if weight <= 0:
        return ()
    if model.summary_network is None:
        raise ValueError("summary_mmd_weight > 0 shapes the summary space, but there is no "
                         "summary network; set summary_network or summary_mmd_weight=0.")
    from .penalties import SummaryMMD

    return (SummaryMMD(weight),)


def train(state, source, settings, epochs, *, total_epochs=None, checkpoint_header=None,
          prepare=None):
    """Train ``state.model`` for ``epochs`` epochs on ``source``; return the new state.

    Parameters
    ----------
    state : FitState
        With ``rng`` and ``torch_seed`` set (:func:`initial_state`,
        :func:`continued_state`); its model is trained in place.
    total_epochs : int, optional
        Epochs of the whole schedule (resume: the learning rate continues its decay).
    checkpoint_header : dict, optional
        ``owner``, ``params`` and ``extra`` of the estimator, written with every checkpoint
        when ``settings.checkpoint_path`` is set.
    prepare : callable, optional
        What turns a raw batch into the model's tensors, with ``batches(sims)`` for the
        validation simulations (default: :class:`~skabi.training.roles.Prepare` of the
        state's adapter; :class:`~skabi.training.joint.JointPrepare` for a joint fit).
    """
    model, device = state.model, state.device
    model.loss_terms = loss_terms(settings, model)
    dtype = next(model.parameters()).dtype
    if prepare is None:
        prepare = Prepare(state.adapter, state.shapes, device, dtype)
    source.start(prepare, state.rng)
    validation = validation_batches(settings, source, state, prepare)
    total = (total_epochs or epochs) * source.steps_per_epoch
    rank, world = distributed()
    select = (world == 1 and settings.checkpoint_path is None and bool(validation)
              and selects(state, source, settings))
    start = copy.deepcopy(model.state_dict()) if select else None
    # before the optimizer below makes the parameters views of one buffer
    warm_rows = warm_up(state, source, settings, validation,
                        min(epochs, settings.warmup_epochs or epochs))
    opt, sched = _optimizer(model, settings, total)
    if state.optimizer_state is not None:
        try:
            opt.load_state_dict(state.optimizer_state["optimizer"])
        except (ValueError, KeyError) as exc:
            raise LoadError(
                f"The optimizer state in checkpoint {settings.checkpoint_path!r} does not fit "
                f"this model's optimizer ({exc}); it was written by another skabi "
                "version or another network. Fit with resume=False to start over."
            ) from None
        sched.load_state_dict(state.optimizer_state["scheduler"])
        follow_total(opt, sched, total)
    train_module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_module = DistributedDataParallel(model)
    on_epoch_end = None
    if settings.checkpoint_path is not None and rank == 0:
        header = dict(checkpoint_header or {})
        if "params" in header:   # the values a resume must match, "auto" resolved
            header["params"] = {**header["params"],
                                **{k: getattr(settings, k) for k in RESUME_SETTINGS}}
        on_epoch_end = Checkpoint(settings.checkpoint_path,
                                  state.replace(history=state.history + warm_rows), header,
                                  opt, sched, source, world)
    rows = _train_proper(state, source, settings, validation, epochs, opt, sched,
                         verbose=bool(settings.verbose) and rank == 0,
                         train_module=train_module, on_epoch_end=on_epoch_end,
                         baseline=bool(warm_rows))
    if start is not None and warm_rows and _completed(rows):
        warm_rows, rows = _select(state, source, settings, validation, epochs, total, start,
                                  warm_rows, rows)
    return state.advanced(warm_rows + rows, source.simulations(rows) * world)


def _optimizer(model, settings, total_steps):
    """The optimizer and learning-rate schedule of a training proper."""
    return make_optimizer(model, learning_rate=settings.learning_rate,
                          weight_decay=settings.weight_decay,
                          lr_schedule=settings.lr_schedule, total_steps=total_steps)


def _train_proper(state, source, settings, validation, epochs, opt, sched, **options):
    """The epochs of the training proper (after any warm-up): their history rows."""
    model = state.model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(state.torch_seed + 1)
        try:
            rows, _ = run_epochs(
                model, opt, sched, source, epochs=epochs,
                clip_grad_norm=settings.clip_grad_norm, validation=validation,
                early_stopping=settings.early_stopping, patience=settings.patience,
                weight_averaging=settings.weight_averaging,
                first_epoch=main_epochs(state.history), **options)
        finally:
            unflatten_parameters(model)  # make_optimizer made them views of one buffer
    return rows


def _completed(rows):
    """Whether a training ended by itself (an interrupted epoch has no validation loss)."""
    return bool(rows) and math.isfinite(rows[-1]["val_loss"])


def _best(rows):
    return min((row["val_loss"] for row in rows if math.isfinite(row["val_loss"])),
               default=math.inf)


def _select(state, source, settings, validation, epochs, total, start, warm_rows, rows):
    """``linear_warmup="select"``: train the flow again from ``start`` (the weights before
    the warm-up: the identity start), with the same settings and validation simulations,
    and keep whichever training reached the lower validation loss (the warm-up's epochs
    count as candidates of the first). Returns the kept training's warm-up and main rows
    (no warm-up rows for the second); the model holds its weights."""
    model = state.model
    kept = copy.deepcopy(model.state_dict())
    model.load_state_dict(start)          # the linear layer off again
    train_linear_once_active(model)
    source.restart_schedule()
    opt, sched = _optimizer(model, settings, total)
    second = _train_proper(state, source, settings, validation, epochs, opt, sched,
                           verbose=bool(settings.verbose))
    if _completed(second) and _best(second) < _best(warm_rows + rows):
        return [], second
    model.load_state_dict(kept)
    train_linear_once_active(model)
    return warm_rows, rows


#: Settings a resumed fit must share with its checkpoint (the optimizer's and the batches').
RESUME_SETTINGS = ("learning_rate", "lr_schedule", "weight_decay", "clip_grad_norm",
                   "batch_size", "batches_per_epoch", "standardize", "weight_averaging")


def follow_total(optimizer, scheduler, total_steps):
    """Make a loaded cosine schedule follow ``total_steps`` (a resume with more epochs):
    the learning rate is the cosine of the new total at the step reached, and decays from
    there, instead of climbing back up past the old total."""
    if not isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        return
    total_steps = max(int(total_steps), 1)
    if scheduler.T_max == total_steps:
        return
    scheduler.T_max = total_steps
    step = min(scheduler.last_epoch, total_steps)
    for group, base in zip(optimizer.param_groups, scheduler.base_lrs):
        group["lr"] = scheduler.eta_min + (base - scheduler.eta_min) * (
            1 + math.cos(math.pi * step / total_steps)) / 2
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def _differences(saved, current):
    return [f"{k} (checkpoint {saved.get(k)!r}, now {current.get(k)!r})"
            for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]


def resumed_state(settings, *, build, owner=None, networks=None):
    """The state of the checkpoint at ``settings.checkpoint_path`` ready to continue, or
    None when there is none yet.

    Raises ``ValueError`` naming the parameters when the networks (``networks``, the
    holders the fit would build) or the :data:`RESUME_SETTINGS` differ from the
    checkpoint's: a resume continues the run that wrote it, it never ignores a change.
    Warns when the checkpoint holds no optimizer state (the optimizer starts afresh).
    """
    import os
    import warnings

    from .persistence import load

    if settings.checkpoint_path is None:
        raise ValueError("fit(..., resume=True) needs checkpoint_path.")
    if not os.path.exists(settings.checkpoint_path):
        return None
    header, saved, training = load(settings.checkpoint_path, device=settings.device,
                                   build=build, owner=owner)
    changed = []
    for name, holder in (networks or {}).items():
        before = saved.networks.get(name)
        if (before is None) != (holder is None) or (
                holder is not None and (type(before) is not type(holder))):
            changed.append(f"{name} (checkpoint {before!r}, now {holder!r})")
        elif holder is not None:
            changed += [f"{name}__{d}" for d in _differences(before.get_params(deep=False),
                                                            holder.get_params(deep=False))]
    saved_params = {k: header["params"].get(k) for k in RESUME_SETTINGS}
    now = {k: "auto" if k in settings.auto and saved_params.get(k) == "auto"
           else getattr(settings, k) for k in RESUME_SETTINGS}   # a file saved with "auto"
    changed += _differences(saved_params, now)
    if changed:
        raise ValueError(
            f"fit(..., resume=True) continues the run saved at {settings.checkpoint_path!r}, "
            f"but these parameters differ from it: {'; '.join(changed)}. Set them back, or "
            "fit with resume=False (another checkpoint_path) to start a new run.")
    if training is None:
        warnings.warn(f"The checkpoint {settings.checkpoint_path!r} holds no optimizer state; "
                      "the resumed fit starts a fresh optimizer.", UserWarning, stacklevel=3)
    return continued_state(saved, settings, training)
