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
plus a constant of the problem), which ranks settings without reference draws.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from skabi.adapters import Constrain, Rename, Standardize, make_adapter


def _adapter(*first):
    return make_adapter(*first, Standardize(["x"]), Rename("theta", "inference_variables"),
                        Rename("x", "inference_conditions"))


# ------------------------------------------------------------------------ heavy tailed
def heavy_tailed_simulate(n, rng):
    theta = rng.normal(0.0, 2.0, size=(n, 2))
    noise = rng.standard_t(3.0, size=(n, 5, 2))
    return {"theta": theta, "x": (theta[:, None, :] + noise).reshape(n, 10)}


# ------------------------------------------------------------------------ Bernoulli GLM
_DESIGN = np.c_[np.ones(100), np.random.default_rng(2028).standard_normal((100, 4))]


def bernoulli_glm_simulate(n, rng):
    theta = rng.standard_normal((n, 5))
    y = rng.uniform(size=(n, 100)) < expit(theta @ _DESIGN.T)
    return {"theta": theta, "x": y.astype(float) @ _DESIGN}


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


PROBLEMS = {
    "heavy_tailed": dict(simulate=heavy_tailed_simulate, adapter=_adapter),
    "bernoulli_glm": dict(simulate=bernoulli_glm_simulate, adapter=_adapter),
    "sir_ode": dict(simulate=sir_ode_simulate,
                    adapter=lambda: _adapter(Constrain("theta", lower=0))),
}
