"""What a fit produces and what training continues from: :class:`FitState`.

One record, built at the start of a fit (fresh, warm-started or resumed), handed to the
training loop, and committed by the estimator when the fit succeeds; persistence saves and
loads the same record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FitState", "HISTORY_COLUMNS", "CANDIDATE_COLUMNS"]

#: One row of the training history per epoch.
HISTORY_COLUMNS = ["epoch", "loss", "val_loss", "lr", "seconds"]

#: One row per training of a fit that chose among candidates: what the candidate set
#: (``choice``), its best validation loss (on its own scale), the mean ``log q`` of the
#: validation simulations on the user's scale where candidates were compared by it (else
#: None), its epochs and seconds, and whether it was kept.
CANDIDATE_COLUMNS = ["choice", "val_loss", "val_log_density", "epochs", "seconds", "kept"]


@dataclass
class FitState:
    """The fitted adapter and torch model with everything needed to use or continue them.

    Attributes
    ----------
    adapter : Adapter
        Fitted on the pilot batch.
    model : torch.nn.Module
        Exposes ``loss(batch)`` on a dict of role tensors (and is called as ``model(batch)``).
    shapes : dict of str to int
        Last-axis size of each role the model was built for.
    device : torch.device
    names : list of str
        The user's variables behind ``inference_variables``.
    networks : dict
        The hyperparameter holders that built the model (``inference_network``,
        ``summary_network``), fixed at fit time.
    given_networks : dict
        The estimator's holders as given, by name, where the fit chose what they left to
        it (``CouplingFlow(subnet_depth="auto")`` on a bank): a loaded estimator's
        parameters are these, its ``networks_`` the ones that were built.
    history : list of dict
        One row per epoch (``HISTORY_COLUMNS``).
    candidates : list of dict
        The trainings a fresh fit compared where it had a choice (``subnet_depth="auto"``,
        ``Constrain(method="select")``), one row each (``CANDIDATE_COLUMNS``); empty
        where it trained one. A warm start keeps the record of the fit it continues.
    n_simulations : int
        Simulations used for training (pilot excluded).
    size_links : dict of str to list
        ``{meta variable: [[variable, axis], ...]}``: axes whose size equalled the meta
        variable in every pilot batch (``N`` and the observations of ``x``); checked when
        sampling.
    optimizer_state : dict or None
        Optimizer and scheduler state dicts (resume from a checkpoint).
    rng : numpy.random.Generator or None
        Simulation and shuffling stream of the training to come.
    torch_seed : int or None
        Seed of torch's stream for the training to come.

    Examples
    --------
    A fitted estimator's state, and a copy with more history (the model is shared):

    >>> from skabi import AmortizedPosterior, make_simulator
    >>> from skabi.networks import CouplingFlow
    >>> simulator = make_simulator(lambda rng: dict(theta=rng.normal(), x=rng.normal(size=3)))
    >>> est = AmortizedPosterior(inference_network=CouplingFlow(depth=1), epochs=1,
    ...                          batches_per_epoch=2, pilot_size=16, random_state=0)
    >>> from skabi.adapters import make_adapter, Rename
    >>> est.set_params(adapter=make_adapter(Rename("theta", "inference_variables"),
    ...                                     Rename("x", "inference_conditions")))
    AmortizedPosterior(...)
    >>> state = est.fit(simulator)._fit_state()
    >>> state.shapes, state.names, len(state.history)
    ({'inference_variables': 1, 'inference_conditions': 3}, ['theta'], 1)
    >>> later = state.replace(history=state.history * 2)
    >>> len(later.history), later.model is state.model
    (2, True)
    """

    adapter: Any
    model: Any
    shapes: dict
    device: Any
    names: list
    networks: dict
    history: list = field(default_factory=list)
    n_simulations: int = 0
    size_links: dict = field(default_factory=dict)
    optimizer_state: dict | None = None
    rng: Any = None
    torch_seed: int | None = None
    given_networks: dict = field(default_factory=dict)
    candidates: list = field(default_factory=list)

    def replace(self, **changes):
        """A copy with ``changes`` (the model and adapter are shared, not copied)."""
        return dataclasses.replace(self, **changes)

    def advanced(self, rows, simulations):
        """The state after training epochs ``rows`` on ``simulations`` more simulations
        (the random streams and optimizer state are spent: a new fit sets them again)."""
        return self.replace(history=self.history + list(rows),
                            n_simulations=self.n_simulations + int(simulations),
                            optimizer_state=None, rng=None, torch_seed=None)
