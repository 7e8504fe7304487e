"""Issue 28, item 3: problems of other shapes for the bank defaults, beside those of
``reference_posteriors.py`` (linear Gaussian, Gaussian mixture, two moons, SLCP, AR(1)).

* ``heavy_tailed``: a 2-D location observed through Student-t noise with 3 degrees of
  freedom (5 draws per coordinate): posteriors with heavy tails and, where draws disagree,
  several modes.
* ``bernoulli_glm``: a logistic regression (intercept and 4 slopes, prior N(0, I)) of 100
  binary responses to a fixed design, observed through its sufficient statistic
  ``X^T y`` (discrete data, as in the sbi benchmark's Bernoulli GLM, smaller).
* ``sir_ode``: the deterministic SIR equations (RK4, 0.5-day steps over 100 days) with
  rates ``beta`` and ``gamma`` (log-normal priors), the infected share observed on 10 days
  with log-normal noise (sd 0.1): an ODE model whose parameters are strongly correlated.

None has a closed-form posterior; ``offline_defaults.py`` scores them by the held-out
``-log q(theta | x)``, a proper score (the expected KL divergence from the true posterior
plus a constant of the problem), which ranks settings without reference draws. For C2ST
(``reference_posteriors.py``, which takes these three into its suite) each has a sampler
of its reference posterior from the exact likelihood:

* ``heavy_tailed``: the posterior factorizes over the two coordinates; each is drawn
  from a fine 1-D grid (0.0005 wide) by its inverse CDF, jittered inside the cells.
* ``bernoulli_glm``: rejection sampling from a multivariate t proposal (4 degrees of
  freedom) at the posterior mode (Newton's method) with 1.5 times its Laplace covariance,
  the bound taken as the largest weight of 40 proposals per draw (the log-concave
  posterior has lighter tails than the proposal).
* ``sir_ode``: a grid of 200 x 200 in ``(log beta, log gamma)`` over 5 prior sd, refined
  twice to the box where the log density is within 30 of its maximum, drawn with jitter
  inside the cells of the last grid (``refined_grid_draws``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit
from scipy.stats import multivariate_t

from skabi.adapters import Constrain, Rename, Standardize, make_adapter


def _adapter(*first):
    return make_adapter(*first, Standardize(["x"]), Rename("theta", "inference_variables"),
                        Rename("x", "inference_conditions"))


# ------------------------------------------------------------------------ heavy tailed
def heavy_tailed_simulate(n, rng):
    theta = rng.normal(0.0, 2.0, size=(n, 2))
    noise = rng.standard_t(3.0, size=(n, 5, 2))
    return {"theta": theta, "x": (theta[:, None, :] + noise).reshape(n, 10)}


def heavy_tailed_reference(x, n, rng, width=0.0005, reach=14.0):
    """Exact draws (to the grid's width) from the posterior of ``heavy_tailed``."""
    pts = np.asarray(x).reshape(5, 2)
    edges = np.arange(-reach, reach + width, width)
    mids = (edges[:-1] + edges[1:]) / 2
    out = np.empty((n, 2))
    for d in range(2):
        logp = (-mids ** 2 / 8.0
                - 2.0 * np.log1p((pts[None, :, d] - mids[:, None]) ** 2 / 3.0).sum(axis=1))
        w = np.exp(logp - logp.max())
        idx = rng.choice(w.size, size=n, p=w / w.sum())
        out[:, d] = edges[idx] + width * rng.uniform(size=n)
    return out


# ------------------------------------------------------------------------ Bernoulli GLM
_DESIGN = np.c_[np.ones(100), np.random.default_rng(2028).standard_normal((100, 4))]


def bernoulli_glm_simulate(n, rng):
    theta = rng.standard_normal((n, 5))
    y = rng.uniform(size=(n, 100)) < expit(theta @ _DESIGN.T)
    return {"theta": theta, "x": y.astype(float) @ _DESIGN}


def _glm_log_post(theta, s):
    return theta @ s + log_expit(-(theta @ _DESIGN.T)).sum(axis=-1) \
        - 0.5 * np.sum(theta ** 2, axis=-1)


def bernoulli_glm_reference(x, n, rng, df=4.0, inflate=1.5, per_draw=40):
    """Draws from the posterior of ``bernoulli_glm`` by rejection from a t proposal."""
    s = np.asarray(x, dtype=float)
    mode = np.zeros(5)
    for _ in range(50):                     # Newton's method on the concave log posterior
        p = expit(_DESIGN @ mode)
        grad = s - _DESIGN.T @ p - mode
        hess = _DESIGN.T @ (_DESIGN * (p * (1 - p))[:, None]) + np.eye(5)
        step = np.linalg.solve(hess, grad)
        mode = mode + step
        if np.max(np.abs(step)) < 1e-10:
            break
    p = expit(_DESIGN @ mode)
    cov = inflate * np.linalg.inv(_DESIGN.T @ (_DESIGN * (p * (1 - p))[:, None]) + np.eye(5))
    proposal = multivariate_t(loc=mode, shape=cov, df=df)
    bound, out = None, []
    while sum(len(o) for o in out) < n:
        draw = proposal.rvs(size=per_draw * n, random_state=rng)
        log_w = _glm_log_post(draw, s) - proposal.logpdf(draw)
        bound = log_w.max() if bound is None else max(bound, log_w.max())
        out.append(draw[np.log(rng.uniform(size=len(draw))) < log_w - bound])
    return np.concatenate(out)[:n]


# ------------------------------------------------------------------------ SIR equations
_DAYS = np.linspace(10, 100, 10)


def sir_infected(beta, gamma, days=_DAYS, step=0.5):
    """The infected share on ``days`` of the SIR equations from 1% infected, by RK4."""
    s, i = np.full_like(beta, 0.99), np.full_like(beta, 0.01)

    def rates(s, i):
        return -beta * s * i, beta * s * i - gamma * i

    out, t = [], 0.0
    for day in days:
        while t < day - 1e-9:
            k1 = rates(s, i)
            k2 = rates(s + step / 2 * k1[0], i + step / 2 * k1[1])
            k3 = rates(s + step / 2 * k2[0], i + step / 2 * k2[1])
            k4 = rates(s + step * k3[0], i + step * k3[1])
            s = s + step / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            i = i + step / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            t += step
        out.append(i)
    return np.stack(out, axis=1)


def sir_ode_simulate(n, rng):
    beta = rng.lognormal(np.log(0.4), 0.5, size=n)
    gamma = rng.lognormal(np.log(1 / 8), 0.2, size=n)
    infected = np.clip(sir_infected(beta, gamma), 1e-12, None)
    x = np.log(infected) + 0.1 * rng.standard_normal((n, len(_DAYS)))
    return {"theta": np.c_[beta, gamma], "x": x}


def refined_grid_draws(log_density, lows, highs, n, rng, size=200, rounds=3, drop=30.0):
    """Draws from a 2-D density on a ``size`` x ``size`` grid over the box, shrunk
    ``rounds - 1`` times to the cells within ``drop`` of the largest log density (and one
    cell around them), jittered uniformly inside the cells of the last grid."""
    lows, highs = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    for round_ in range(rounds):
        edges = [np.linspace(lo, hi, size + 1) for lo, hi in zip(lows, highs)]
        mids = [(e[:-1] + e[1:]) / 2 for e in edges]
        t0, t1 = np.meshgrid(*mids, indexing="ij")
        logp = log_density(np.stack([t0.ravel(), t1.ravel()], axis=1)).reshape(t0.shape)
        if round_ == rounds - 1:
            break
        keep = np.argwhere(logp > logp.max() - drop)
        first = np.maximum(keep.min(axis=0) - 1, 0)
        last = np.minimum(keep.max(axis=0) + 2, size)
        lows = np.array([edges[d][first[d]] for d in range(2)])
        highs = np.array([edges[d][last[d]] for d in range(2)])
    w = np.exp(logp - logp.max()).ravel()
    i, j = np.unravel_index(rng.choice(w.size, size=n, p=w / w.sum()), t0.shape)
    return np.stack([edges[0][i] + rng.uniform(size=n) * (edges[0][1] - edges[0][0]),
                     edges[1][j] + rng.uniform(size=n) * (edges[1][1] - edges[1][0])], axis=1)


_SIR_PRIOR = np.array([[np.log(0.4), 0.5], [np.log(1 / 8), 0.2]])   # log-normal (mean, sd)


def sir_ode_reference(x, n, rng):
    """Draws from the posterior of ``sir_ode`` by a refined grid in log space."""
    x = np.asarray(x, dtype=float)

    def log_post(u):                        # u = (log beta, log gamma): a normal prior
        infected = np.clip(sir_infected(np.exp(u[:, 0]), np.exp(u[:, 1])), 1e-12, None)
        loglik = -0.5 * np.sum((x - np.log(infected)) ** 2, axis=1) / 0.01
        return loglik - 0.5 * np.sum(((u - _SIR_PRIOR[:, 0]) / _SIR_PRIOR[:, 1]) ** 2, axis=1)
    lows, highs = _SIR_PRIOR[:, 0] - 5 * _SIR_PRIOR[:, 1], _SIR_PRIOR[:, 0] + 5 * _SIR_PRIOR[:, 1]
    return np.exp(refined_grid_draws(log_post, lows, highs, n, rng))


PROBLEMS = {
    "heavy_tailed": dict(simulate=heavy_tailed_simulate, reference=heavy_tailed_reference,
                         adapter=_adapter),
    "bernoulli_glm": dict(simulate=bernoulli_glm_simulate, reference=bernoulli_glm_reference,
                          adapter=_adapter),
    "sir_ode": dict(simulate=sir_ode_simulate, reference=sir_ode_reference,
                    adapter=lambda: _adapter(Constrain("theta", lower=0))),
}
