import numpy as np
import pytest


def _prior(rng):
    return dict(beta=rng.normal([2.0, 0.0], [3.0, 1.0]), sigma=rng.gamma(1.0, 1.0))


def _likelihood(beta, sigma, N, rng):
    x = rng.normal(0.0, 1.0, size=N)
    return dict(x=x, y=rng.normal(beta[0] + beta[1] * x, sigma))


def _meta(rng):
    return dict(N=int(rng.integers(5, 15)))


@pytest.fixture
def regression_functions():
    """The BayesFlow linear-regression tutorial as single-draw functions."""
    return _prior, _likelihood, _meta
