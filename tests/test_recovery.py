"""Statistical tests: a short training recovers the analytic Gaussian posterior."""

import numpy as np
import pytest

from models import Gaussian, gaussian_adapter
from skabi import AmortizedPosterior
from skabi.networks import CouplingFlow, DeepSet


@pytest.fixture(scope="module")
def trained():
    sim = Gaussian(n_obs=20, dim=2)
    est = AmortizedPosterior(
        adapter=gaussian_adapter(),
        inference_network=CouplingFlow(depth=4, subnet_width=64),
        summary_network=DeepSet(summary_dim=4, width=64),
        epochs=12, batches_per_epoch=50, batch_size=64, learning_rate=1e-3, random_state=0,
    )
    return est.fit(sim), sim


@pytest.mark.slow
def test_recovers_posterior_means_and_sds(trained):
    est, sim = trained
    data = sim.sample(200, random_state=2024)
    draws = est.sample(data, num_samples=500, return_type="numpy")["theta"]   # (200, 500, 2)
    mean, sd = sim.posterior(data["x"])                                       # sd = 1/sqrt(21)
    # Posterior means within 0.35 exact posterior sds (RMSE over datasets), sds within 20%.
    rmse = np.sqrt(np.mean((draws.mean(axis=1) - mean) ** 2))
    assert rmse < 0.35 * sd, rmse / sd
    ratio = draws.std(axis=1).mean() / sd
    assert 0.8 < ratio < 1.2, ratio


@pytest.mark.slow
def test_score_close_to_exact_log_posterior(trained):
    est, sim = trained
    data = sim.sample(500, random_state=7)
    mean, sd = sim.posterior(data["x"])
    exact = np.mean(np.sum(-0.5 * ((data["theta"] - mean) / sd) ** 2
                           - np.log(sd * np.sqrt(2 * np.pi)), axis=1))
    assert est.score(data) == pytest.approx(exact, abs=0.25)
