"""The benchmark tasks of issue 7, defined exactly as the issue defines them.

* **G** -- analytic Gaussian (BayesFlow legacy quickstart): ``theta ~ N(0, I_4)``,
  ``x_n ~ N(theta, I_4)``, n = 1..50, as an exchangeable set. Exact posterior
  ``N(sum_n x_n / 51, I / 51)``. Online, batch 64, 2000 optimizer steps, Adam 5e-4 with
  cosine decay; DeepSet (4->64->64, mean pooling, 64->64->8) and a 6-layer affine coupling
  flow with 128x2 subnets (about 120k parameters: skabi's defaults).
* **L** -- the linear-regression tutorial: ``beta ~ N([2, 0], [3, 1])``,
  ``sigma ~ Gamma(1, 1)``, ``N ~ UniformInt[5, 14]`` per batch, ``x ~ N(0, 1)^N``,
  ``y ~ N(beta0 + beta1 x, sigma)``; the tutorial's single-draw functions through
  :func:`skabi.make_simulator` as a user writes them, the tutorial's adapter,
  ``DeepSet(summary_dim=10)`` with an affine and with a spline coupling flow; batch 64,
  30 epochs x 128 batches.

Everything goes through the public API: ``AmortizedPosterior(...).fit(simulator)`` and
``est.sample(...)``.
"""

from __future__ import annotations

import numpy as np

from skabi import AmortizedPosterior, Simulator, make_adapter, make_simulator
from skabi.adapters import AsSet, Broadcast, Concatenate, Constrain, Rename, Sqrt
from skabi.networks import CouplingFlow, DeepSet

__all__ = ["GaussianSimulator", "gaussian_task", "gaussian_exact_posterior", "gaussian_exact_draws",
           "regression_simulator", "regression_adapter", "regression_task", "TASKS"]

# ---------------------------------------------------------------------------- task G
G_DIM, G_N = 4, 50


class GaussianSimulator(Simulator):
    """theta ~ N(0, I_4); x_n ~ N(theta, I_4), n = 1..50 (vectorised)."""

    def simulate(self, batch_size, rng):
        theta = rng.standard_normal((batch_size, G_DIM))
        x = theta[:, None, :] + rng.standard_normal((batch_size, G_N, G_DIM))
        return {"theta": theta, "x": x}


def gaussian_exact_posterior(x):
    """Mean (B, 4) and sd (scalar) of the exact posterior N(sum x / 51, I / 51)."""
    x = np.asarray(x)
    n = x.shape[1]
    return x.sum(axis=1) / (n + 1), 1.0 / np.sqrt(n + 1)


def gaussian_exact_draws(x, n_draws, rng):
    """``n_draws`` draws of the exact posterior of task G per dataset: (B, n_draws, 4)."""
    mu, sd = gaussian_exact_posterior(x)
    return mu[:, None, :] + sd * rng.standard_normal((mu.shape[0], n_draws, mu.shape[1]))


def gaussian_task(seed, *, steps=2000, batch_size=64, learning_rate=5e-4):
    """(estimator, simulator) of task G; the estimator is unfitted. Default networks.

    The issue fixes Adam at 5e-4 for G; ``learning_rate=None`` keeps skabi's default
    (task ``G-defaults``).
    """
    adapter = make_adapter(Rename("theta", "inference_variables"),
                           Rename("x", "summary_variables"))
    batches = 100
    est = AmortizedPosterior(
        adapter=adapter,
        inference_network=CouplingFlow(),          # 6 affine layers, 128x2 subnets
        summary_network=DeepSet(),                 # 4->64->64, mean, 64->64->8
        epochs=max(1, steps // batches), batches_per_epoch=min(batches, steps),
        batch_size=batch_size, lr_schedule="cosine", random_state=seed,
    )
    if learning_rate is not None:
        est.set_params(learning_rate=learning_rate)
    return est, GaussianSimulator()


# ---------------------------------------------------------------------------- task L
# The tutorial's single-draw functions, as a user writes them (global np.random).
def prior():
    beta = np.random.normal([2, 0], [3, 1])
    sigma = np.random.gamma(1, 1)
    return dict(beta=beta, sigma=sigma)


def likelihood(beta, sigma, N):
    x = np.random.normal(0, 1, size=N)
    y = np.random.normal(beta[0] + beta[1] * x, sigma, size=N)
    return dict(x=x, y=y)


def meta():
    return dict(N=np.random.randint(5, 15))


def regression_simulator():
    return make_simulator([prior, likelihood], meta_fn=meta)


def regression_adapter():
    return make_adapter(
        Broadcast("N", to="x"),
        AsSet(["x", "y"]),
        Constrain("sigma", lower=0),
        Sqrt("N"),
        Concatenate(["beta", "sigma"], into="inference_variables"),
        Concatenate(["x", "y"], into="summary_variables"),
        Rename("N", "inference_conditions"),
    )


def regression_task(seed, *, transform="spline", epochs=30, batches_per_epoch=128,
                    batch_size=64, pooling="mean", moment_dim=0):
    """(estimator, simulator) of task L with an affine or spline coupling flow
    (``moment_dim=4``: the quickstart's summary network)."""
    est = AmortizedPosterior(
        adapter=regression_adapter(),
        inference_network=CouplingFlow(transform=transform),
        summary_network=DeepSet(summary_dim=10, pooling=pooling, moment_dim=moment_dim),
        epochs=epochs, batches_per_epoch=batches_per_epoch, batch_size=batch_size,
        random_state=seed,
    )
    return est, regression_simulator()


TASKS = {
    "G": dict(build=gaussian_task, steps=2000),
    "G-defaults": dict(build=lambda seed, **kw: gaussian_task(seed, learning_rate=None, **kw),
                       steps=2000),
    "L-affine": dict(build=lambda seed, **kw: regression_task(seed, transform="affine", **kw),
                     steps=30 * 128),
    "L-spline": dict(build=lambda seed, **kw: regression_task(seed, transform="spline", **kw),
                     steps=30 * 128),
}


def regression_exact_posterior(x, y, n_draws, rng, *, grid_size=4000):
    """Exact posterior draws of task L for datasets ``x, y`` (B, N): (beta (B, S, 2), sigma (B, S)).

    Given sigma the model is linear-Gaussian, so ``beta | sigma, data`` is Gaussian in
    closed form, and ``sigma | data`` is proportional to its Gamma(1, 1) prior times the
    marginal likelihood ``N(y; X m0, sigma^2 I + X S0 X^T)`` (beta integrated out), a
    one-dimensional density that is sampled by inverse CDF on a fine log-spaced grid
    (``grid_size`` points on [1e-4, 30], relative spacing 0.3%).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    b, n = x.shape
    design = np.stack([np.ones_like(x), x], axis=-1)                  # (B, N, 2)
    m0, s0 = np.array([2.0, 0.0]), np.diag([9.0, 1.0])
    log_s = np.linspace(np.log(1e-4), np.log(30.0), grid_size)
    sig2 = np.exp(2 * log_s)                                         # (G,)
    # cov = X S0 X' + sigma^2 I: eigenvalues lam + sigma^2 with the eigenvectors of X S0 X'
    lam, vec = np.linalg.eigh(design @ s0 @ design.transpose(0, 2, 1))   # (B, N), (B, N, N)
    proj = np.einsum("bnk,bn->bk", vec, y - design @ m0) ** 2           # (B, N)
    ev = np.clip(lam, 0, None)[:, None, :] + sig2[None, :, None]         # (B, G, N)
    logdet = np.log(ev).sum(-1)
    quad = (proj[:, None, :] / ev).sum(-1)
    # log density of log(sigma): Exp(1) prior on sigma, Jacobian sigma, marginal likelihood
    logp = -np.exp(log_s) + log_s - 0.5 * (logdet + quad)
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    cdf = np.concatenate([np.zeros((b, 1)), np.cumsum(0.5 * (p[:, 1:] + p[:, :-1]), axis=1)], 1)
    cdf /= cdf[:, -1:]
    u = rng.uniform(size=(b, n_draws))
    sigma = np.exp(np.stack([np.interp(u[i], cdf[i], log_s) for i in range(b)]))  # (B, S)
    # beta | sigma: precision S0^-1 + X'X / sigma^2, mean = cov (S0^-1 m0 + X'y / sigma^2)
    xtx = design.transpose(0, 2, 1) @ design                          # (B, 2, 2)
    xty = np.einsum("bni,bn->bi", design, y)                         # (B, 2)
    prec = np.linalg.inv(s0)[None, None] + xtx[:, None] / sigma[..., None, None] ** 2
    post_cov = np.linalg.inv(prec)                                   # (B, S, 2, 2)
    rhs = (np.linalg.inv(s0) @ m0)[None, None] + xty[:, None] / sigma[..., None] ** 2
    mean = np.einsum("bsij,bsj->bsi", post_cov, rhs)
    chol = np.linalg.cholesky(post_cov)
    beta = mean + np.einsum("bsij,bsj->bsi", chol, rng.standard_normal(mean.shape))
    return beta, sigma
