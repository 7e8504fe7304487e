"""AmortizedJoint (JANA): a posterior and a likelihood from one training run, the engine's
joint hook, and the bank source that feeds them rows of different counts."""

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

from models import NormalMean

from skabi import AmortizedJoint, AmortizedLikelihood, AmortizedPosterior, make_simulator
from skabi.adapters import AsObservations, AsSet, Rename, make_adapter
from skabi.bank import SimulationBank
from skabi.networks import CouplingFlow, DeepSet
from skabi.training.joint import SEPARATOR, JointModel
from skabi.training.sources import MemorySource

N_OBS = 8


def normal_mean(tau=1.0):
    return NormalMean(n_obs=N_OBS, tau=tau)


def halves(width=32, depth=2, warmup="select"):
    posterior = AmortizedPosterior(
        adapter=make_adapter(Rename("mu", "inference_variables"),
                             Rename("x", "inference_conditions")),
        inference_network=CouplingFlow(depth=depth, subnet_width=width,
                                       linear_warmup=warmup))
    likelihood = AmortizedLikelihood(
        adapter=make_adapter(AsObservations("x"), Rename("x", "inference_variables"),
                             Rename("mu", "inference_conditions")),
        inference_network=CouplingFlow(depth=depth, subnet_width=width,
                                       linear_warmup=warmup))
    return posterior, likelihood


def set_posterior():
    """A posterior template that reads the observations as a set (a summary network)."""
    return AmortizedPosterior(
        adapter=make_adapter(AsSet("x"), Rename("x", "summary_variables"),
                             Rename("mu", "inference_variables")),
        inference_network=CouplingFlow(depth=1, subnet_width=8),
        summary_network=DeepSet(summary_dim=4))


TINY = dict(epochs=2, batches_per_epoch=5, batch_size=16, pilot_size=64, random_state=0)


@pytest.fixture(scope="module")
def conjugate_fit():
    model = normal_mean(1.0)
    posterior, likelihood = halves()
    est = AmortizedJoint(posterior, likelihood, prior={"mu": stats.norm(0, 1)}, epochs=12,
                         batches_per_epoch=100, batch_size=64, random_state=0)
    return model, est.fit(model)


# ------------------------------------------------------------------ the engine's hooks
def test_memory_source_serves_every_row_of_each_row_count():
    """Rows per simulation are batched by simulation, rows per observation on their own:
    one epoch sees every row of both exactly once, in as many steps."""
    bank = SimulationBank({"a": np.arange(10.0)[:, None]})
    source = MemorySource(bank, batch_size=4)

    def prepare(sims):
        a = torch.as_tensor(sims["a"])
        return {"p": a, "q": a.repeat_interleave(3, dim=0)}   # 3 observations each

    source.start(prepare, np.random.default_rng(0))
    batches = list(source.epoch(0))
    assert len(batches) == source.steps_per_epoch == 3
    assert [len(b["p"]) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b["p"] for b in batches]).flatten().tolist()) == list(range(10))
    seen = torch.cat([b["q"] for b in batches]).flatten()
    assert sorted(seen.tolist()) == sorted(np.repeat(np.arange(10.0), 3).tolist())


def test_a_likelihood_on_a_bank_trains_on_every_observation():
    """A bank of 40 datasets of 8 observations is 320 rows, all seen each epoch (the
    source once cut the observation rows by the dataset count, leaving 7/8 unseen)."""
    seen = []
    _, likelihood = halves(width=8, depth=1)
    bank = normal_mean().sample(40, random_state=0)

    class Spy(MemorySource):
        def epoch(self, epoch):
            for batch in super().epoch(epoch):
                seen.append(batch["inference_variables"].shape[0])
                yield batch

    import skabi.training.sources as sources

    original = sources.MemorySource
    sources.MemorySource = Spy
    try:
        likelihood.set_params(   # without the linear warm-up's extra pass
            inference_network=CouplingFlow(depth=1, subnet_width=8, linear_warmup=False),
            epochs=1, batch_size=16, validation_sims=None, early_stopping=False,
            random_state=0).fit(bank)
    finally:
        sources.MemorySource = original
    assert sum(seen) == 40 * N_OBS and len(seen) == 3


def test_validation_batches_are_bounded_by_elements(conjugate_fit, monkeypatch):
    """Validation is cut so that every part's tensors stay within CHUNK_ELEMENTS: the
    likelihood has N_OBS rows per simulation, so it sets the size."""
    import skabi.training.chunks as chunks
    from skabi.training.joint import JointPrepare

    _, est = conjugate_fit
    states = {"posterior": est.posterior_._fit_state(), "likelihood": est.likelihood_._fit_state()}
    prepare = JointPrepare(states, torch.device("cpu"), torch.float32)
    sims = normal_mean().sample(100, random_state=0)
    whole = prepare.batches(sims)
    assert len(whole) == 1
    monkeypatch.setattr(chunks, "CHUNK_ELEMENTS", 10 * N_OBS * 2)   # 20 rows of 2 values
    cut = prepare.batches(sims)
    assert len(cut) == 10 and all(len(b["likelihood/inference_variables"]) <= 10 * N_OBS
                                  for b in cut)
    for key, value in whole[0].items():
        torch.testing.assert_close(torch.cat([b[key] for b in cut]), value)


def test_a_joint_fit_simulates_as_much_as_one_fit():
    """The pilots are drawn once for both halves: a joint run calls the simulator for as
    many simulations as the posterior alone does."""
    class Counting(NormalMean):
        simulated = 0

        def sample(self, batch_size, random_state=None):
            self.simulated += batch_size
            return super().sample(batch_size, random_state)

    settings = dict(epochs=1, batches_per_epoch=3, batch_size=16, pilot_size=64,
                    random_state=0)
    posterior, likelihood = halves(width=8, depth=1)
    alone, joint = Counting(n_obs=N_OBS), Counting(n_obs=N_OBS)
    clone(posterior).set_params(**settings).fit(alone)
    AmortizedJoint(posterior, likelihood, **settings).fit(joint)
    assert joint.simulated == alone.simulated > 64


def test_shared_pilots_draw_once_and_hand_out_copies():
    from skabi.training.joint import SharedPilots

    class Source:
        calls = 0
        batch_size = 7

        def pilot(self, size, rng):
            self.calls += 1
            return {"x": np.zeros(size)}

        def extra_pilots(self, batch_size, rng):
            self.calls += 1
            return [{"x": np.ones(batch_size)}]

    source = Source()
    shared = SharedPilots(source)
    a, b = shared.pilot(5, None), shared.pilot(5, None)
    a["x"][0] = 3.0
    assert b["x"][0] == 0.0 and len(shared.extra_pilots(4, None)[0]["x"]) == 4
    shared.extra_pilots(4, None)
    assert source.calls == 2 and shared.batch_size == 7


def test_joint_loss_gives_each_half_the_gradient_of_its_own_loss():
    """The halves share no weights: the joint loss is the sum of the parts' losses, and
    its gradient for each half's weights is that of the half's own loss."""
    from skabi.training.joint import JointPrepare

    posterior, likelihood = halves(width=8, depth=1)
    est = AmortizedJoint(posterior, likelihood, **TINY).fit(normal_mean())
    parts = {"posterior": est.posterior_, "likelihood": est.likelihood_}
    model = JointModel({k: v.approximator_ for k, v in parts.items()})
    states = {k: v._fit_state() for k, v in parts.items()}
    batch = JointPrepare(states, "cpu", torch.float32)(normal_mean().sample(6, random_state=1))
    assert {k.split(SEPARATOR)[0] for k in batch} == set(parts)
    assert batch["likelihood" + SEPARATOR + "inference_variables"].shape[0] == 6 * N_OBS

    def gradients(loss):
        model.zero_grad()
        loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    joint = gradients(model(batch))
    alone = {}
    for name, part in model.parts.items():
        own = {k.split(SEPARATOR, 1)[1]: v for k, v in batch.items()
               if k.startswith(name + SEPARATOR)}
        alone.update({n: g for n, g in gradients(part.loss(own)).items()
                      if n.startswith(f"parts.{name}.")})
    assert set(alone) == set(joint)
    for n, g in joint.items():
        torch.testing.assert_close(g, alone[n], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ the estimator
def test_one_run_fits_both_halves(conjugate_fit):
    _, est = conjugate_fit
    assert isinstance(est.posterior_, AmortizedPosterior)
    assert isinstance(est.likelihood_, AmortizedLikelihood)
    assert len(est.history_) == 12 and est.n_simulations_ == 12 * 100 * 64
    assert est.posterior_.n_simulations_ == est.likelihood_.n_simulations_ == est.n_simulations_
    # the templates stay unfitted (they were cloned)
    assert not hasattr(est.posterior, "approximator_")
    draws = est.sample({"x": np.zeros((3, N_OBS))}, 200)
    assert draws.posterior["mu"].shape == (1, 200, 3)
    synthetic = est.likelihood_.sample({"mu": np.array([[0.0], [2.0]])}, 4, n_obs=N_OBS)
    assert synthetic["x"].shape == (2, 4, N_OBS)


@pytest.mark.slow
def test_joint_fit_gives_the_exact_evidence_and_posterior(conjugate_fit):
    """Against the conjugate model: log p(x) within 0.1 nats at the median, the
    posterior's mean and sd within 10% of the exact ones."""
    model, est = conjugate_fit
    x = model.sample(40, random_state=5)["x"]
    out = est.log_marginal_likelihood({"x": x}, num_samples=500, random_state=0)
    error = out["log_ml"].to_numpy() - model.log_evidence(x)
    assert np.median(np.abs(error)) < 0.1, error
    draws = est.sample({"x": x[:5]}, 4000, random_state=0).posterior["mu"].values[0]
    precision = 1 / model.tau ** 2 + N_OBS
    exact_mean, exact_sd = x[:5].sum(axis=1) / precision, precision ** -0.5
    np.testing.assert_allclose(draws.mean(axis=0), exact_mean, atol=0.1 * exact_sd * 3)
    np.testing.assert_allclose(draws.std(axis=0), exact_sd, rtol=0.1)


def test_importance_sampling_with_the_learned_likelihood(conjugate_fit):
    model, est = conjugate_fit
    x = model.sample(3, random_state=8)["x"]
    out = est.sample({"x": x}, 1000, importance=True, random_state=0)
    draws = out.posterior["mu"].values[0]
    precision = 1 / model.tau ** 2 + N_OBS
    mean, sd = x.sum(axis=1) / precision, precision ** -0.5
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - mean) / sd, 0.3)
    np.testing.assert_allclose(draws.std(axis=0) / sd, 1.0, atol=0.15)
    assert np.all(out.sample_stats["pareto_k"].values < 0.7)
    with pytest.raises(TypeError, match="does not take \\['return_type'\\]"):
        est.sample({"x": x}, 10, importance=True, return_type="numpy")
    with pytest.raises(TypeError, match="needs the data once"):
        est.sample({"x": x}, 10, importance=True, conditions={"x": x})
    with pytest.raises(TypeError, match="needs the data once"):
        est.sample(num_samples=10, importance=True)
    again = est.sample(conditions={"x": x}, num_samples=1000, importance=True)
    np.testing.assert_array_equal(again.posterior["mu"].values, out.posterior["mu"].values)
    bare = clone(est).set_params(prior=None)
    bare.posterior_, bare.likelihood_ = est.posterior_, est.likelihood_
    with pytest.raises(ValueError, match="prior density"):
        bare.sample({"x": x}, 10, importance=True)


def test_prior_from_the_call_or_the_parameter(conjugate_fit):
    _, est = conjugate_fit
    x = {"x": np.zeros((2, N_OBS))}
    a = est.log_marginal_likelihood(x, num_samples=50, random_state=1)
    b = clone(est).set_params(prior=None)
    b.posterior_, b.likelihood_ = est.posterior_, est.likelihood_
    with pytest.raises(ValueError, match="prior density"):
        b.log_marginal_likelihood(x, num_samples=50)
    c = b.log_marginal_likelihood(x, num_samples=50, random_state=1,
                                  prior={"mu": stats.norm(0, 1)})
    np.testing.assert_allclose(a["log_ml"], c["log_ml"])


def test_a_bank_is_split_validated_and_stopped():
    bank = normal_mean().sample(400, random_state=0)
    posterior, likelihood = halves(width=8, depth=1, warmup="auto")   # always warms up
    est = AmortizedJoint(posterior, likelihood, epochs=3, random_state=0).fit(bank)
    assert est.history_["val_loss"].notna().all()
    assert est.n_simulations_ == 3 * 360   # a tenth held out; the warm-up not counted
    # both flows warmed up their linear layer together (the epochs below 0)
    assert (est.history_["epoch"] < 0).any()
    assert bool(est.posterior_.inference_network_.lin_active)
    assert bool(est.likelihood_.inference_network_.lin_active)
    score = est.score(normal_mean().sample(50, random_state=1))
    assert np.isfinite(score)


def test_only_the_warming_half_computes_its_loss_during_the_warm_up(monkeypatch):
    """A posterior with a summary network does not warm up; the likelihood does, and
    while it does, the joint loss skips the posterior's forward pass."""
    seen = []
    original = JointModel.loss

    def spy(self, batch):
        seen.append(None if self.active is None else tuple(sorted(self.active)))
        return original(self, batch)

    monkeypatch.setattr(JointModel, "loss", spy)
    posterior = set_posterior()
    _, likelihood = halves(width=8, depth=1, warmup="auto")
    est = AmortizedJoint(posterior, likelihood, epochs=2, random_state=0).fit(
        normal_mean().sample(300, random_state=0))
    assert (est.history_["epoch"] < 0).any()
    assert not bool(est.posterior_.inference_network_.lin_active)
    assert bool(est.likelihood_.inference_network_.lin_active)
    assert ("likelihood",) in seen and seen[-1] is None
    assert seen.index(None) > seen.index(("likelihood",))   # warm-up first, then both


def test_score_is_the_sum_of_the_halves(conjugate_fit):
    _, est = conjugate_fit
    held = normal_mean().sample(30, random_state=2)
    assert est.score(held) == pytest.approx(est.posterior_.score(held)
                                            + est.likelihood_.score(held))


def test_arrays_and_grid_search():
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(300, 1))
    X = theta + rng.normal(size=(300, 3))
    grid = GridSearchCV(AmortizedJoint(epochs=2, batch_size=32, random_state=0,
                                       validation_sims=None, early_stopping=False),
                        {"learning_rate": [1e-3, 3e-3]}, cv=2).fit(X, theta)
    best = grid.best_estimator_
    assert best.n_features_in_ == 3 and best.posterior_.n_features_in_ == 3
    assert np.isfinite(grid.best_score_)
    params = clone(AmortizedJoint(*halves())).get_params(deep=True)
    assert "posterior__inference_network" in params and "likelihood__adapter" in params


def test_set_data_as_summary_variables():
    """The posterior half may have a summary network while the likelihood models single
    observations of the same set."""
    posterior = set_posterior()
    _, likelihood = halves(width=8, depth=1)
    est = AmortizedJoint(posterior, likelihood, **TINY).fit(make_simulator(
        [lambda rng: dict(mu=rng.normal()), lambda mu, rng: dict(x=mu + rng.normal(size=5))]))
    assert est.posterior_.summary_network_ is not None
    assert est.likelihood_.log_prob({"mu": np.zeros((2, 1)), "x": np.zeros((2, 5))}).shape \
        == (2,)


def test_bad_input_is_refused_before_training():
    posterior, likelihood = halves()
    with pytest.raises(TypeError, match="posterior must be an AmortizedPosterior"):
        AmortizedJoint(likelihood, likelihood, **TINY).fit(normal_mean())
    with pytest.raises(TypeError, match="likelihood must be an AmortizedLikelihood"):
        AmortizedJoint(posterior, posterior, **TINY).fit(normal_mean())
    late = AmortizedLikelihood(adapter=make_adapter(
        Rename("x", "inference_variables"), AsObservations("inference_variables"),
        Rename("mu", "inference_conditions")))
    with pytest.raises(ValueError, match="AsObservations must be the first step"):
        AmortizedJoint(posterior, late, **TINY).fit(normal_mean())
    with pytest.raises(NotFittedError):
        AmortizedJoint().sample({"x": np.zeros((1, N_OBS))})


def test_a_failed_refit_leaves_the_fitted_halves():
    posterior, likelihood = halves(width=8, depth=1)
    est = AmortizedJoint(posterior, likelihood, **TINY).fit(normal_mean())
    before = est.posterior_
    bad = {"mu": np.zeros((20, 1)), "y": np.zeros((20, N_OBS))}   # no "x"
    with pytest.raises(Exception, match="'x'"):
        est.fit(bad)
    assert est.posterior_ is before and hasattr(before, "approximator_")


def test_save_load_round_trip(conjugate_fit, tmp_path):
    _, est = conjugate_fit
    est.save(tmp_path / "pair")
    back = AmortizedJoint.load(tmp_path / "pair", prior={"mu": stats.norm(0, 1)})
    x = {"x": normal_mean().sample(3, random_state=4)["x"]}
    np.testing.assert_allclose(back.log_marginal_likelihood(x, 100, random_state=0)["log_ml"],
                               est.log_marginal_likelihood(x, 100, random_state=0)["log_ml"],
                               rtol=1e-6)
    assert back.get_params()["epochs"] == est.get_params()["epochs"]
    assert back.posterior.get_params()["inference_network"] is not None
    alone = AmortizedPosterior.load(tmp_path / "pair" / "posterior.skabi")
    np.testing.assert_allclose(alone.log_prob(x | {"mu": np.zeros((3, 1))}),
                               est.posterior_.log_prob(x | {"mu": np.zeros((3, 1))}), rtol=1e-6)
    from skabi.exceptions import LoadError

    with pytest.raises(LoadError, match="not a folder written by AmortizedJoint.save"):
        AmortizedJoint.load(tmp_path)


@pytest.mark.parametrize("record", ["/dev/zero", b"\xff\xfe{}", b"[" * 100_000,
                                    b" " * (2 << 20)],
                         ids=["device", "not utf-8", "deeply nested", "too large"])
def test_a_bad_joint_record_is_a_load_error(conjugate_fit, tmp_path, record):
    """joint.json symlinked to /dev/zero was read without bound; bad bytes gave raw
    UnicodeDecode and Recursion errors."""
    import os

    from skabi.exceptions import LoadError

    _, est = conjugate_fit
    est.save(tmp_path / "pair")
    target = tmp_path / "pair" / "joint.json"
    target.unlink()
    if isinstance(record, str):
        os.symlink(record, target)
    else:
        target.write_bytes(record)
    with pytest.raises(LoadError, match="not a folder written by AmortizedJoint.save"):
        AmortizedJoint.load(tmp_path / "pair")
