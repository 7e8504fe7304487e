"""Models shared by the tests: the tutorial's linear regression and an analytic Gaussian."""

import numpy as np
from scipy import stats

from skabi import Simulator


def prior(rng):
    return dict(beta=rng.normal([2.0, 0.0], [3.0, 1.0]), sigma=rng.gamma(1.0, 1.0))


def likelihood(beta, sigma, N, rng):
    x = rng.normal(0.0, 1.0, size=N)
    return dict(x=x, y=rng.normal(beta[0] + beta[1] * x, sigma))


def meta(rng):
    return dict(N=int(rng.integers(5, 15)))


class Gaussian(Simulator):
    """theta ~ N(0, I_d); x_n ~ N(theta, I), n = 1..n_obs. Posterior N(sum x / (n+1), I / (n+1))."""

    def __init__(self, n_obs=20, dim=2):
        self.n_obs = n_obs
        self.dim = dim

    def simulate(self, batch_size, rng):
        theta = rng.normal(size=(batch_size, self.dim))
        x = theta[:, None, :] + rng.normal(size=(batch_size, self.n_obs, self.dim))
        return {"theta": theta, "x": x}

    def posterior(self, x):
        """Exact posterior means and sd for data x (B, n, d)."""
        n = x.shape[1]
        return x.sum(axis=1) / (n + 1), np.sqrt(1.0 / (n + 1))


def tutorial_steps():
    """The steps of the BayesFlow linear-regression tutorial's adapter (new instances)."""
    from skabi.adapters import AsSet, Broadcast, Concatenate, Constrain, Rename, Sqrt

    return [
        Broadcast("N", to="x"),
        AsSet(["x", "y"]),
        Constrain("sigma", lower=0),
        Sqrt("N"),
        Concatenate(["beta", "sigma"], into="inference_variables"),
        Concatenate(["x", "y"], into="summary_variables"),
        Rename("N", "inference_conditions"),
    ]


def tutorial_adapter(**kwargs):
    """The adapter of the BayesFlow linear-regression tutorial (``kwargs``: ``dtype``)."""
    from skabi import make_adapter

    return make_adapter(*tutorial_steps(), **kwargs)


def gaussian_adapter():
    """theta is inferred from the set x (the Gaussian simulator)."""
    from skabi import make_adapter
    from skabi.adapters import Rename

    return make_adapter(Rename("theta", "inference_variables"), Rename("x", "summary_variables"))


def tiny_estimator(**kwargs):
    """A seconds-fast AmortizedPosterior for the Gaussian simulator (theta, x)."""
    from skabi import AmortizedPosterior
    from skabi.networks import CouplingFlow, DeepSet

    params = dict(adapter=gaussian_adapter(),
                  inference_network=CouplingFlow(depth=2, subnet_width=16),
                  summary_network=DeepSet(summary_dim=4, width=16), epochs=2,
                  batches_per_epoch=5, batch_size=32, pilot_size=64, random_state=0)
    params.update(kwargs)
    return AmortizedPosterior(**params)


def regression_estimator(**kwargs):
    """A seconds-fast AmortizedPosterior for the tutorial's regression (one epoch)."""
    return tiny_estimator(**{"adapter": tutorial_adapter(), "epochs": 1, **kwargs})


class NormalMean:
    """mu ~ N(0, tau^2); x_n ~ N(mu, 1), n = 1..N: conjugate, with known evidence."""

    def __init__(self, n_obs=10, tau=1.0):
        self.n_obs, self.tau = n_obs, tau

    def sample(self, batch_size, random_state=None):
        rng = np.random.default_rng(random_state)
        mu = rng.normal(0.0, self.tau, size=(batch_size, 1))
        return {"mu": mu, "x": mu + rng.normal(size=(batch_size, self.n_obs))}

    def log_evidence(self, x):
        n = x.shape[1]
        cov = np.eye(n) + self.tau ** 2
        return stats.multivariate_normal(np.zeros(n), cov).logpdf(x)
