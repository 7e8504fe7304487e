"""Several models trained in one run on the same simulations (JANA's joint training).

Each part is an ordinary fit state (its adapter, shapes and torch model, made by its
estimator's ``initial`` hook); :func:`joint_state` puts them side by side:

* :class:`JointModel` sums the parts' losses on one batch;
* :class:`JointPrepare` turns one raw batch of simulations into every part's role
  tensors, their keys prefixed with the part's name (``"posterior/inference_variables"``).
  The parts may differ in rows: a likelihood of single observations has one row per
  observation where a posterior has one per dataset; the sources cut both from the same
  simulations (:class:`~skabi.training.sources.MemorySource` shuffles each row count on
  its own).

:func:`split_state` gives each part its trained model back, with the joint history.
"""

import copy
import dataclasses

import numpy as np
from torch import nn

from ..bank import as_bank
from .roles import Prepare
from .state import FitState

__all__ = ["fit", "JointModel", "JointPrepare", "SharedPilots", "joint_state", "split_state",
           "SEPARATOR"]

#: Between a part's name and a role in the keys of a joint batch.
SEPARATOR = "/"


def _part(batch, name):
    head = name + SEPARATOR
    return {k[len(head):]: v for k, v in batch.items() if k.startswith(head)}


class JointModel(nn.Module):
    """Models trained together: the loss of a batch is the sum of the parts' losses.

    Parameters
    ----------
    parts : dict of str to torch.nn.Module
        Each with ``loss(batch)`` on its own role tensors.

    Notes
    -----
    The parts share no weights, so each part's gradient is that of its own loss: the
    sum trains every part as its own fit on the same simulations would, with one
    optimizer, one schedule and one validation loss (the sum of the parts').
    """

    #: no summary network of its own (the parts have theirs)
    summary_network = None
    loss_terms = ()

    def __init__(self, parts):
        super().__init__()
        self.parts = nn.ModuleDict(parts)
        #: the names of the parts whose losses count; ``None``: all (a stage that trains
        #: some parts only, such as the linear warm-up, skips the others' forward passes)
        self.active = None

    def loss(self, batch):
        return sum(part.loss(_part(batch, name)) for name, part in self.parts.items()
                   if self.active is None or name in self.active)

    def forward(self, batch):
        return self.loss(batch)


class JointPrepare:
    """A raw batch of simulations as the role tensors of every part (prefixed keys).

    Parameters
    ----------
    states : dict of str to FitState
        The parts' fitted adapters and role shapes.
    device, dtype
        Where the tensors go.
    """

    #: simulations read to size the validation batches
    probe = 64

    def __init__(self, states, device, dtype):
        self.prepares = {name: Prepare(s.adapter, s.shapes, device, dtype)
                         for name, s in states.items()}

    def __call__(self, batch):
        out = {}
        for name, prepare in self.prepares.items():
            out.update({f"{name}{SEPARATOR}{role}": value
                        for role, value in prepare(batch).items()})
        return out

    def chunk(self, bank):
        """Simulations per validation batch: as many as keep every part's tensors within
        :data:`~skabi.training.chunks.CHUNK_ELEMENTS` (sized on the first
        :attr:`probe` simulations; a likelihood of observations has N rows each)."""
        from .chunks import chunk_rows
        from .roles import n_rows

        n = min(self.probe, len(bank))
        probe = bank[np.arange(n)].to_dict()
        sizes = []
        for prepare in self.prepares.values():
            roles = prepare.adapter.transform(probe)
            rows_per_sim = n_rows(roles) / max(1, n)
            sizes.append(int(chunk_rows(roles) / max(rows_per_sim, 1e-9)))
        return max(1, min(sizes))

    def batches(self, sims):
        """``sims`` (a dict of simulations) in validation batches of bounded size
        (:meth:`chunk`)."""
        bank = as_bank(sims)
        step = self.chunk(bank)
        return [self(bank[np.arange(i, min(i + step, len(bank)))].to_dict())
                for i in range(0, len(bank), step)]


class SharedPilots:
    """A training source whose pilot batches are drawn once and given to every part.

    Each part's fresh state fits its adapter on pilot simulations; without this, a joint
    fit of two parts would simulate its pilots twice. Every other attribute is the
    wrapped source's. Each part gets its own copy, so no part sees another's changes.
    """

    def __init__(self, source):
        self._source, self._drawn = source, {}

    def _once(self, key, draw):
        if key not in self._drawn:
            self._drawn[key] = draw()
        return copy.deepcopy(self._drawn[key])

    def pilot(self, size, rng):
        return self._once(("pilot", size), lambda: self._source.pilot(size, rng))

    def extra_pilots(self, batch_size, rng):
        return self._once(("extra", batch_size),
                          lambda: self._source.extra_pilots(batch_size, rng))

    def __getattr__(self, name):
        return getattr(self._source, name)


def joint_state(states):
    """One :class:`~skabi.training.state.FitState` that trains the parts' models together.

    ``states`` are fresh states of the same settings (the same device); the joint state's
    random streams are the first part's.
    """
    first = next(iter(states.values()))
    devices = {str(s.device) for s in states.values()}
    if len(devices) > 1:
        raise ValueError(f"The parts of a joint fit are on different devices {sorted(devices)}.")
    model = JointModel({name: s.model for name, s in states.items()}).to(first.device)
    return FitState(adapter=None, model=model, shapes={}, device=first.device, names=[],
                    networks={}, rng=first.rng, torch_seed=first.torch_seed)


def split_state(trained, states):
    """Each part's state after the joint training ``trained``: its trained model, the
    joint history and simulation count."""
    return {name: s.replace(model=trained.model.parts[name], history=list(trained.history),
                            n_simulations=trained.n_simulations, rng=None, torch_seed=None)
            for name, s in states.items()}


def fit(params, X, y, specs, *, summary_mmd_weights=None):
    """One joint fit, start to end: the parts' states from one pilot, trained together.

    Parameters
    ----------
    params : dict
        The joint estimator's training parameters (``get_params(deep=False)``).
    X, y
        What ``fit`` got.
    specs : dict of str to dict
        The initial spec of each part (the keyword arguments of
        :func:`~skabi.training.fitting.initial_state`), by part name.
    summary_mmd_weights : dict of str to float, optional
        The weight of the summary MMD term of a part, by part name.

    Returns
    -------
    dict of str to FitState
        Each part's trained state (:func:`split_state`).
    """
    from . import fitting

    settings, source = fitting.settings_and_source(params, X, y)
    pilots = SharedPilots(source)     # one pilot for every part
    states = {}
    for name, spec in specs.items():   # one training: Constrain(method="select") is "map"
        spec = {k: v for k, v in spec.items() if k != "densities"}
        spec["adapter"] = fitting.adapter_choices(spec["adapter"], settings, pilots,
                                                  densities=False)[0]
        states[name] = fitting.initial_state(settings, pilots, **spec)
    for name, weight in (summary_mmd_weights or {}).items():
        states[name].model.loss_terms = fitting.loss_terms(
            dataclasses.replace(settings, summary_mmd_weight=weight), states[name].model)
    start = joint_state(states)
    dtype = next(start.model.parameters()).dtype
    trained = fitting.train(start, source, settings, settings.epochs,
                            prepare=JointPrepare(states, start.device, dtype))
    return split_state(trained, states)
