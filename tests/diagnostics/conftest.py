"""Shared fixtures: an analytic Gaussian model with exact posterior draws."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def gaussian_model(n_datasets, n_draws, *, seed, scale=1.0, shift=0.0, n_obs=10):
    """theta ~ N(0, 1), x_n ~ N(theta, 1): posterior N(sum x / (n + 1), 1 / (n + 1)).

    Returns draws (K, S) with the posterior sd multiplied by ``scale`` and the mean moved by
    ``shift`` posterior sds, the true values (K,) and the data (K, n_obs).
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n_datasets)
    x = theta[:, None] + rng.normal(size=(n_datasets, n_obs))
    mean = x.sum(axis=1) / (n_obs + 1)
    sd = np.sqrt(1 / (n_obs + 1))
    draws = mean[:, None] + sd * (shift + scale * rng.normal(size=(n_datasets, n_draws)))
    return draws, theta, x


@pytest.fixture(scope="session")
def gaussian():
    """The :func:`gaussian_model` factory (fixtures, not imports: conftest names clash)."""
    return gaussian_model


@pytest.fixture(scope="session")
def exact_gaussian():
    return gaussian_model(500, 200, seed=1)


@pytest.fixture
def regression_inputs():
    """Small beta (2,) / sigma (1,) problem in the tutorial's shapes."""
    rng = np.random.default_rng(3)
    K, S = 40, 100
    beta = rng.normal(size=(K, 2))
    sigma = rng.gamma(2.0, 1.0, size=(K, 1))
    estimates = {
        "beta": beta[:, None, :] + 0.3 * rng.normal(size=(K, S, 2)),
        "sigma": sigma[:, None, :] * np.exp(0.1 * rng.normal(size=(K, S, 1))),
    }
    targets = {"beta": beta, "sigma": sigma}
    return estimates, targets
