"""
An epidemic time series (SIR)
=============================

A stochastic SIR model: in a population of 1000, each day every susceptible person is
infected with probability ``1 - exp(-beta * I / 1000)`` and every infected person
recovers with probability ``1 - exp(-gamma)``. We observe the number of new cases on each
of 60 days, counted with some noise, and infer the transmission rate ``beta`` and the
recovery rate ``gamma`` (their ratio is the basic reproduction number ``R0``).

The data are ordered in time, so the summary network is a
:class:`~skabi.networks.TimeSeriesNetwork` (1-D convolutions, then a GRU), and the adapter
marks the series with :class:`~skabi.adapters.AsTimeSeries`.

Run ``python examples/sir.py`` (about a minute and a half on one CPU core); ``--fast`` or
``SKABI_DOCS_FAST=1`` trains for a few seconds.
"""

import os
import sys

import matplotlib.pyplot as plt
import numpy as np

from skabi import AmortizedPosterior, make_adapter, make_simulator
from skabi.adapters import AsTimeSeries, Concatenate, Constrain, Rename
from skabi.diagnostics import plots
from skabi.networks import CouplingFlow, TimeSeriesNetwork

FAST = "--fast" in sys.argv[1:] or os.environ.get("SKABI_DOCS_FAST") == "1"
POPULATION, DAYS = 1000, 60

# %%
# The simulator
# -------------
# Log-normal priors put ``R0 = beta / gamma`` mostly between 1 and 5. The observation is
# ``log(1 + cases)``, which keeps the scale of the series moderate.


def prior(rng):
    return dict(beta=rng.lognormal(np.log(0.4), 0.5), gamma=rng.lognormal(np.log(1 / 8), 0.2))


def likelihood(beta, gamma, rng):
    s, i = POPULATION - 5, 5
    cases = np.empty(DAYS)
    for day in range(DAYS):
        new = rng.binomial(s, 1 - np.exp(-beta * i / POPULATION))
        recovered = rng.binomial(i, 1 - np.exp(-gamma))
        s, i = s - new, i + new - recovered
        cases[day] = rng.poisson(0.8 * new)     # four in five cases are reported
    return dict(cases=np.log1p(cases))


simulator = make_simulator([prior, likelihood])
sims = simulator.sample(6, random_state=0)

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(np.expm1(sims["cases"]).T)
ax.set_xlabel("day")
ax.set_ylabel("reported new cases")
ax.set_title("Six simulated epidemics")
fig.tight_layout()

# %%
# Adapter and networks
# --------------------
# Both rates are positive: :class:`~skabi.adapters.Constrain` maps them to the real line
# for the flow and back for the draws.

adapter = make_adapter(
    AsTimeSeries("cases"),
    Constrain(["beta", "gamma"], lower=0),
    Concatenate(["beta", "gamma"], into="inference_variables"),
    Rename("cases", "summary_variables"),
)
est = AmortizedPosterior(
    adapter=adapter,
    inference_network=CouplingFlow(depth=4),
    summary_network=TimeSeriesNetwork(summary_dim=8, hidden_size=32),
    epochs=3 if FAST else 30, batches_per_epoch=30 if FAST else 100,
    random_state=0,
    verbose=True,   # progress bar with ETA
)
est.fit(simulator)
print(est.history_[["loss", "seconds"]].tail(3).to_string())

# %%
# Recovery on held-out epidemics
# ------------------------------

val = simulator.sample(100, random_state=1)
idata = est.sample(val, num_samples=500)
fig = plots.recovery(idata)

# %%
# One epidemic: posterior of ``R0``
# ---------------------------------
# Draws of a function of the parameters are functions of the draws.

post = idata.posterior.isel(dataset=0)
r0 = (post["beta"] / post["gamma"]).values.ravel()
true_r0 = float(val["beta"][0, 0] / val["gamma"][0, 0])
fig, ax = plt.subplots(figsize=(5, 3))
ax.hist(r0, bins=50, density=True, alpha=0.6)
ax.axvline(true_r0, color="k", label="value that generated the data")
ax.set_xlabel("R0 = beta / gamma")
ax.legend()
fig.tight_layout()
print(f"R0: posterior mean {r0.mean():.2f}, 90% interval "
      f"{np.percentile(r0, 5):.2f}-{np.percentile(r0, 95):.2f}, truth {true_r0:.2f}")
