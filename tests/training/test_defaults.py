"""Training parameters left at "auto": online values with a simulator, offline values with a
bank (issue 19), and the weight averaging they switch on."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from models import Gaussian, tiny_estimator
from skabi.training import defaults
from skabi.training.fitting import TrainingSettings, settings_and_source
from skabi.training.loop import WeightAverage, make_optimizer, run_epochs

AUTO_NAMES = list(defaults.ONLINE)


def settings_for(X, **params):
    est = tiny_estimator(**{**{k: "auto" for k in AUTO_NAMES}, **params})
    return settings_and_source(est.get_params(deep=False), X)


def test_online_auto_values_are_the_online_table():
    settings, _ = settings_for(Gaussian())
    for name, value in defaults.ONLINE.items():
        assert getattr(settings, name) == value, name


def test_a_bank_gets_the_offline_table_with_a_tenth_held_out():
    bank = Gaussian().sample(500, random_state=0)
    settings, source = settings_for(bank)
    assert len(source.bank) == 450                       # 50 held out
    assert len(settings.validation_sims["theta"]) == 50
    assert settings.early_stopping is True
    assert settings.batch_size == 45                     # a tenth of 450 (below 200)
    assert settings.epochs == 500                        # 8000 steps of 10 batches: 500 at most
    assert settings.warmup_epochs == 400                 # the warm-up: 4000 steps
    for name in ("learning_rate", "lr_schedule", "patience", "weight_averaging"):
        assert getattr(settings, name) == defaults.BANK[name], name


def test_large_banks_batch_200_and_tiny_banks_are_not_split():
    settings, _ = settings_for(Gaussian(n_obs=2).sample(5000, random_state=0))
    assert settings.batch_size == 200 and settings.epochs == 348   # ceil(8000 / 23 steps)
    assert settings.warmup_epochs == 174                            # ceil(4000 / 23 steps)
    settings, _ = settings_for(Gaussian(n_obs=2).sample(50_000, random_state=0))
    assert (settings.epochs, settings.warmup_epochs) == (100, 20)   # 225 steps: the floors
    settings, _ = settings_for(Gaussian(n_obs=2).sample(17_000, random_state=0))
    assert (settings.epochs, settings.warmup_epochs) == (104, 52)   # 77 steps: 8000 / 77
    settings, source = settings_for(Gaussian().sample(12, random_state=0))
    assert settings.validation_sims is None and settings.early_stopping is False
    assert settings.epochs == defaults.ONLINE["epochs"]  # no early stopping: no long run
    assert len(source.bank) == 12 and settings.batch_size == 16
    assert settings.warmup_epochs is None                 # the warm-up takes epochs


def test_values_given_are_used_as_given():
    bank = Gaussian().sample(300, random_state=0)
    settings, source = settings_for(bank, learning_rate=1e-3, batch_size=8, patience=3,
                                    validation_sims=None, weight_averaging=None)
    assert (settings.learning_rate, settings.batch_size, settings.patience) == (1e-3, 8, 3)
    assert settings.validation_sims is None and settings.early_stopping is False
    assert settings.weight_averaging is None and len(source.bank) == 300
    with pytest.raises(ValueError, match="early_stopping=True needs validation_sims"):
        settings_for(bank, validation_sims=None, early_stopping=True)


def test_online_fit_with_auto_is_the_fit_with_the_online_numbers():
    auto = tiny_estimator(epochs="auto", batch_size="auto", learning_rate="auto",
                          lr_schedule="auto", validation_sims="auto", early_stopping="auto",
                          patience="auto", weight_averaging="auto", batches_per_epoch=2)
    explicit = tiny_estimator(epochs=50, batch_size=64, learning_rate=2e-3, lr_schedule="cosine",
                              validation_sims=None, early_stopping=False, patience=5,
                              weight_averaging=None, batches_per_epoch=2)
    a, b = auto.fit(Gaussian()), explicit.fit(Gaussian())
    np.testing.assert_array_equal(a.history_["loss"], b.history_["loss"])
    assert auto.get_params()["learning_rate"] == "auto"   # fit changes no parameter


def test_bank_fit_with_defaults_validates_stops_and_keeps_auto_params():
    bank = Gaussian().sample(300, random_state=0)
    est = tiny_estimator(epochs="auto", batch_size="auto", patience=2).fit(bank)
    hist = est.history_
    assert hist["val_loss"].notna().all()
    assert len(hist) < 400                                # early stopping ended it
    assert hist["lr"].nunique() == 1                      # constant learning rate
    assert est.n_simulations_ == len(hist) * 270
    assert est.get_params()["epochs"] == "auto"


def test_an_estimator_names_its_own_bank_column():
    """The bank column is data the estimator hands over: another table replaces BANK, its
    values are used as they are (no batch or epoch scaling), and online nothing moves."""
    bank = Gaussian().sample(500, random_state=0)
    est = tiny_estimator(**{k: "auto" for k in AUTO_NAMES})
    params = est.get_params(deep=False)
    settings, source = settings_and_source(params, bank, bank_defaults=defaults.BANK_ONLINE)
    for name, value in defaults.ONLINE.items():
        assert getattr(settings, name) == value, name
    assert len(source.bank) == 500 and settings.auto == set(AUTO_NAMES)
    online, _ = settings_and_source(params, Gaussian(), bank_defaults=defaults.BANK_ONLINE)
    assert online == settings_for(Gaussian())[0]


@pytest.mark.parametrize("name", ["point", "classifier", "multilevel"])
def test_point_classifier_and_multilevel_auto_is_what_they_trained_with(name):
    """Issue 30: their parameters default to "auto" like the posterior's, and "auto" gives
    the values they had, online and on a bank (``benchmarks/family_defaults.py`` found no
    bank column that made no problem worse); the other estimators keep BANK."""
    import skabi

    cls = {"point": skabi.AmortizedPointEstimator, "classifier": skabi.AmortizedModelComparison,
           "multilevel": skabi.AmortizedMultilevelPosterior}[name]
    params = cls().get_params(deep=False)
    assert all(params[k] == "auto" for k in AUTO_NAMES)
    assert cls._bank_defaults is defaults.BANK_ONLINE
    assert defaults.BANK_ONLINE == dict(epochs=50, batch_size=64, learning_rate=2e-3,
                                        lr_schedule="cosine", validation_sims=None,
                                        early_stopping=False, patience=5,
                                        weight_averaging=None)
    for other in (skabi.AmortizedPosterior, skabi.AmortizedLikelihood, skabi.AmortizedJoint):
        assert other._bank_defaults is None


def test_point_estimator_on_arrays_with_auto_is_the_fit_with_the_old_numbers():
    from skabi import AmortizedPointEstimator
    from skabi.networks import DenseHead

    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 1))
    X = y + rng.normal(size=(200, 3))
    small = dict(head=DenseHead(width=8, depth=1), batches_per_epoch=2, random_state=0)
    auto = AmortizedPointEstimator(epochs=3, **small).fit(X, y)
    old = AmortizedPointEstimator(epochs=3, batch_size=64, learning_rate=2e-3,
                                  lr_schedule="cosine", validation_sims=None,
                                  early_stopping=False, patience=5, weight_averaging=None,
                                  **small).fit(X, y)
    np.testing.assert_array_equal(auto.history_["loss"], old.history_["loss"])
    assert auto.history_["val_loss"].isna().all()


@pytest.mark.parametrize("bad", ["fast", -0.5, 1.0])
def test_bad_weight_averaging_is_refused_before_training(bad):
    est = tiny_estimator(weight_averaging=bad)
    with pytest.raises(ValueError, match="weight_averaging"):
        est.fit(Gaussian())
    assert not hasattr(est, "history_")


def test_weight_average_is_the_exponential_moving_average_and_swap_restores():
    p = torch.nn.Parameter(torch.zeros(3))
    avg = WeightAverage([p], decay=0.5)
    expected = torch.zeros(3)
    for value in (1.0, 2.0, 4.0):
        with torch.no_grad():
            p.fill_(value)
        avg.update()
        expected = 0.5 * expected + 0.5 * value
    assert torch.equal(avg.average[0], expected)
    raw = p.detach().clone()
    avg.swap()
    assert torch.equal(p.detach(), expected) and avg.swapped
    avg.swap()
    assert torch.equal(p.detach(), raw) and not avg.swapped


class _Quadratic(torch.nn.Module):
    """Loss ``|w - target|^2``: each step moves w towards the target (Adam at learning rate
    0.01: about 0.01 a step, so 30 steps stay well short of it)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(4))

    def forward(self, batch):
        return ((self.w - batch["target"]) ** 2).sum()


class _Batches:
    steps_per_epoch = 10

    def epoch(self, i):
        return [{"target": torch.ones(4)}] * self.steps_per_epoch


def _train(weight_averaging, validation=None, early_stopping=False):
    torch.manual_seed(0)
    model = _Quadratic()
    opt, sched = make_optimizer(model, learning_rate=0.01, weight_decay=0.0,
                                lr_schedule="constant", total_steps=30)
    run_epochs(model, opt, sched, _Batches(), epochs=3, validation=validation,
               early_stopping=early_stopping, weight_averaging=weight_averaging)
    return model.w.detach().clone()


def test_training_ends_on_the_averaged_weights():
    raw = _train(None)
    assert torch.equal(_train(0.0), raw)            # decay 0: the average is the last step
    lagging = _train(0.9)
    assert (lagging < raw).all() and (lagging > 0).all()   # behind the raw weights
    assert torch.allclose(_train(0.999999), torch.zeros(4), atol=1e-3)  # barely moves
    validated = _train(0.9, validation=[{"target": torch.ones(4)}], early_stopping=True)
    assert torch.equal(validated, lagging)          # the best of the averaged weights


def test_settings_dataclass_defaults_leave_other_estimators_unchanged():
    fields = {f.name: f.default for f in dataclasses.fields(TrainingSettings)}
    assert fields["weight_averaging"] is None


# ------------------------------------------------------------------ the linear warm-up
def _linear_gaussian(n, seed, dim=3):
    """theta ~ N(0, I), x = theta + N(0, I): the exact posterior is N(x / 2, I / 2)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(n, dim))
    return {"theta": theta, "x": theta + rng.normal(size=(n, dim))}


def _linear_gaussian_simulator(dim=3):
    from skabi import make_simulator

    return make_simulator([lambda rng: dict(theta=rng.normal(size=dim)),
                           lambda theta, rng: dict(x=theta + rng.normal(size=dim))])


def _kl_to_exact(est, dim=3):
    from scipy import stats

    sims = _linear_gaussian(4000, 99, dim)
    exact = stats.norm(sims["x"] / 2, np.sqrt(0.5)).logpdf(sims["theta"]).sum(1)
    return float(np.mean(exact - est.log_prob(sims)))


def _flow_posterior(warmup, **params):
    from skabi import AmortizedPosterior
    from skabi.networks import CouplingFlow

    return AmortizedPosterior(inference_network=CouplingFlow(
        depth=2, subnet_width=32, subnet_depth=2, transform="spline", linear_warmup=warmup),
        random_state=0, **params)


@pytest.mark.slow
def test_linear_warmup_brings_a_small_bank_close_to_the_exact_posterior():
    """On a linear Gaussian bank of 1000 the warm-up's linear-Gaussian fit is near exact,
    and the flow trained from it keeps it: a KL several times below the flow without it."""
    bank = _linear_gaussian(1000, 0)
    warm = _flow_posterior("auto").fit(bank["x"], bank["theta"])
    cold = _flow_posterior(False).fit(bank["x"], bank["theta"])
    hist = warm.history_
    k = int((hist["epoch"] < 0).sum())
    assert k > 0 and list(hist["epoch"][:k]) == list(range(-k, 0))   # the warm-up first
    assert list(hist["epoch"][k:]) == list(range(len(hist) - k))
    assert hist["val_loss"][:k].idxmin() > 5                     # it kept improving
    assert warm.n_simulations_ == (len(hist) - k) * 900          # main epochs only
    assert (cold.history_["epoch"] >= 0).all()
    kl_warm, kl_cold = _kl_to_exact(warm), _kl_to_exact(cold)
    assert kl_warm < 0.05 and kl_warm < kl_cold / 2, (kl_warm, kl_cold)


def test_no_warmup_online_with_a_summary_network_or_when_continuing():
    from skabi.adapters import Rename, make_adapter

    bank = _linear_gaussian(300, 0)
    online = _flow_posterior("auto", epochs=2, batches_per_epoch=3, adapter=make_adapter(
        Rename("theta", "inference_variables"), Rename("x", "inference_conditions")))
    online.fit(_linear_gaussian_simulator())
    assert (online.history_["epoch"] >= 0).all()
    assert not bool(online.inference_network_.lin_active)
    summary = tiny_estimator(epochs=2).fit(Gaussian().sample(200, random_state=0))
    assert (summary.history_["epoch"] >= 0).all()
    est = _flow_posterior("auto", epochs=3).fit(bank["x"], bank["theta"])
    k = int((est.history_["epoch"] < 0).sum())
    assert k > 0 and bool(est.inference_network_.lin_active)
    est.set_params(warm_start=True).fit(bank["x"], bank["theta"])
    assert int((est.history_["epoch"] < 0).sum()) == k                 # no second warm-up
    assert list(est.history_["epoch"][k:]) == list(range(len(est.history_) - k))
    forced = _flow_posterior(True, epochs=2, batches_per_epoch=3, adapter=online.adapter,
                             validation_sims=64, early_stopping=True)
    forced.fit(_linear_gaussian_simulator())
    assert (forced.history_["epoch"] < 0).any()                        # True: online too
    unstoppable = _flow_posterior("auto", epochs=3, validation_sims=None)
    unstoppable.fit(bank["x"], bank["theta"])    # no validation: nothing would keep the fit
    assert (unstoppable.history_["epoch"] >= 0).all()


def test_the_warmup_has_its_own_step_budget(monkeypatch):
    """epochs="auto" with a bank caps the linear warm-up at BANK_WARMUP_STEPS and the
    training proper at BANK_STEPS, each in whole epochs within its bounds."""
    monkeypatch.setattr(defaults, "BANK_EPOCHS", (1, 500))
    monkeypatch.setattr(defaults, "BANK_WARMUP_EPOCHS", (1, 500))
    monkeypatch.setattr(defaults, "BANK_STEPS", 50)
    monkeypatch.setattr(defaults, "BANK_WARMUP_STEPS", 20)
    bank = _linear_gaussian(300, 0)              # 270 rows, batches of 27: 10 per epoch
    est = _flow_posterior("auto", patience=100).fit(bank["x"], bank["theta"])
    epochs = est.history_["epoch"]
    assert (int((epochs < 0).sum()), int((epochs >= 0).sum())) == (2, 5)
    given = _flow_posterior("auto", epochs=3, patience=100).fit(bank["x"], bank["theta"])
    assert int((given.history_["epoch"] < 0).sum()) == 3      # epochs given: the warm-up too


def test_ctrl_c_in_the_warmup_ends_the_fit_and_leaves_the_estimator():
    """The warm-up is no fit of its own: an interrupt there fails the whole fit (the
    estimator keeps its previous fit) instead of training on from a half warm-up."""
    import skabi.training.sources as sources

    bank = _linear_gaussian(300, 0)
    est = _flow_posterior("auto", epochs=2).fit(bank["x"], bank["theta"])
    before = est.approximator_
    original = sources.MemorySource.epoch

    def interrupted(self, epoch):
        yield from []
        raise KeyboardInterrupt

    sources.MemorySource.epoch = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            est.fit(bank["x"], bank["theta"])
    finally:
        sources.MemorySource.epoch = original
    assert est.approximator_ is before


def test_warmup_only_for_fixed_conditions_that_validation_can_keep():
    """Learned summaries (a summary network, or a multilevel model's global summaries,
    which has no ``fixed_conditions``) and fits without early stopping never warm up."""
    from types import SimpleNamespace

    from skabi.networks import CouplingFlow
    from skabi.training.warmup import warmup_flows

    flow = CouplingFlow(depth=1, subnet_width=4).build(2, 2)
    bank, online = SimpleNamespace(online=False), SimpleNamespace(online=True)
    stops = SimpleNamespace(early_stopping=True, validation_sims=[{}])
    assert warmup_flows(SimpleNamespace(inference_network=flow, fixed_conditions=True),
                        bank, stops) == [flow]
    assert warmup_flows(SimpleNamespace(inference_network=flow, fixed_conditions=True),
                        online, stops) == []
    assert warmup_flows(SimpleNamespace(inference_network=flow, fixed_conditions=False),
                        bank, stops) == []
    assert warmup_flows(SimpleNamespace(inference_network=flow), bank, stops) == []
    assert warmup_flows(SimpleNamespace(inference_network=flow, fixed_conditions=True), bank,
                        SimpleNamespace(early_stopping=False, validation_sims=[{}])) == []


def _recording_run_epochs(monkeypatch):
    """Record the rows of every training proper (the warm-up's own run is not recorded)."""
    from skabi.training import fitting

    calls = []
    original = fitting.run_epochs

    def run_epochs(*args, **kwargs):
        rows, best_state = original(*args, **kwargs)
        calls.append(rows)
        return rows, best_state

    monkeypatch.setattr(fitting, "run_epochs", run_epochs)
    return calls


def test_select_keeps_the_training_with_the_lower_validation_loss(monkeypatch):
    """linear_warmup="select" trains the flow from the warm-up and again from the identity
    start on the same validation simulations, and keeps the better: on a linear Gaussian
    bank the warm-up's (its history and switched-on linear layer)."""
    calls = _recording_run_epochs(monkeypatch)
    bank = _linear_gaussian(1000, 0)
    est = _flow_posterior("select", epochs=30).fit(bank["x"], bank["theta"])
    assert len(calls) == 2                                  # from the warm-up, then cold
    hist = est.history_
    k = int((hist["epoch"] < 0).sum())
    assert k > 0 and bool(est.inference_network_.lin_active)
    best_warm = float(hist["val_loss"].min())
    best_cold = min(row["val_loss"] for row in calls[1])
    assert best_warm < best_cold
    assert list(hist["epoch"][k:]) == [row["epoch"] for row in calls[0]]
    assert est.n_simulations_ == len(calls[0]) * 900


def test_select_keeps_the_cold_training_when_it_validates_better(monkeypatch):
    from skabi.training import fitting

    calls = _recording_run_epochs(monkeypatch)
    best = fitting._best
    # the first training (its rows hold the warm-up's, epochs below 0) loses
    monkeypatch.setattr(fitting, "_best", lambda rows: math.inf if any(
        row["epoch"] < 0 for row in rows) else best(rows))
    bank = _linear_gaussian(300, 0)
    est = _flow_posterior("select", epochs=4, patience=100).fit(bank["x"], bank["theta"])
    assert len(calls) == 2
    hist = est.history_
    assert (hist["epoch"] >= 0).all() and len(hist) == len(calls[1]) == 4
    assert list(hist["val_loss"]) == [row["val_loss"] for row in calls[1]]
    assert not bool(est.inference_network_.lin_active)
    assert not any(p.requires_grad for p in est.inference_network_.linear_parameters())
    assert est.n_simulations_ == 4 * 270
    assert np.isfinite(est.log_prob({"theta": bank["theta"][:5], "x": bank["x"][:5]})).all()


def test_select_trains_once_where_no_warmup_applies(monkeypatch):
    calls = _recording_run_epochs(monkeypatch)
    bank = _linear_gaussian(300, 0)
    est = _flow_posterior("select", epochs=2, validation_sims=None)
    est.fit(bank["x"], bank["theta"])                # no validation: no warm-up, no choice
    assert len(calls) == 1 and (est.history_["epoch"] >= 0).all()
