"""AmortizedLikelihood, AsObservations and the evidence functions (log_likelihood group for
ArviZ's LOO, marginal likelihoods, Bayes factors)."""

import numpy as np
import pytest
from models import NormalMean, likelihood, meta, prior, regression_estimator
from scipy import stats

from skabi import (AmortizedLikelihood, add_log_likelihood, log_bayes_factor,
                   log_marginal_likelihood, make_simulator)
from skabi._arviz import to_arviz
from skabi.adapters import (AsObservations, Concatenate, Constrain, Rename, make_adapter)
from skabi.exceptions import ShapeError
from skabi.networks import CouplingFlow

TINY = dict(inference_network=CouplingFlow(depth=2, subnet_width=16), epochs=2,
            batches_per_epoch=10, batch_size=32, pilot_size=64, random_state=0)


def regression_likelihood_adapter():
    """The tutorial's model read the other way: (x_n, y_n) given (beta, sigma)."""
    return make_adapter(AsObservations(["x", "y"]), Constrain("sigma", lower=0),
                        Concatenate(["x", "y"], into="inference_variables"),
                        Concatenate(["beta", "sigma"], into="inference_conditions"))


def normal_adapter():
    return make_adapter(AsObservations("x"), Rename("x", "inference_variables"),
                        Rename("mu", "inference_conditions"))


@pytest.fixture(scope="module")
def simulator():
    return make_simulator([prior, likelihood], meta_fn=meta)


@pytest.fixture(scope="module")
def fitted(simulator):
    return AmortizedLikelihood(adapter=regression_likelihood_adapter(), **TINY).fit(simulator)


# ------------------------------------------------------------------ AsObservations
def test_as_observations_splits_sets_and_repeats_the_rest():
    batch = {"x": np.arange(6.0).reshape(2, 3), "theta": np.array([[1.0, 2.0], [3.0, 4.0]]),
             "N": 3}
    step = AsObservations("x").fit(batch)
    out = step.transform(batch)
    assert out["x"].shape == (6, 1) and out["N"] == 3
    np.testing.assert_array_equal(out["theta"][:, 0], [1, 1, 1, 3, 3, 3])
    assert step.inverse_transform(out)["x"].shape == (6,)
    ragged = step.transform({"x": [np.ones(2), np.ones(4)], "theta": batch["theta"]})
    np.testing.assert_array_equal(ragged["theta"][:, 0], [1, 1, 3, 3, 3, 3])


def test_as_observations_names_disagreeing_sizes():
    with pytest.raises(ShapeError, match="'y' and 'x'"):
        AsObservations(["x", "y"]).fit({"x": np.zeros((2, 3)), "y": np.zeros((2, 4))})


def test_adapter_records_observation_shapes_and_log_det(simulator):
    adapter = regression_likelihood_adapter()
    sims = simulator.sample(4, random_state=0)
    out, ldj = adapter.fit(sims).transform(sims, log_det_jac=True)
    n = 4 * sims["x"].shape[1]
    assert out["inference_variables"].shape == (n, 2)
    assert out["inference_conditions"].shape == (n, 3) and ldj.shape == (n,)
    assert adapter.inference_variables_ == {"x": (), "y": ()}
    back = adapter.inverse_transform(out["inference_variables"])
    np.testing.assert_allclose(back["y"], sims["y"].ravel(), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ the estimator
def test_fit_sample_log_prob_and_score(fitted, simulator):
    sims = simulator.sample(5, random_state=1)
    n = sims["x"].shape[1]
    per_dataset = fitted.log_prob(sims)
    pointwise = fitted.log_prob(sims, pointwise=True)
    assert per_dataset.shape == (5,) and pointwise.shape == (5, n)
    np.testing.assert_allclose(pointwise.sum(axis=1), per_dataset, rtol=1e-6)
    assert np.isfinite(fitted.score(sims))
    assert fitted.data_names_ == ["x", "y"] and fitted.observation_keys_ == ["x", "y"]
    theta = {"beta": sims["beta"], "sigma": sims["sigma"]}
    draws = fitted.sample(theta, num_samples=3, n_obs=7, random_state=0)
    assert draws["x"].shape == (5, 3, 7) and draws["y"].shape == (5, 3, 7)
    again = fitted.sample(theta, num_samples=3, n_obs=7, random_state=0)
    np.testing.assert_array_equal(draws["y"], again["y"])


def test_ragged_datasets_give_a_list_of_pointwise_values(fitted, simulator):
    a, b = simulator.sample(1, random_state=2), simulator.sample(1, random_state=3)
    datasets = [{k: (v if np.ndim(v) == 0 else v[0]) for k, v in s.items() if k != "N"}
                for s in (a, b)]
    pointwise = fitted.log_prob(datasets, pointwise=True)
    sizes = [len(d["x"]) for d in datasets]
    if sizes[0] != sizes[1]:
        assert isinstance(pointwise, list) and [len(p) for p in pointwise] == sizes


def test_covariates_set_the_number_of_observations():
    """p(y_n | x_n, theta): x is context, given at sample time."""
    def sim_prior(rng):
        return dict(beta=rng.normal(size=2))

    def sim_lik(beta, rng):
        x = rng.normal(size=8)
        return dict(x=x, y=beta[0] + beta[1] * x + 0.1 * rng.normal(size=8))

    sim = make_simulator([sim_prior, sim_lik])
    adapter = make_adapter(AsObservations(["x", "y"]), Rename("y", "inference_variables"),
                           Concatenate(["beta", "x"], into="inference_conditions"))
    lik = AmortizedLikelihood(adapter=adapter, **TINY).fit(sim)
    out = lik.sample({"beta": np.zeros((2, 2)), "x": np.zeros((2, 5))}, num_samples=4)
    assert set(out) == {"y"} and out["y"].shape == (2, 4, 5)


def test_whole_datasets_without_as_observations():
    sim = NormalMean(n_obs=4)
    adapter = make_adapter(Rename("x", "inference_variables"),
                           Rename("mu", "inference_conditions"))
    lik = AmortizedLikelihood(adapter=adapter, **TINY).fit(sim)
    assert lik.observation_keys_ is None
    assert lik.sample({"mu": np.zeros((3, 1))}, num_samples=2)["x"].shape == (3, 2, 4)
    assert lik.log_prob(sim.sample(6, random_state=1)).shape == (6,)
    with pytest.raises(ValueError, match="pointwise=True needs"):
        lik.log_prob(sim.sample(2, random_state=1), pointwise=True)


def test_fit_arrays_with_the_default_adapter():
    sim = NormalMean(n_obs=5)
    bank = sim.sample(200, random_state=0)
    lik = AmortizedLikelihood(**TINY).fit(bank["x"][..., None], bank["mu"])
    assert lik.observation_keys_ == ["x"]
    assert lik.log_prob({"x": bank["x"][:3, :, None], "theta": bank["mu"][:3]}).shape == (3,)


def test_save_load_round_trip(fitted, simulator, tmp_path):
    path = tmp_path / "lik.skabi"
    fitted.save(path)
    back = AmortizedLikelihood.load(path)
    sims = simulator.sample(3, random_state=4)
    np.testing.assert_allclose(back.log_prob(sims), fitted.log_prob(sims), rtol=1e-6)
    assert back.observation_keys_ == ["x", "y"]


def test_grid_search_on_a_bank():
    from sklearn.model_selection import GridSearchCV

    from skabi.bank import SimulationBank

    bank = SimulationBank(NormalMean(n_obs=5).sample(256, random_state=0))
    est = AmortizedLikelihood(adapter=normal_adapter(), **{**TINY, "epochs": 1})
    search = GridSearchCV(est, {"inference_network__depth": [1, 2]}, cv=2).fit(bank)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_errors_before_training(simulator):
    with pytest.raises(TypeError, match="discrete"):
        counts = {"mu": np.ones((64, 1)), "x": np.ones((64, 5), dtype=int)}
        AmortizedLikelihood(adapter=normal_adapter(), **TINY).fit(counts)
    no_theta = make_adapter(AsObservations("x"), Rename("x", "inference_variables"))
    with pytest.raises(ShapeError, match="GIVEN the parameters"):
        AmortizedLikelihood(adapter=no_theta, **TINY).fit(NormalMean())
    late = make_adapter(Rename("mu", "inference_conditions"), AsObservations("x"),
                        Rename("x", "inference_variables"))
    with pytest.raises(ValueError, match="must be the first step"):
        AmortizedLikelihood(adapter=late, **TINY).fit(NormalMean())


def test_sample_needs_the_number_of_observations(fitted):
    with pytest.raises(ValueError, match="n_obs"):
        fitted.sample({"beta": np.zeros((1, 2)), "sigma": np.ones((1, 1))})


# ------------------------------------------------------------------ log_likelihood group
def _normal_posterior_container(n_datasets=1, draws=400, seed=0):
    """Exact posterior draws of NormalMean (tau=1) in a container, with the data."""
    rng = np.random.default_rng(seed)
    x = NormalMean(n_obs=10).sample(n_datasets, random_state=seed)["x"]
    n = x.shape[1]
    mean, sd = x.sum(axis=1) / (n + 1), np.sqrt(1 / (n + 1))
    mu = mean[:, None, None] + sd * rng.normal(size=(n_datasets, draws, 1))
    return to_arviz({"mu": mu}, observed={"x": x}), x


def _normal_log_lik(draws, observed):
    return stats.norm.logpdf(observed["x"][None, :], draws["mu"], 1.0)


def test_loo_with_an_analytic_likelihood():
    import arviz as az

    idata, _ = _normal_posterior_container()
    out = add_log_likelihood(idata, _normal_log_lik)
    assert out.log_likelihood["obs"].shape == (1, 400, 1, 10)
    loo = az.loo(out)
    assert np.isfinite(loo["elpd_loo"]) and np.isfinite(az.waic(out)["elpd_waic"])
    assert set(az.compare({"a": out, "b": out}).index) == {"a", "b"}


def test_loo_with_a_learned_likelihood():
    import arviz as az

    lik = AmortizedLikelihood(adapter=normal_adapter(), **TINY).fit(NormalMean())
    idata, _ = _normal_posterior_container()
    out = add_log_likelihood(idata, lik)
    assert out.log_likelihood["x"].shape == (1, 400, 1, 10)
    assert np.isfinite(az.loo(out)["elpd_loo"])


def test_log_likelihood_errors():
    idata, _ = _normal_posterior_container()
    with pytest.raises(ShapeError, match="expected \\(400, 10\\)"):
        add_log_likelihood(idata, lambda d, o: np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        add_log_likelihood(idata, lambda d, o: np.full((400, 10), -np.inf))
    with pytest.raises(TypeError, match="AmortizedLikelihood or a callable"):
        add_log_likelihood(idata, 3)


# ------------------------------------------------------------------ marginal likelihood
def test_marginal_likelihood_structure_and_prior_errors(simulator, fitted):
    post = regression_estimator().fit(simulator)
    sims = simulator.sample(2, random_state=5)
    pr = {"beta": stats.norm([2.0, 0.0], [3.0, 1.0]), "sigma": stats.gamma(1.0)}
    out = log_marginal_likelihood(post, fitted, sims, pr, num_samples=50, random_state=0)
    assert list(out.columns) == ["log_ml", "mc_se", "ess", "mean_estimate", "spread"]
    assert len(out) == 2 and np.all(np.isfinite(out.to_numpy()))

    def as_callable(draws):
        return sum(pr[k].logpdf(v).reshape(*v.shape[:2], -1).sum(-1) for k, v in draws.items())

    same = log_marginal_likelihood(post, fitted, sims, as_callable, num_samples=50,
                                   random_state=0)
    np.testing.assert_allclose(same["log_ml"], out["log_ml"])
    with pytest.raises(ValueError, match="needs the prior density"):
        log_marginal_likelihood(post, fitted, sims, None)
    with pytest.raises(ValueError, match="no density for \\['sigma'\\]"):
        log_marginal_likelihood(post, fitted, sims, {"beta": pr["beta"]})


def test_exact_networks_give_the_exact_evidence():
    """With the exact posterior and likelihood plugged in, every weight is log p(x)."""
    class Exact:
        def __init__(self, model):
            self.model = model

        def log_prob(self, batch):
            return stats.norm.logpdf(batch["x"], batch["mu"], 1.0).sum(axis=1)

    model = NormalMean(n_obs=6)
    x = model.sample(3, random_state=0)["x"]
    n = x.shape[1]
    mean, sd = x.sum(axis=1) / (n + 1), np.sqrt(1 / (n + 1))
    draws = mean[:, None] + sd * np.random.default_rng(0).normal(size=(3, 100))
    log_q = stats.norm.logpdf(draws, mean[:, None], sd)
    log_p = stats.norm.logpdf(draws)
    log_lik = np.stack([Exact(model).log_prob({"x": np.repeat(x[i:i + 1], 100, 0),
                                               "mu": draws[i][:, None]}) for i in range(3)])
    w = log_p + log_lik - log_q
    np.testing.assert_allclose(w, np.repeat(model.log_evidence(x)[:, None], 100, 1))


def test_log_bayes_factor():
    import pandas as pd

    a = pd.DataFrame({"log_ml": [-1.0, -2.0], "mc_se": [0.3, 0.0]})
    b = pd.DataFrame({"log_ml": [-2.0, -1.0], "mc_se": [0.4, 0.0]})
    out = log_bayes_factor(a, b)
    np.testing.assert_allclose(out["log_bf"], [1.0, -1.0])
    np.testing.assert_allclose(out["mc_se"], [0.5, 0.0])
    with pytest.raises(ShapeError):
        log_bayes_factor(a, b.iloc[:1])


def test_sample_returns_the_container_on_request(fitted, simulator):
    """``return_type`` as for the posterior: the synthetic data in ``posterior_predictive``,
    what they were drawn from in ``constant_data``; "numpy" (default) unchanged."""
    sims = simulator.sample(2, random_state=1)
    theta = {"beta": sims["beta"], "sigma": sims["sigma"]}
    numpy = fitted.sample(theta, num_samples=3, n_obs=7, random_state=0)
    idata = fitted.sample(theta, num_samples=3, n_obs=7, random_state=0, return_type="arviz")
    for name in ("x", "y"):
        pp = idata.posterior_predictive[name].transpose("chain", "dataset", "draw", ...)
        assert pp.shape[:3] == (1, 2, 3)
        np.testing.assert_array_equal(pp.values[0], numpy[name])
    assert set(theta) <= set(idata.constant_data.data_vars)
    with pytest.raises(ValueError, match="return_type"):
        fitted.sample(theta, num_samples=3, n_obs=7, return_type="xarray")
