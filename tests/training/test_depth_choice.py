"""``CouplingFlow(subnet_depth="auto")``: on a bank a spline flow is trained with two and
with four hidden layers per subnet, and the fit keeps the one that validates better."""

import numpy as np
import pytest
import torch

from skabi import AmortizedPosterior
from skabi.networks import CouplingFlow


def _bank(n=400, seed=0, dim=2):
    """theta ~ N(0, I), x = theta + N(0, I): the exact posterior is N(x / 2, I / 2)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(n, dim))
    return theta + rng.normal(size=(n, dim)), theta


def _posterior(subnet_depth="auto", transform="spline", **params):
    flow = CouplingFlow(depth=2, subnet_width=16, transform=transform,
                        subnet_depth=subnet_depth)
    return AmortizedPosterior(inference_network=flow, epochs=params.pop("epochs", 15),
                              random_state=0, **params)


def _best(est):
    return est.history_["val_loss"].min()


def test_a_bank_trains_both_depths_and_keeps_the_better_validation():
    """The kept fit is, weight for weight, the separate fit of the depth that validated
    better: same history, same densities."""
    x, theta = _bank()
    auto = _posterior().fit(x, theta)
    two, four = (_posterior(d).fit(x, theta) for d in (2, 4))
    assert _best(two) != _best(four)          # the choice is not a tie
    better = two if _best(two) < _best(four) else four
    chosen = auto.networks_["inference_network"].subnet_depth
    assert chosen == better.inference_network.subnet_depth
    assert auto.inference_network.subnet_depth == "auto"    # the parameter as given
    np.testing.assert_array_equal(auto.history_["val_loss"], better.history_["val_loss"])
    np.testing.assert_allclose(auto.log_prob({"x": x[:20], "theta": theta[:20]}),
                               better.log_prob({"x": x[:20], "theta": theta[:20]}),
                               rtol=1e-6)


def test_the_choice_follows_the_validation_loss(monkeypatch):
    """Whichever depth validates better is kept: with the losses of depth 4 made lower, it
    is depth 4, with those of depth 2 made lower, depth 2."""
    from skabi.training import fitting

    x, theta = _bank(200)
    train = fitting.run_fit
    for favoured in (2, 4):
        def run_fit(settings, source, *, networks, **kwargs):
            state = train(settings, source, networks=networks, **kwargs)
            bonus = 100.0 if networks["inference_network"].subnet_depth == favoured else 0.0
            rows = [{**row, "val_loss": row["val_loss"] - bonus} for row in state.history]
            return state.replace(history=rows)

        monkeypatch.setattr(fitting, "run_fit", run_fit)
        est = _posterior(epochs=3).fit(x, theta)
        assert est.networks_["inference_network"].subnet_depth == favoured


def test_an_interrupted_training_ends_the_choice(monkeypatch):
    """Ctrl-C in the first training keeps its weights and trains no second depth; in the
    second, the first (complete) training is kept."""
    from skabi.training import fitting

    x, theta = _bank(200)
    train = fitting.run_fit
    for interrupted in (2, 4):
        depths = []

        def run_fit(settings, source, *, networks, **kwargs):
            depth = networks["inference_network"].subnet_depth
            depths.append(depth)
            state = train(settings, source, networks=networks, **kwargs)
            if depth != interrupted:
                return state
            last = {**state.history[-1], "val_loss": float("nan")}   # as after Ctrl-C
            return state.replace(history=state.history[:-1] + [last])

        monkeypatch.setattr(fitting, "run_fit", run_fit)
        est = _posterior(epochs=3).fit(x, theta)
        assert depths == ([2] if interrupted == 2 else [2, 4])
        assert est.networks_["inference_network"].subnet_depth == 2


@pytest.mark.parametrize("case", ["online", "affine", "checkpoint", "no validation"])
def test_without_a_choice_auto_is_two_hidden_layers(case, tmp_path, monkeypatch):
    """Online, for an affine flow, with a checkpoint or without validation simulations the
    flow is trained once, with two hidden layers, as before ``"auto"``."""
    from skabi import make_simulator
    from skabi.training import fitting

    calls = []
    train = fitting.run_fit
    monkeypatch.setattr(fitting, "run_fit", lambda *a, **k: calls.append(1) or train(*a, **k))
    x, theta = _bank(200)
    params = dict(epochs=2)
    if case == "affine":
        params["transform"] = "affine"
    elif case == "checkpoint":
        params["checkpoint_path"] = str(tmp_path / "run.skabi")
    elif case == "no validation":
        params.update(validation_sims=None, early_stopping=False)
    est = _posterior(**params)
    if case == "online":
        simulator = make_simulator([lambda rng: dict(theta=rng.normal(size=2)),
                                    lambda theta, rng: dict(x=theta + rng.normal(size=2))])
        est.set_params(batches_per_epoch=2, pilot_size=32)
        est.fit(simulator)
        assert len(calls) == 1
        same = _posterior(2, epochs=2, batches_per_epoch=2, pilot_size=32).fit(simulator)
    else:
        est.fit(x, theta)
        assert len(calls) == 1
        same = None
    assert est.networks_["inference_network"].subnet_depth == 2
    if same is not None:   # the same network and training as an explicit 2
        data = {"x": x[:10], "theta": theta[:10]}
        np.testing.assert_allclose(est.log_prob(data), same.log_prob(data), rtol=1e-6)


def test_a_saved_choice_loads_as_given_and_as_built(tmp_path):
    x, theta = _bank(200)
    est = _posterior(epochs=3).fit(x, theta)
    est.save(tmp_path / "flow.skabi")
    loaded = AmortizedPosterior.load(tmp_path / "flow.skabi")
    assert loaded.inference_network.subnet_depth == "auto"
    assert (loaded.networks_["inference_network"].subnet_depth
            == est.networks_["inference_network"].subnet_depth)
    data = {"x": x[:10], "theta": theta[:10]}
    np.testing.assert_allclose(loaded.log_prob(data), est.log_prob(data), rtol=1e-6)
    # a warm start goes on with the depth chosen, in one training
    again = loaded.set_params(warm_start=True, epochs=1).fit(x, theta)
    assert (again.networks_["inference_network"].subnet_depth
            == est.networks_["inference_network"].subnet_depth)


def test_a_checkpoint_resumes_and_loads_with_auto(tmp_path):
    """With a checkpoint the fit does not choose (depth 2); a resume continues it, and the
    checkpoint loads with the parameter as given."""
    x, theta = _bank(200)
    path = tmp_path / "run.skabi"
    est = _posterior(epochs=2, checkpoint_path=str(path)).fit(x, theta)
    est.set_params(epochs=3).fit(x, theta, resume=True)
    assert (est.history_["epoch"] >= 0).sum() == 3   # main epochs; a warm-up before them
    assert est.networks_["inference_network"].subnet_depth == 2
    loaded = AmortizedPosterior.load(path)
    assert loaded.inference_network.subnet_depth == "auto"
    assert loaded.networks_["inference_network"].subnet_depth == 2


def test_a_bad_subnet_depth_is_refused_by_name():
    with pytest.raises(ValueError, match="subnet_depth"):
        CouplingFlow(subnet_depth="deep").build(2, 2)
    with pytest.raises(ValueError, match="subnet_depth"):
        _posterior("select").fit(*_bank(50))


def test_a_kept_second_candidate_is_the_separate_fit_of_its_depth(monkeypatch):
    """When depth 4 (trained second) is kept, it is weight for weight a separate
    ``subnet_depth=4`` fit: the bank prepared for the first candidate is not reused, and
    the pilot (a slice of a bank larger than it) and the adapter are the same."""
    from skabi.training import fitting

    x, theta = _bank(600)
    train = fitting.run_fit

    def run_fit(settings, source, *, networks, **kwargs):
        state = train(settings, source, networks=networks, **kwargs)
        if networks["inference_network"].subnet_depth == 2:   # make depth 4 win
            state = state.replace(history=[{**row, "val_loss": row["val_loss"] + 100.0}
                                           for row in state.history])
        return state

    monkeypatch.setattr(fitting, "run_fit", run_fit)
    auto = _posterior(epochs=3, pilot_size=64).fit(x, theta)
    monkeypatch.undo()
    four = _posterior(4, epochs=3, pilot_size=64).fit(x, theta)
    assert auto.networks_["inference_network"].subnet_depth == 4
    data = {"x": x[:20], "theta": theta[:20]}
    np.testing.assert_allclose(auto.log_prob(data), four.log_prob(data), rtol=1e-6)


def test_a_memory_source_prepares_the_bank_again_for_each_training():
    from skabi.bank import as_bank
    from skabi.training.sources import MemorySource

    source = MemorySource(as_bank({"a": np.arange(6.0)[:, None]}), batch_size=6)
    rng = np.random.default_rng(0)
    for shift in (0.0, 10.0):
        source.start(lambda sims, shift=shift: {"a": torch.as_tensor(sims["a"] + shift)}, rng)
        (batch,) = source.epoch(0)
        assert sorted(batch["a"].ravel().tolist()) == [shift + i for i in range(6)]


@pytest.mark.parametrize("random_state", [None, "generator"])
def test_candidates_share_one_seed_whatever_random_state(random_state, monkeypatch):
    """With ``random_state=None`` (or a Generator) both candidates still start from the
    same pilot and adapter and see the same batches: one seed is drawn for the fit."""
    from skabi.training import fitting

    seeds = []
    initial = fitting.initial_state
    monkeypatch.setattr(fitting, "initial_state", lambda settings, source, **spec: (
        seeds.append(settings.random_state) or initial(settings, source, **spec)))
    x, theta = _bank(300)
    state = np.random.default_rng(5) if random_state == "generator" else None
    _posterior(epochs=2, pilot_size=64).set_params(random_state=state).fit(x, theta)
    assert len(seeds) == 2 and seeds[0] == seeds[1]
    assert isinstance(seeds[0], int)


def test_ctrl_c_in_the_first_candidates_second_training_trains_no_other(monkeypatch):
    """A Ctrl-C in the identity-start training of ``linear_warmup="select"`` (which keeps
    the warm-started one, complete) and before any step of an epoch (no history row)
    still ends the choice: depth 4 is never trained."""
    from skabi.training import fitting

    calls, depths = [], []
    proper = fitting._train_proper
    initial = fitting.initial_state

    class Interrupting:
        def __init__(self, source):
            self.source = source

        def __getattr__(self, name):
            return getattr(self.source, name)

        def epoch(self, epoch):
            raise KeyboardInterrupt

    def train_proper(state, source, *args, **kwargs):
        calls.append(1)
        return proper(state, Interrupting(source) if len(calls) == 2 else source, *args,
                      **kwargs)

    monkeypatch.setattr(fitting, "_train_proper", train_proper)
    monkeypatch.setattr(fitting, "initial_state", lambda settings, source, **spec: (
        depths.append(spec["networks"]["inference_network"].subnet_depth)
        or initial(settings, source, **spec)))
    x, theta = _bank(200)
    with pytest.warns(UserWarning, match="[Ii]nterrupted"):
        est = _posterior(epochs=3).fit(x, theta)
    assert len(calls) == 2 and depths == [2]
    assert est.networks_["inference_network"].subnet_depth == 2


def test_ctrl_c_while_the_second_candidate_starts_keeps_the_first(monkeypatch):
    """A Ctrl-C that comes through (in the second candidate's set-up or warm-up) keeps the
    first training, which ended, instead of failing the fit."""
    from skabi.training import fitting

    initial = fitting.initial_state
    starts = []

    def initial_state(settings, source, **spec):
        starts.append(1)
        if len(starts) == 2:
            raise KeyboardInterrupt
        return initial(settings, source, **spec)

    monkeypatch.setattr(fitting, "initial_state", initial_state)
    x, theta = _bank(200)
    with pytest.warns(UserWarning, match="after 1 of them"):
        est = _posterior(epochs=3).fit(x, theta)
    monkeypatch.undo()
    two = _posterior(2, epochs=3).fit(x, theta)
    np.testing.assert_array_equal(est.history_["val_loss"], two.history_["val_loss"])


def test_partial_fit_trains_one_candidate(monkeypatch):
    from skabi.training import fitting

    calls = []
    train = fitting.run_fit
    monkeypatch.setattr(fitting, "run_fit", lambda *a, **k: calls.append(1) or train(*a, **k))
    x, theta = _bank(200)
    est = _posterior().partial_fit(x, theta)
    assert len(calls) == 1 and est.networks_["inference_network"].subnet_depth == 2
    assert est.inference_network.subnet_depth == "auto"


def test_a_resume_records_the_parameters_it_was_resumed_with(tmp_path):
    """A checkpoint written with ``"auto"`` and resumed with an explicit depth saves that
    depth as the parameter, not the checkpoint's ``"auto"``."""
    x, theta = _bank(200)
    path = tmp_path / "run.skabi"
    est = _posterior(epochs=2, checkpoint_path=str(path)).fit(x, theta)
    est.set_params(inference_network__subnet_depth=2, epochs=3).fit(x, theta, resume=True)
    est.save(tmp_path / "resumed.skabi")
    assert AmortizedPosterior.load(tmp_path / "resumed.skabi").inference_network.subnet_depth == 2
