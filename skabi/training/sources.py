"""Where training batches come from: the four training regimes of the tutorials.

* :class:`OnlineSource` -- fresh simulations every step, optionally through a replay
  buffer that mixes fresh and stored simulations;
* :class:`RoundSource` -- round-based: a new fixed set of simulations each round, reused
  for several epochs;
* :class:`MemorySource` -- offline on a bank in memory (:class:`~skabi.bank.SimulationBank`);
* :class:`StreamSource` -- offline on a bank on disk, read batch by batch
  (:class:`~skabi.storage.BankReader`).

Each source gives a pilot batch (raw simulations, to fit the adapter); once started with
a ``prepare`` callable (:class:`~skabi.training.roles.Prepare`: adapter transform and
tensors) and a random stream, ``epoch(i)`` yields the prepared batches (dicts of tensors)
of epoch ``i``. :func:`make_source` picks the source for what ``fit`` was given.
"""

import math

import numpy as np
import torch

__all__ = ["OnlineSource", "RoundSource", "MemorySource", "StreamSource", "make_source"]


EXTRA_PILOT_BATCHES = 7


class _Source:
    """What every source shares: ``start`` binds the preparation and the random stream."""

    prepare = rng = None

    def start(self, prepare, rng):
        """Bind the batch preparation and the random stream for the epochs to come."""
        self.prepare, self.rng = prepare, rng
        return self

    def extra_pilots(self, batch_size, rng):
        return []

    def restart_schedule(self):
        """The training proper starts after a warm-up: a source whose batches follow a
        schedule over the epochs restarts it (the warm-up's epochs do not count)."""

    def simulations(self, rows):
        """Simulations used by the epochs ``rows`` of training (pilots excluded); an
        interrupted epoch counts the steps it ran (``row["steps"]``)."""
        return sum(min(self.sims_per_epoch, row.get("steps", self.steps_per_epoch)
                       * self.batch_size) for row in rows)


class _SimulatorSource(_Source):
    """What the two simulator-fed regimes share: the simulator, batch sizes and pilots."""

    online = True

    def __init__(self, simulator, *, batch_size, batches_per_epoch):
        self.simulator = simulator
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch

    def pilot(self, size, rng):
        return self.simulator.sample(size, random_state=rng)

    def extra_pilots(self, batch_size, rng):
        """More pilot batches for the standardization: meta variables (N) differ between them."""
        return [self.simulator.sample(batch_size, random_state=rng)
                for _ in range(EXTRA_PILOT_BATCHES)]


class OnlineSource(_SimulatorSource):
    """Fresh simulations each step; with ``replay_capacity``, an experience replay buffer.

    With a buffer, each step simulates ``batch_size`` fresh simulations, stores them (the
    oldest are dropped beyond ``replay_capacity``) and trains on ``batch_size`` rows drawn
    uniformly from the stored simulations of the same shape (same ``N``), fresh ones
    included.
    """

    def __init__(self, simulator, *, batch_size, batches_per_epoch, replay_capacity=None):
        super().__init__(simulator, batch_size=batch_size, batches_per_epoch=batches_per_epoch)
        self.replay_capacity = replay_capacity
        self._buffers = {}

    @property
    def sims_per_epoch(self):
        return self.batch_size * self.batches_per_epoch

    @property
    def steps_per_epoch(self):
        return self.batches_per_epoch

    def epoch(self, epoch):
        for _ in range(self.batches_per_epoch):
            batch = self.prepare(self.simulator.sample(self.batch_size, random_state=self.rng))
            yield self._replay(batch, self.rng) if self.replay_capacity else batch

    def _replay(self, batch, rng):
        key = tuple((k, tuple(v.shape[1:])) for k, v in sorted(batch.items()))
        stored = self._buffers.get(key)
        stored = batch if stored is None else {
            k: torch.cat([stored[k], v])[-self.replay_capacity:] for k, v in batch.items()}
        self._buffers[key] = stored
        n = next(iter(stored.values())).shape[0]
        idx = torch.as_tensor(rng.integers(0, n, size=self.batch_size),
                              device=next(iter(stored.values())).device)
        return {k: v[idx] for k, v in stored.items()}


class RoundSource(_SimulatorSource):
    """Round-based training: ``rounds`` rounds, each with new simulations.

    Each round simulates ``batches_per_epoch`` batches once and trains on them, in a new
    random order each epoch, for its share of the epochs (``epochs / rounds``, spread
    evenly; with fewer epochs than rounds, one round per epoch).
    """

    def __init__(self, simulator, *, batch_size, batches_per_epoch, rounds, epochs):
        super().__init__(simulator, batch_size=batch_size, batches_per_epoch=batches_per_epoch)
        self.rounds = rounds
        self.epochs = epochs
        self._epochs_seen = 0
        self._round = None
        self._batches = []
        self.n_simulated = 0

    def simulations(self, rows):
        return self.n_simulated   # counted per round, whatever the epochs

    @property
    def steps_per_epoch(self):
        return self.batches_per_epoch

    def restart_schedule(self):
        # The current round's simulations stay: a warm-up within round 0 costs no extra
        # round; one that ran into later rounds has simulated those on top of ``rounds``.
        self._epochs_seen = 0

    def epoch(self, epoch):
        prepare, rng = self.prepare, self.rng
        # epochs spread evenly over the rounds: round r takes epochs [r E / R, (r + 1) E / R)
        this_round = self._epochs_seen * self.rounds // max(self.epochs, self.rounds)
        self._epochs_seen += 1
        if this_round != self._round:
            self._round = this_round
            self._batches = [prepare(self.simulator.sample(self.batch_size, random_state=rng))
                             for _ in range(self.batches_per_epoch)]
            self.n_simulated += self.batch_size * self.batches_per_epoch
        for i in rng.permutation(len(self._batches)):
            yield self._batches[i]


class MemorySource(_Source):
    """Offline training on a bank in memory: one shuffled pass per epoch.

    The bank is transformed by the adapter once and kept as tensors.
    """

    online = False

    def __init__(self, bank, *, batch_size):
        self.bank = bank
        self.batch_size = batch_size
        self._data = None

    def start(self, prepare, rng):
        """Bind them, and forget the bank prepared by an earlier ``prepare``: each training
        of a fit that trains several candidates has its own adapter."""
        self._data = None
        return super().start(prepare, rng)

    @property
    def sims_per_epoch(self):
        return len(self.bank)

    def pilot(self, size, rng):
        n = len(self.bank)
        idx = np.sort(rng.choice(n, min(size, n), replace=False))   # a random, not a first, slice
        return self.bank[idx].to_dict()

    @property
    def steps_per_epoch(self):
        return math.ceil(len(self.bank) / self.batch_size)

    def epoch(self, epoch):
        """The shuffled batches of one pass over the bank.

        Tensors with one row per simulation are cut into batches of ``batch_size``
        simulations. Tensors with another number of rows (one per observation, after
        :class:`~skabi.adapters.AsObservations`) are shuffled on their own rows and cut
        into as many batches, so that every row is seen once per epoch.
        """
        if self._data is None:
            self._data = self.prepare(self.bank.to_dict())
        n = len(self.bank)
        steps = self.steps_per_epoch
        groups = {}
        for key, value in self._data.items():
            groups.setdefault(int(value.shape[0]), []).append(key)
        device = next(iter(self._data.values())).device
        order = torch.as_tensor(self.rng.permutation(n), device=device)
        cuts = {n: [(i, i + self.batch_size) for i in range(0, n, self.batch_size)]}
        orders = {n: order}
        for size in groups:
            if size != n:
                orders[size] = torch.as_tensor(self.rng.permutation(size), device=device)
                edges = np.linspace(0, size, steps + 1).round().astype(int)
                cuts[size] = list(zip(edges[:-1], edges[1:]))
        for step in range(steps):
            batch = {}
            for size, keys in groups.items():
                start, stop = cuts[size][step]
                if stop == start and size:   # fewer rows than steps: reuse one, not none
                    start, stop = start % size, start % size + 1
                idx = orders[size][start:stop]
                batch.update({k: self._data[k][idx] for k in keys})
            yield batch


class StreamSource(_Source):
    """Offline training on a bank read batch by batch (from disk), never loaded whole."""

    online = False

    def __init__(self, reader, *, batch_size):
        self.reader = reader
        self.batch_size = batch_size

    @property
    def sims_per_epoch(self):
        return self.reader.n_simulations

    @property
    def steps_per_epoch(self):
        return math.ceil(self.reader.n_simulations / self.batch_size)

    def pilot(self, size, rng):
        return self.reader.pilot(size, rng)

    def epoch(self, epoch):
        for batch in self.reader.batches(self.batch_size, self.rng):
            yield self.prepare(batch)


def make_source(kind, data, *, batch_size, batches_per_epoch=None, rounds=None,
                replay_capacity=None, epochs=None):
    """The source for what ``fit`` was given: ``kind`` as sorted by
    :func:`skabi.inputs.fit_input` (``"simulator"``, ``"stream"`` or ``"bank"``)."""
    if kind == "simulator":
        if rounds is not None and replay_capacity is not None:
            raise ValueError("rounds and replay_capacity are two regimes; set one of them.")
        if rounds is not None:
            return RoundSource(data, batch_size=batch_size, batches_per_epoch=batches_per_epoch,
                               rounds=rounds, epochs=epochs)
        return OnlineSource(data, batch_size=batch_size, batches_per_epoch=batches_per_epoch,
                            replay_capacity=replay_capacity)
    if kind == "stream":
        from ..storage import open_bank

        return StreamSource(open_bank(data), batch_size=batch_size)
    if len(data) == 0:
        raise ValueError("The bank holds 0 simulations; training needs at least one.")
    return MemorySource(data, batch_size=batch_size)
