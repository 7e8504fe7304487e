"""Training regimes: banks on disk, rounds, replay, checkpoints/resume, early stopping, DDP."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc

import numpy as np
import pytest
import torch

from models import Gaussian, tiny_estimator, tutorial_adapter
from skabi import AmortizedPosterior
from skabi.exceptions import LoadError

pytest.importorskip("zarr")

HERE = os.path.dirname(os.path.abspath(__file__))


tiny = tiny_estimator


@pytest.mark.slow
def test_fit_streams_a_bank_from_disk_within_a_memory_cap(tmp_path):
    from skabi.storage import simulate

    path = str(tmp_path / "bank.zarr")
    simulate(Gaussian(n_obs=50, dim=4), 40_000, batch_size=5_000, path=path, random_state=0)
    bank_bytes = 40_000 * (50 * 4 + 4) * 8                       # ~65 MB of float64
    est = tiny(epochs=1, batch_size=512, pilot_size=256)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])       # import torch's lazy modules now
    tracemalloc.start()
    est.fit(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert est.n_simulations_ == 40_000
    assert peak < 0.3 * bank_bytes, f"peak {peak / 1e6:.1f} MB for a {bank_bytes / 1e6:.0f} MB bank"
    draws = est.sample(Gaussian(n_obs=50, dim=4).sample(2), num_samples=10, return_type="numpy")
    assert draws["theta"].shape == (2, 10, 4)


def test_fit_on_an_in_memory_dataset_with_meta_groups():
    from models import likelihood, meta, prior
    from skabi import make_simulator
    from skabi.storage import simulate

    bank = simulate(make_simulator([prior, likelihood], meta_fn=meta), 600, batch_size=100,
                    random_state=1)
    adapter = tutorial_adapter()
    est = tiny(adapter=adapter, epochs=1).fit(bank)
    assert est.n_simulations_ == 600
    assert est.role_shapes_ == {"inference_variables": 3, "inference_conditions": 1,
                                "summary_variables": 2}


class _Counting(Gaussian):
    """Records the batch size of every simulate call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def simulate(self, batch_size, rng):
        self.calls.append(batch_size)
        return super().simulate(batch_size, rng)


def test_round_based_training_simulates_once_per_round():
    sim = _Counting()
    est = tiny(epochs=4, rounds=2, batches_per_epoch=3, pilot_size=50).fit(sim)
    assert len(est.history_) == 4
    assert est.n_simulations_ == 2 * 3 * 32
    # pilot, extra pilot batches for the standardization, then 3 batches per round
    assert sim.calls == [50] + [32] * 7 + [32] * 6


def test_rounds_are_honoured_when_they_do_not_divide_the_epochs():
    sim = _Counting()
    est = tiny(epochs=5, rounds=4, batches_per_epoch=2, pilot_size=50).fit(sim)
    assert len(est.history_) == 5 and est.n_simulations_ == 4 * 2 * 32
    assert len(sim.calls) == 1 + 7 + 4 * 2


def test_a_warm_up_does_not_shift_the_round_schedule():
    """After a warm-up epoch inside round 0, the training proper gets its own schedule:
    round 0 (already simulated) for its share of epochs, then round 1; two rounds in all."""
    from skabi.training.sources import RoundSource

    sim = _Counting()
    source = RoundSource(sim, batch_size=8, batches_per_epoch=2, rounds=2, epochs=4)
    source.start(lambda batch: batch, np.random.default_rng(0))
    list(source.epoch(0))                      # the warm-up: one epoch of round 0
    source.restart_schedule()
    for epoch in range(4):
        list(source.epoch(epoch))
    assert len(sim.calls) == 2 * 2             # rounds 0 and 1, two batches each
    assert source.n_simulated == 2 * 2 * 8


def test_a_fit_with_a_warm_up_restarts_the_round_schedule(monkeypatch):
    from skabi.adapters import Rename, make_adapter
    from skabi.networks import CouplingFlow
    from skabi.training.sources import RoundSource

    class Means(_Counting):                       # fixed conditions: the warm-up applies
        def simulate(self, batch_size, rng):
            out = super().simulate(batch_size, rng)
            return {"theta": out["theta"], "x": out["x"].mean(axis=1)}

    restarts = []
    original = RoundSource.restart_schedule
    monkeypatch.setattr(RoundSource, "restart_schedule",
                        lambda self: (restarts.append(self._epochs_seen), original(self)))
    est = tiny(adapter=make_adapter(Rename("theta", "inference_variables"),
                                    Rename("x", "inference_conditions")),
               summary_network=None,
               inference_network=CouplingFlow(depth=2, subnet_width=16, linear_warmup=True),
               epochs=4, rounds=2, batches_per_epoch=3, pilot_size=50, validation_sims=64,
               early_stopping=True).fit(Means())
    warm = int((est.history_["epoch"] < 0).sum())
    assert warm > 0 and restarts == [warm]        # once, after the warm-up's epochs


def test_replay_buffer_training():
    est = tiny(epochs=2, replay_capacity=100).fit(Gaussian())
    assert est.n_simulations_ == 2 * 5 * 32
    assert np.isfinite(est.history_["loss"]).all()
    with pytest.raises(ValueError, match="rounds and replay_capacity"):
        tiny(rounds=2, replay_capacity=100).fit(Gaussian())


def _val_loss(est, val):
    roles = est.adapter_.transform(val)
    t = {k: torch.as_tensor(v) for k, v in roles.items()}
    with torch.no_grad():
        return float(est.approximator_.loss(t))


def test_early_stopping_restores_best_weights():
    val = Gaussian().sample(256, random_state=3)
    # a learning rate far too high makes the validation loss bounce: the best is not the last
    est = tiny(epochs=12, learning_rate=3e-2, lr_schedule="constant", validation_sims=val,
               early_stopping=True, patience=1).fit(Gaussian())
    history = est.history_["val_loss"]
    assert history.idxmin() != history.index[-1]         # the best epoch was not the last
    assert _val_loss(est, val) == pytest.approx(history.min(), rel=1e-4, abs=1e-4)


def test_checkpoint_written_each_epoch_and_resume_continues(tmp_path):
    path = tmp_path / "ckpt.skabi"
    est = tiny(epochs=2, checkpoint_path=str(path)).fit(Gaussian())
    saved = AmortizedPosterior.load(path)
    assert len(saved.history_) == 2
    more = tiny(epochs=4, checkpoint_path=str(path)).fit(Gaussian(), resume=True)
    assert list(more.history_["epoch"]) == [0, 1, 2, 3]
    np.testing.assert_allclose(more.history_["loss"].iloc[:2], est.history_["loss"], rtol=1e-6)
    assert more.n_simulations_ == 4 * 5 * 32
    fresh = tiny(epochs=1, checkpoint_path=str(tmp_path / "none.skabi")).fit(Gaussian(), resume=True)
    assert len(fresh.history_) == 1


def test_resume_with_a_mismatched_optimizer_state_says_so(tmp_path, monkeypatch):
    # a checkpoint written with one flat parameter tensor, resumed by an optimizer over the
    # model's separate tensors (as from another skabi version): a LoadError, not torch's
    path = tmp_path / "ckpt.skabi"
    tiny(epochs=1, checkpoint_path=str(path)).fit(Gaussian())
    from skabi.training import loop as _training

    monkeypatch.setattr(_training, "flatten_parameters", lambda params: None)
    with pytest.raises(LoadError, match="optimizer state.*resume=False"):
        tiny(epochs=2, checkpoint_path=str(path)).fit(Gaussian(), resume=True)


KILLED = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {here!r})
    from models import Gaussian, tiny_estimator, tutorial_adapter
    from skabi import AmortizedPosterior, make_adapter
    from skabi.adapters import Rename
    from skabi.networks import CouplingFlow, DeepSet

    class Slow(Gaussian):
        def simulate(self, batch_size, rng):
            time.sleep(0.02)
            return super().simulate(batch_size, rng)

    AmortizedPosterior(adapter=make_adapter(Rename("theta", "inference_variables"),
                                            Rename("x", "summary_variables")),
                       inference_network=CouplingFlow(depth=2, subnet_width=16),
                       summary_network=DeepSet(summary_dim=4, width=16), epochs=1000,
                       batches_per_epoch=10, batch_size=32, pilot_size=64, random_state=0,
                       checkpoint_path={path!r}).fit(Slow())
""")


@pytest.mark.slow
def test_sigkill_mid_epoch_loses_at_most_that_epoch(tmp_path):
    path = str(tmp_path / "killed.skabi")
    script = tmp_path / "train.py"
    script.write_text(KILLED.format(here=HERE, path=path))
    proc = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if os.path.exists(path) and len(AmortizedPosterior.load(path).history_) >= 2:
                break
            time.sleep(0.2)
        time.sleep(0.3)                                  # somewhere inside a later epoch
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    saved = AmortizedPosterior.load(path)                # never a torn file
    done = len(saved.history_)
    assert done >= 2
    resumed = tiny(epochs=done + 1, batches_per_epoch=10, checkpoint_path=path)
    resumed.fit(Gaussian(), resume=True)
    assert list(resumed.history_["epoch"]) == list(range(done + 1))


DDP = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {here!r})
    import torch, torch.distributed as dist
    from models import Gaussian, tiny_estimator, tutorial_adapter
    from skabi import AmortizedPosterior, make_adapter
    from skabi.adapters import Rename
    from skabi.networks import CouplingFlow, DeepSet

    rank = int(sys.argv[1])
    dist.init_process_group("gloo", init_method="file://{store}", rank=rank, world_size=2)
    est = AmortizedPosterior(adapter=make_adapter(Rename("theta", "inference_variables"),
                                                  Rename("x", "summary_variables")),
                             inference_network=CouplingFlow(depth=2, subnet_width=16),
                             summary_network=DeepSet(summary_dim=4, width=16), epochs=2,
                             batches_per_epoch=5, batch_size=32, pilot_size=64,
                             random_state=0).fit(Gaussian())
    torch.save({{k: v.clone() for k, v in est.approximator_.state_dict().items()}},
               os.path.join({out!r}, f"rank{{rank}}.pt"))
    print(rank, est.n_simulations_, float(est.history_["loss"].iloc[-1]))
    dist.destroy_process_group()
""")


@pytest.mark.slow
def test_distributed_data_parallel_on_cpu_with_gloo(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP.format(here=HERE, store=str(tmp_path / "store"), out=str(tmp_path)))
    procs = [subprocess.Popen([sys.executable, str(script), str(r)], stdout=subprocess.PIPE,
                              text=True) for r in range(2)]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.allclose(a[k], b[k]) for k in a)   # gradients were averaged in sync
    assert all(out.split()[1] == str(2 * 2 * 5 * 32) for out in outs)
    losses = [float(out.split()[2]) for out in outs]
    assert losses[0] != losses[1]                        # each rank saw its own simulations


def test_validation_split_of_a_bank_in_memory():
    """validation_sims as a number or a share holds out simulations of a bank (issue 19:
    it used to say a simulator was needed); (X_val, y_val) works with arrays."""
    from models import Gaussian, tiny_estimator

    bank = Gaussian(n_obs=5).sample(200, random_state=0)
    est = tiny_estimator(validation_sims=40, epochs=2).fit(bank)
    assert est.n_simulations_ == 2 * 160           # two passes over the 160 left
    assert est.history_["val_loss"].notna().all()
    est = tiny_estimator(validation_sims=0.25, epochs=1).fit(bank)
    assert est.n_simulations_ == 150
    again = tiny_estimator(validation_sims=0.25, epochs=1).fit(bank)
    assert again.history_["val_loss"].iloc[0] == est.history_["val_loss"].iloc[0]
    with pytest.raises(ValueError, match="holds out 200 of the bank's 200"):
        tiny_estimator(validation_sims=200).fit(bank)
    with pytest.raises(ValueError, match="a share of the bank.*needs a bank in memory"):
        tiny_estimator(validation_sims=0.1).fit(Gaussian(n_obs=5))

    from skabi import AmortizedPosterior
    from skabi.networks import CouplingFlow

    rng = np.random.default_rng(0)
    theta = rng.normal(size=(300, 2))
    x = theta + rng.normal(size=(300, 2))
    est = AmortizedPosterior(inference_network=CouplingFlow(depth=1), epochs=2,
                             validation_sims=(x[:50], theta[:50]), random_state=0)
    est.fit(x[50:], theta[50:])
    assert est.history_["val_loss"].notna().all()
    with pytest.raises(ValueError, match=r"must be \(X_val, y_val\)"):
        est.set_params(validation_sims=(x,)).fit(x, theta)


def test_failed_simulations_are_dropped_only_when_asked():
    """on_nonfinite="drop" leaves out NaN rows with a warning (issue 19: sbi does it);
    the default names them and trains nothing."""
    from models import Gaussian, tiny_estimator

    from skabi import AmortizedPointEstimator
    from skabi.networks import DenseHead

    bank = dict(Gaussian(n_obs=5).sample(100, random_state=0))
    bank["x"] = bank["x"].copy()
    bank["x"][[3, 7, 9], 2, 0] = np.nan
    with pytest.raises(Exception, match="NaN"):
        tiny_estimator().fit(bank)
    with pytest.warns(UserWarning, match="3 of the bank's 100 simulations hold NaN"):
        est = tiny_estimator(on_nonfinite="drop", epochs=1).fit(bank)
    assert est.n_simulations_ == 97 - 10   # the finite ones, a tenth held out

    rng = np.random.default_rng(0)
    theta = rng.normal(size=(200, 1))
    x = theta + rng.normal(size=(200, 3))
    x[:5, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        AmortizedPointEstimator(head=DenseHead(width=4), epochs=1).fit(x, theta[:, 0])
    with pytest.warns(UserWarning, match="5 of the bank's 200"):
        reg = AmortizedPointEstimator(head=DenseHead(width=4), epochs=1,
                                      on_nonfinite="drop").fit(x, theta[:, 0])
    assert reg.n_simulations_ == 195
    with pytest.raises(ValueError, match="Every one of the bank's 3 simulations"):
        AmortizedPointEstimator(on_nonfinite="drop").fit(np.full((3, 2), np.nan), np.zeros(3))
