"""Importance sampling with the amortized posterior as the proposal (skabi.importance)."""

import warnings

import numpy as np
import pytest
from models import NormalMean
from scipy import stats
from sklearn.exceptions import NotFittedError

from skabi import AmortizedPosterior, importance_sample, log_marginal_likelihood
from skabi.adapters import Rename, make_adapter
from skabi.exceptions import ShapeError
from skabi.importance import proposal_weights, psis
from skabi.networks import CouplingFlow

N_OBS = 8
PRIOR = {"mu": stats.norm(0, 1)}


def normal_log_lik(draws, observed, scale=1.0):
    return stats.norm.logpdf(observed["x"][None, :], draws["mu"], scale)


@pytest.fixture(scope="module")
def rough():
    """A posterior network after one short epoch: means off by up to 7 posterior sds,
    sds three times too wide (a poor but covering proposal)."""
    model = NormalMean(n_obs=N_OBS)
    est = AmortizedPosterior(
        adapter=make_adapter(Rename("mu", "inference_variables"),
                             Rename("x", "inference_conditions")),
        inference_network=CouplingFlow(depth=2, subnet_width=16), epochs=1,
        batches_per_epoch=10, batch_size=32, random_state=0)
    return model, est.fit(model)


def exact(x):
    precision = 1 + x.shape[1]
    return x.sum(axis=1) / precision, precision ** -0.5


def test_resampling_corrects_a_rough_posterior_network(rough):
    model, est = rough
    x = model.sample(4, random_state=3)["x"]
    mean, sd = exact(x)
    raw = est.sample({"x": x}, 2000, random_state=0).posterior["mu"].values[0]
    assert np.max(np.abs(raw.mean(axis=0) - mean) / sd) > 2     # the network is poor
    out = importance_sample(est, normal_log_lik, {"x": x}, PRIOR, 2000, proposals=4,
                            random_state=0)
    draws = out.posterior["mu"].values[0]
    assert draws.shape == (2000, 4)
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - mean) / sd, 0.25)
    np.testing.assert_allclose(draws.std(axis=0) / sd, 1.0, atol=0.1)
    stats_ = out.sample_stats
    assert set(stats_.data_vars) == {"pareto_k", "ess", "log_ml"}
    assert np.all(stats_["pareto_k"].values < 0.7) and np.all(stats_["ess"].values > 100)
    np.testing.assert_allclose(stats_["log_ml"].values, model.log_evidence(x), atol=0.15)
    assert "observed_data" in out.children if hasattr(out, "children") else \
        "observed_data" in out.groups()


def test_weights_are_prior_plus_likelihood_minus_proposal(rough):
    model, est = rough
    x = model.sample(2, random_state=4)["x"]
    draws, log_w, _ = proposal_weights(est, normal_log_lik, {"x": x}, PRIOR, num_samples=50,
                                       random_state=1)
    mu = draws["mu"][..., 0]                                   # (K, S)
    log_q = est.sample({"x": x}, 50, random_state=1).sample_stats["log_q"].values[0].T
    expected = (stats.norm.logpdf(mu) + stats.norm.logpdf(x[:, None, :], mu[..., None]).sum(-1)
                - log_q)
    np.testing.assert_allclose(log_w, expected, rtol=1e-5, atol=1e-5)
    # the marginal likelihood reads the same weights
    ml = log_marginal_likelihood(est, normal_log_lik, {"x": x}, PRIOR, num_samples=50,
                                 random_state=1)
    top = log_w.max(axis=1, keepdims=True)
    np.testing.assert_allclose(ml["log_ml"], np.log(np.exp(log_w - top).mean(1)) + top[:, 0])


def test_draws_outside_the_prior_support_get_no_weight(rough):
    model, est = rough
    x = model.sample(2, random_state=5)["x"] * 0.0 + 0.05     # posterior around 0
    half = {"mu": stats.halfnorm()}
    out = importance_sample(est, normal_log_lik, {"x": x}, half, 500, random_state=0)
    assert np.all(out.posterior["mu"].values >= 0)


def test_a_proposal_much_wider_than_the_posterior_warns(rough):
    model, est = rough
    x = model.sample(2, random_state=6)["x"]

    def sharp(draws, observed):               # a likelihood 100 times narrower
        return normal_log_lik(draws, observed, scale=0.01)

    with pytest.warns(UserWarning, match="Pareto k above 0.7"):
        out = importance_sample(est, sharp, {"x": x}, PRIOR, 200, random_state=0)
    assert np.all(out.sample_stats["pareto_k"].values > 0.7)


def test_psis_treats_minus_infinity_as_zero_weight():
    log_w = np.random.default_rng(0).normal(size=(2, 400))
    log_w[0, :100] = -np.inf
    smoothed, k = psis(log_w)
    np.testing.assert_allclose(np.exp(smoothed).sum(axis=1), 1.0)
    assert np.all(np.exp(smoothed[0, :100]) < 1e-300) and k.shape == (2,)


def test_bad_input_is_refused(rough):
    model, est = rough
    x = {"x": model.sample(2, random_state=7)["x"]}
    with pytest.raises(ValueError, match="needs the prior density"):
        importance_sample(est, normal_log_lik, x, None)
    with pytest.raises(TypeError, match="fitted AmortizedPosterior"):
        importance_sample(object(), normal_log_lik, x, PRIOR)
    with pytest.raises(NotFittedError):
        importance_sample(AmortizedPosterior(), normal_log_lik, x, PRIOR)
    with pytest.raises(TypeError, match="AmortizedLikelihood or a callable"):
        importance_sample(est, 3, x, PRIOR)
    with pytest.raises(ShapeError, match="expected \\(40, 8\\)"):
        importance_sample(est, lambda d, o: np.zeros(3), x, PRIOR, 10)
    with pytest.raises(ValueError, match="num_samples"):
        importance_sample(est, normal_log_lik, x, PRIOR, 0)
    with pytest.raises(ValueError, match="at least 25 proposals"):
        importance_sample(est, normal_log_lik, x, PRIOR, 5)          # 4 x 5 proposals
    with pytest.raises(TypeError, match="AmortizedLikelihood or a callable"):
        importance_sample(est, est, x, PRIOR)       # a posterior is not a likelihood
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="prior density or the likelihood is 0"):
            importance_sample(est, normal_log_lik, x, {"mu": stats.uniform(50, 1)}, 10)


def test_the_marginal_likelihood_counts_zero_prior_density_as_zero_weight(rough):
    """A half-normal prior gives draws below 0 weight 0: both functions give the same
    log p(x) instead of an error."""
    model, est = rough
    x = {"x": model.sample(2, random_state=5)["x"] * 0.0 + 0.05}
    half = {"mu": stats.halfnorm()}
    out = log_marginal_likelihood(est, normal_log_lik, x, half, num_samples=400,
                                  random_state=3)
    _, log_w, _ = proposal_weights(est, normal_log_lik, x, half, num_samples=400,
                                   random_state=3)
    assert np.isinf(log_w).any() and np.all(np.isfinite(out.to_numpy()))
    top = log_w.max(axis=1, keepdims=True)
    np.testing.assert_allclose(out["log_ml"], np.log(np.exp(log_w - top).mean(1)) + top[:, 0])
