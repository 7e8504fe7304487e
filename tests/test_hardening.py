"""Issue 13, first findings: bad input named before training, never a raw error."""

import numpy as np
import pytest

from models import Gaussian, tiny_estimator
from skabi.exceptions import ShapeError


def test_an_empty_set_is_named_not_a_nan(tmp_path):
    from skabi import make_adapter
    from skabi.adapters import AsSet, Rename

    est = tiny_estimator(adapter=make_adapter(AsSet("x"), Rename("x", "summary_variables"),
                                              Rename("theta", "inference_variables")))
    est.fit(Gaussian())
    with pytest.raises(ShapeError, match=r"dataset\(s\) \[0\] is empty"):
        est.sample({"x": np.zeros((1, 0, 2))}, num_samples=3, return_type="numpy")
    with pytest.raises(ShapeError, match=r"dataset\(s\) \[1\] is empty"):
        est.log_prob([{"x": np.zeros((3, 2)), "theta": np.zeros(2)},
                      {"x": np.zeros((0, 2)), "theta": np.zeros(2)}])


class _Drifting(Gaussian):
    """Gives x one more feature after the first calls (the pilot)."""

    calls = 0

    def simulate(self, batch_size, rng):
        type(self).calls += 1
        out = super().simulate(batch_size, rng)
        if type(self).calls > 9:
            out["x"] = np.concatenate([out["x"], out["x"][..., :1]], axis=-1)
        return out


def test_a_simulator_that_changes_a_shape_mid_training_is_named():
    with pytest.raises(ShapeError, match="'summary_variables' has shape .* last axis 2"):
        tiny_estimator().fit(_Drifting())


@pytest.mark.parametrize("device", ["gpu", "cuda:7"])
def test_a_device_that_is_not_there_is_named_before_training(device):
    import torch

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that GPU")
    with pytest.raises(ValueError, match=rf"device='{device}' is not available.*'cpu'"):
        tiny_estimator(device=device).fit(Gaussian())


def test_a_checkpoint_path_in_a_missing_folder_or_at_a_folder_fails_before_training(tmp_path):
    for path, message in ((tmp_path / "nope" / "ckpt.skabi", "does not exist"),
                          (tmp_path, "is a folder")):
        est = tiny_estimator(checkpoint_path=str(path))
        with pytest.raises(ValueError, match=message):
            est.fit(Gaussian())
        assert not hasattr(est, "history_")   # nothing trained


def test_save_into_a_missing_folder_names_the_folder(tmp_path):
    est = tiny_estimator().fit(Gaussian())
    with pytest.raises(ValueError, match="the folder .*nope.* does not exist"):
        est.save(tmp_path / "nope" / "model.skabi")


@pytest.mark.parametrize("value, what", [(np.ones((4, 20, 2)) * (1 + 1j), "complex"),
                                         (np.full((4, 20, 2), "a"), "not numeric")])
def test_complex_and_string_data_are_refused_naming_the_variable(value, what):
    est = tiny_estimator().fit(Gaussian())
    with pytest.raises(TypeError, match=f"'x' is {what}"):
        est.sample({"x": value}, 5)


def test_resume_with_more_epochs_continues_the_decay(tmp_path):
    path = str(tmp_path / "ckpt.skabi")
    tiny_estimator(epochs=2, checkpoint_path=path).fit(Gaussian())
    more = tiny_estimator(epochs=6, checkpoint_path=path).fit(Gaussian(), resume=True)
    lr = more.history_["lr"].to_numpy()
    assert np.all(np.diff(lr[2:]) < 0), lr          # from the resume on: only down
    # the new total's cosine at the step reached (epoch 2 of 6, 5 steps each)
    assert lr[2] == pytest.approx(2e-3 * (1 + np.cos(np.pi * 10 / 30)) / 2, rel=1e-6)


def test_resume_refuses_changed_networks_and_optimizer_settings(tmp_path):
    from skabi.networks import CouplingFlow

    path = str(tmp_path / "ckpt.skabi")
    tiny_estimator(epochs=1, checkpoint_path=path).fit(Gaussian())
    deeper = tiny_estimator(epochs=2, checkpoint_path=path,
                            inference_network=CouplingFlow(depth=3, subnet_width=16))
    with pytest.raises(ValueError, match=r"inference_network__depth \(checkpoint 2, now 3\)"):
        deeper.fit(Gaussian(), resume=True)
    faster = tiny_estimator(epochs=2, checkpoint_path=path, learning_rate=1e-2)
    with pytest.raises(ValueError, match=r"learning_rate \(checkpoint 0.002, now 0.01\)"):
        faster.fit(Gaussian(), resume=True)


def test_resume_without_optimizer_state_warns(tmp_path):
    path = str(tmp_path / "ckpt.skabi")
    est = tiny_estimator(epochs=1).fit(Gaussian())
    est.save(path)                           # a saved model: no optimizer state in it
    with pytest.warns(UserWarning, match="no optimizer state"):
        tiny_estimator(epochs=2, checkpoint_path=path).fit(Gaussian(), resume=True)


class _Interrupting(Gaussian):
    """Raises KeyboardInterrupt (Ctrl-C) at its ``at``-th call."""

    def __init__(self, at):
        super().__init__()
        self.at, self.calls = at, 0

    def simulate(self, batch_size, rng):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return super().simulate(batch_size, rng)


@pytest.mark.parametrize("steps_done", [3, 7])
def test_an_interrupted_fit_keeps_weights_history_and_counts_that_agree(steps_done):
    # the pilot and its 7 extra batches take 8 calls; then one call per step (5 per epoch)
    est = tiny_estimator(epochs=3)
    with pytest.warns(UserWarning, match="interrupted.*weights trained so far"):
        est.fit(_Interrupting(at=8 + steps_done + 1))
    epochs = -(-steps_done // 5)
    assert len(est.history_) == epochs and np.isfinite(est.history_["loss"]).all()
    assert est.n_simulations_ == steps_done * 32
    fresh = tiny_estimator(epochs=3).fit(Gaussian())   # same seed, not interrupted
    assert not np.allclose(est.log_prob(Gaussian().sample(4, random_state=0)),
                           fresh.log_prob(Gaussian().sample(4, random_state=0)))


def test_a_second_writer_of_a_bank_is_refused_and_a_stale_lock_taken_over(tmp_path):
    import json
    import os
    import socket
    import subprocess
    import sys

    pytest.importorskip("zarr")
    from skabi.storage import simulate

    path = tmp_path / "bank.zarr"
    lock = tmp_path / "bank.zarr.lock"
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    with pytest.raises(RuntimeError, match=rf"being written by process {os.getpid()}"):
        simulate(Gaussian(n_obs=3), 20, batch_size=10, path=path, random_state=0)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": int(gone)}))
    bank = simulate(Gaussian(n_obs=3), 20, batch_size=10, path=path, random_state=0)
    assert bank.sizes["simulation"] == 20 and not lock.exists()
    bank.close()


def test_huge_inputs_are_named_as_the_cause_not_the_learning_rate():
    from skabi.exceptions import NonFiniteError

    class Huge(Gaussian):
        def simulate(self, batch_size, rng):
            out = super().simulate(batch_size, rng)
            out["x"] = out["x"] * 1e39   # beyond float32: inf once cast
            return out

    with pytest.raises(NonFiniteError, match="'summary_variables' holds values beyond the "
                                             "range of float32.*rescale"):
        tiny_estimator().fit(Huge())


def test_a_loss_that_overflows_on_huge_inputs_names_them():
    import torch

    from skabi.exceptions import TrainingError
    from skabi.training.loop import make_optimizer, run_epochs

    class Square(torch.nn.Module):   # finite float32 inputs whose square overflows
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, batch):
            return (self.w * batch["inference_variables"]).square().mean()

    class Source:
        steps_per_epoch = 1

        def epoch(self, epoch):
            yield {"inference_variables": torch.full((4, 2), 1e30)}

    model = Square()
    opt, sched = make_optimizer(model, learning_rate=1e-3, weight_decay=0.0,
                                lr_schedule="constant", total_steps=1)
    with pytest.raises(TrainingError, match="out of reach of float32.*up to 1e\\+30"):
        run_epochs(model, opt, sched, Source(), epochs=1)


def test_a_reader_sees_only_committed_rows_of_a_bank_caught_mid_batch(tmp_path):
    zarr = pytest.importorskip("zarr")
    from skabi.storage import open_bank, simulate

    path = tmp_path / "bank.zarr"
    simulate(Gaussian(n_obs=3), 20, batch_size=10, path=path, random_state=0).close()
    group = zarr.open_group(str(path), mode="a")
    group["theta"].resize((30, 2))      # one array grown, as a writer does batch by batch
    group["theta"][20:] = 99.0
    reader = open_bank(path)
    assert len(reader) == 20
    assert not np.any(reader.take(slice(0, 20))["theta"] == 99.0)
    group["x"].resize((10, 3, 1))       # fewer rows than committed: damage, said as such
    with pytest.raises(ValueError, match="holds 20 committed simulations.*'x': 10.*damaged"):
        open_bank(path)


def test_readers_racing_a_writer_see_committed_batches_only(tmp_path):
    """Open and read a bank again and again while another thread writes it: every read
    succeeds and returns a prefix of the finished bank, whole batches only."""
    import threading

    pytest.importorskip("zarr")
    from skabi import make_simulator
    from skabi.storage import open_bank, simulate

    def model(N, rng):
        theta = rng.normal(size=2)
        return dict(theta=theta, x=theta + rng.normal(size=(N, 2)))

    simulator = make_simulator(model, meta_fn=lambda rng: dict(N=int(rng.integers(3, 6))))
    path = tmp_path / "bank.zarr"
    writer = threading.Thread(target=lambda: simulate(simulator, 600, batch_size=5, path=path,
                                                       random_state=1).close())
    writer.start()
    seen = []
    try:
        while writer.is_alive():
            try:
                reader = open_bank(path)
            except (FileNotFoundError, ValueError) as exc:  # nothing committed yet
                assert len(seen) == 0, exc
                continue
            seen.append({name: reader.take(np.arange(start, start + n))
                         for (name, _, n), start in zip(reader.groups, reader._offsets)})
    finally:
        writer.join()
    final = open_bank(path)
    groups = {name: (n, start) for (name, _, n), start in zip(final.groups, final._offsets)}
    assert len(final) == 600 and len(seen) > 5
    for snapshot in seen:
        assert sum(len(b["theta"]) for b in snapshot.values()) % 5 == 0
        for name, batch in snapshot.items():
            n, start = groups[name]
            full = final.take(np.arange(start, start + len(batch["theta"])))
            np.testing.assert_array_equal(batch["x"], full["x"])
            np.testing.assert_array_equal(batch["theta"], full["theta"])
