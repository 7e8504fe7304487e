"""How AmortizedPosterior trains: sources, initial/warm/resumed state, checkpoints, DDP.

A mixin of :class:`~skabi.estimator.AmortizedPosterior`, kept apart so that the
estimator module holds the public contract and this one the mechanics. Training works
on a local ``state`` dict and commits fitted attributes only at the end, so a failed
(re)fit leaves a fitted estimator as it was.
"""

import copy
import math
import numbers
import os

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils.validation import check_array

from ._approximator import build_approximator, resolve_device
from ._observations import default_adapter, parameter_names
from ._roles import check_roles, role_shapes, to_tensors
from ._sources import MemorySource, OnlineSource, RoundSource, StreamSource
from ._training import make_optimizer, run_epochs, unflatten_parameters
from ._validation import as_numpy_rng
from .bank import SimulationBank, as_bank
from .exceptions import LoadError, ShapeError

__all__ = ["TrainingMixin", "is_simulator", "array_bank"]

HISTORY_COLUMNS = ["epoch", "loss", "val_loss", "lr", "seconds"]


def is_simulator(obj):
    """Anything with ``sample(batch_size, random_state=...)`` that is not a bank of data."""
    import pandas as pd

    if isinstance(obj, (SimulationBank, dict, pd.DataFrame, np.ndarray)) or _is_stream(obj):
        return False
    return callable(getattr(obj, "sample", None))


def _is_stream(obj):
    if isinstance(obj, (str, os.PathLike)):
        return True
    import xarray as xr

    return isinstance(obj, (xr.Dataset, xr.DataTree))


def array_bank(X, y):
    """``fit(X, y)`` with arrays: a bank of data ``"x"`` and parameters ``"theta"``."""
    if y is None:
        raise ValueError("fit(X) with an array X requires y to be passed, but the target y is "
                         "None; pass the parameters as y, or a dict/bank of simulations as X.")
    # scikit-learn's own checks: 2+ dims, at least one simulation and feature, finite.
    X = check_array(X, allow_nd=True, dtype=None, input_name="X")
    y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
    if y.shape[0] != X.shape[0]:
        raise ShapeError(f"X and y need the same number of simulations; got X {X.shape}, "
                         f"y {y.shape}.")
    return as_bank({"x": X, "theta": y})


def _distributed():
    """(rank, world_size) under an initialised torch.distributed process group, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class TrainingMixin:
    """Training mechanics of AmortizedPosterior (private)."""

    def _source(self, X, y):
        if y is not None or isinstance(X, np.ndarray):
            X = array_bank(X, y)
        if self.early_stopping and self.validation_sims is None:
            raise ValueError("early_stopping=True needs validation_sims (a number of "
                             "simulations or a bank) to decide when to stop.")
        if is_simulator(X):
            if self.rounds is not None and self.replay_capacity is not None:
                raise ValueError("rounds and replay_capacity are two regimes; set one of them.")
            if self.rounds is not None:
                return RoundSource(X, batch_size=self.batch_size,
                                   batches_per_epoch=self.batches_per_epoch, rounds=self.rounds,
                                   epochs=self.epochs)
            return OnlineSource(X, batch_size=self.batch_size,
                                batches_per_epoch=self.batches_per_epoch,
                                replay_capacity=self.replay_capacity)
        if _is_stream(X):
            from .storage import open_bank

            return StreamSource(open_bank(X), batch_size=self.batch_size)
        bank = as_bank(X)
        if len(bank) == 0:
            raise ValueError("The bank holds 0 simulations; training needs at least one.")
        return MemorySource(bank, batch_size=self.batch_size)

    def _rngs(self):
        rng = as_numpy_rng(self.random_state)
        rank, _ = _distributed()
        torch_seed = int(rng.integers(2**62))
        if rank:  # every process simulates its own batches
            rng = np.random.default_rng([int(rng.integers(2**62)), rank])
        return rng, torch_seed

    def _initial_state(self, source):
        rng, torch_seed = self._rngs()
        pilot = source.pilot(self.pilot_size, rng)
        adapter = clone(self.adapter) if self.adapter is not None else default_adapter(
            pilot, self.summary_network is not None)
        adapter.fit(pilot)
        roles = adapter.transform(pilot)
        shapes = role_shapes(roles)
        self._check_networks(shapes, roles)
        device = resolve_device(self.device)
        networks = {"inference_network": clone(self._inference_holder()),
                    "summary_network": None if self.summary_network is None
                    else clone(self.summary_network)}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            model = build_approximator(networks["inference_network"],
                                       networks["summary_network"], shapes)
        if self.standardize:
            # Several batches, so that batch-constant conditions (sqrt N) vary in the pilot.
            extra = [adapter.transform(b) for b in source.extra_pilots(self.batch_size, rng)]
            parts = {role: np.concatenate([r[role].reshape(-1, r[role].shape[-1])
                                           for r in [roles, *extra]])
                     for role in shapes}
            t = to_tensors(parts, "cpu", torch.float64)
            model.set_standardization(t.get("inference_variables"), t.get("inference_conditions"),
                                      t.get("summary_variables"))
        model.to(device)
        names = parameter_names(adapter, shapes["inference_variables"])
        return dict(adapter=adapter, model=model, shapes=shapes, device=device, rng=rng,
                    torch_seed=torch_seed, names=names, rows=[], n_simulations=0,
                    optimizer_state=None, networks=networks)

    def _inference_holder(self):
        if self.inference_network is not None:
            return self.inference_network
        from .networks import CouplingFlow

        return CouplingFlow()

    def _continued_state(self, fitted, model, optimizer_state):
        """State to go on training ``fitted`` (this estimator or a loaded checkpoint)."""
        rng, torch_seed = self._rngs()
        done = len(fitted.history_)
        return dict(adapter=fitted.adapter_, model=model, shapes=fitted.role_shapes_,
                    device=fitted.device_,
                    rng=np.random.default_rng([int(rng.integers(2**62)), done]),
                    torch_seed=torch_seed + done, names=fitted.parameter_names_,
                    rows=fitted.history_.to_dict("records"),
                    n_simulations=fitted.n_simulations_, optimizer_state=optimizer_state,
                    networks=fitted.networks_)

    def _warm_state(self):
        # a copy of the model, so that a failed warm-start fit leaves this one as it was
        return self._continued_state(self, copy.deepcopy(self.approximator_), None)

    def _resume_state(self):
        """The state of the last checkpoint, or None when there is none yet."""
        from . import _persistence

        if self.checkpoint_path is None:
            raise ValueError("fit(..., resume=True) needs checkpoint_path.")
        if not os.path.exists(self.checkpoint_path):
            return None
        saved, extra = _persistence.load(type(self), self.checkpoint_path, device=self.device,
                                         with_training_state=True)
        return self._continued_state(saved, saved.approximator_, extra)

    def _check_networks(self, shapes, roles):
        if "inference_variables" not in shapes:
            raise ShapeError(
                "The adapter produced no 'inference_variables' from the simulations (it "
                f"produced {sorted(roles)!r}); concatenate or rename the parameters into it."
            )
        has_summary = "summary_variables" in shapes
        if has_summary and self.summary_network is None:
            raise ValueError("The adapter produces 'summary_variables' but summary_network is "
                             "None; pass a summary network such as DeepSet().")
        if self.summary_network is not None and not has_summary:
            raise ValueError("summary_network is set but the adapter produces no "
                             "'summary_variables' from the simulations.")

    def _train(self, state, source, epochs, *, total_epochs=None):
        adapter, model, device = state["adapter"], state["model"], state["device"]
        rng, shapes = state["rng"], state["shapes"]
        dtype = next(model.parameters()).dtype
        validation = self._validation_batches(source, adapter, shapes, rng, device, dtype)

        def prepare(batch):
            roles = adapter.transform(batch)
            if not source.online:
                check_roles(roles, shapes, given_keys=batch.keys(), need_theta=True)
            return to_tensors(roles, device, dtype)

        if isinstance(source, (MemorySource, StreamSource)):
            steps = math.ceil(source.sims_per_epoch / self.batch_size)
        else:
            steps = self.batches_per_epoch
        total = (total_epochs or epochs) * steps
        opt, sched = make_optimizer(model, learning_rate=self.learning_rate,
                                    weight_decay=self.weight_decay,
                                    lr_schedule=self.lr_schedule, total_steps=total)
        if state["optimizer_state"] is not None:
            try:
                opt.load_state_dict(state["optimizer_state"]["optimizer"])
            except (ValueError, KeyError) as exc:
                raise LoadError(
                    f"The optimizer state in checkpoint {self.checkpoint_path!r} does not fit "
                    f"this model's optimizer ({exc}); it was written by another skabi "
                    "version or another network. Fit with resume=False to start over."
                ) from None
            sched.load_state_dict(state["optimizer_state"]["scheduler"])
        rank, world = _distributed()
        train_module = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            train_module = DistributedDataParallel(model)
        first = len(state["rows"])

        def n_simulations(rows):
            fresh = source.n_simulated if isinstance(source, RoundSource) else \
                source.sims_per_epoch * len(rows)
            return state["n_simulations"] + fresh * world

        def checkpoint(rows):
            if self.checkpoint_path is not None and rank == 0:
                self._checkpoint(state, state["rows"] + rows, n_simulations(rows), opt, sched)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(state["torch_seed"] + 1)
            try:
                rows, _ = run_epochs(
                    model, opt, sched, lambda epoch: source.epoch(epoch, prepare, rng),
                    epochs=epochs, clip_grad_norm=self.clip_grad_norm, validation=validation,
                    early_stopping=self.early_stopping, patience=self.patience,
                    verbose=self.verbose and rank == 0, first_epoch=first,
                    train_module=train_module, on_epoch_end=checkpoint)
            finally:
                unflatten_parameters(model)  # make_optimizer made them views of one buffer
        # Commit only now: a failed (re)fit leaves a fitted estimator as it was.
        self._commit(state, state["rows"] + rows, n_simulations(rows))

    def _checkpoint(self, state, rows, n_simulations, opt, sched):
        from . import _persistence

        snapshot = copy.copy(self)
        snapshot._commit(state, rows, n_simulations)
        _persistence.save(snapshot, self.checkpoint_path,
                          training_state={"optimizer": opt.state_dict(),
                                          "scheduler": sched.state_dict()})

    def _validation_batches(self, source, adapter, shapes, rng, device, dtype):
        spec = self.validation_sims
        if spec is None:
            return None
        if isinstance(spec, numbers.Integral):
            if not source.online:
                raise ValueError("validation_sims as a number needs a simulator; pass a bank "
                                 "of validation simulations for offline training.")
            # drawn in training-sized batches, so that meta variables (N) vary as in training
            banks = [source.simulator.sample(min(self.batch_size, int(spec) - i), random_state=rng)
                     for i in range(0, int(spec), self.batch_size)]
        else:
            banks = [as_bank(spec).to_dict()]
        out = []
        for sims in banks:
            roles = adapter.transform(sims)
            check_roles(roles, shapes, given_keys=sims.keys(), need_theta=True)
            n = roles["inference_variables"].shape[0]
            chunk = max(self.batch_size, 256)
            out += [to_tensors(roles, device, dtype, slice(i, i + chunk))
                    for i in range(0, n, chunk)]
        return out

    def _commit(self, state, rows, n_simulations):
        import pandas as pd

        model = state["model"]
        self.adapter_ = state["adapter"]
        self.approximator_ = model
        self.inference_network_ = model.inference_network
        self.summary_network_ = model.summary_network
        self.role_shapes_ = state["shapes"]
        self.networks_ = state["networks"]
        self.parameter_names_ = state["names"]
        self.device_ = state["device"]
        self.history_ = pd.DataFrame(rows, columns=HISTORY_COLUMNS).set_index("epoch", drop=False)
        self.n_simulations_ = int(n_simulations)
