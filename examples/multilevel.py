"""
Multilevel models: normal-normal and eight schools
==================================================

Hierarchical models have global parameters (a population mean ``mu`` and spread
``tau``) and local ones (a ``theta_j`` per group). An
:class:`~skabi.AmortizedMultilevelPosterior` learns both: a global flow conditioned on a
summary of all groups, and one local flow shared by every group. After one training run
it samples the posterior of datasets with any number of groups of any size, in one call,
as an ArviZ container with a ``group`` dim.

Two models: the normal-normal model with observations per group, and eight schools,
where each group gives one estimate with a known standard error.

Run ``python examples/multilevel.py`` (about three minutes on one CPU core); ``--fast`` or
``SKABI_DOCS_FAST=1`` trains for a few seconds.
"""

import os
import sys
import warnings

import arviz as az
import matplotlib.pyplot as plt
import numpy as np

from skabi import AmortizedMultilevelPosterior, make_multilevel_simulator
from skabi.adapters import (AsSet, Concatenate, Constrain, MultilevelAdapter, Rename,
                            make_adapter)
from skabi.networks import DeepSet

warnings.filterwarnings("ignore", message="ArviZ is undergoing", category=FutureWarning)
FAST = "--fast" in sys.argv[1:] or os.environ.get("SKABI_DOCS_FAST") == "1"
STEPS = 100 if FAST else 2000

# %%
# Shared pieces
# -------------
# The hyperprior, and the adapter of the global level: ``tau`` is positive.


def hyperprior(rng):
    return dict(mu=rng.normal(0, 5), tau=abs(rng.normal(0, 5)))


def global_adapter():
    return make_adapter(Constrain("tau", lower=0),
                        Concatenate(["mu", "tau"], into="inference_variables"))


# %%
# The normal-normal model
# -----------------------
# ``J`` groups (2 to 20), ``N`` observations per group (1 to 20), ``y ~ N(theta_j, 1)``.
# The simulator takes one function per level; the adapter one adapter per level.

simulator = make_multilevel_simulator(
    hyperprior,
    lambda mu, tau, rng: dict(theta=rng.normal(mu, tau)),
    lambda theta, N, rng: dict(y=rng.normal(theta, 1.0, size=N)),
    meta_fn=lambda rng: dict(J=int(rng.integers(2, 21)), N=int(rng.integers(1, 21))))
adapter = MultilevelAdapter(
    global_adapter(),
    make_adapter(AsSet("y"), Rename("y", "summary_variables"),
                 Rename("theta", "inference_variables")))
est = AmortizedMultilevelPosterior(
    adapter=adapter, summary_network=DeepSet(summary_dim=8, pooling="mean+sum"),
    global_summary_network=DeepSet(summary_dim=16, pooling="mean+sum"),
    epochs=10, batches_per_epoch=STEPS // 10, random_state=0, verbose=True)
est.fit(simulator)

# %%
# Three groups of 3, 1 and 12 observations: padded and masked, in one call.

rng = np.random.default_rng(1)
observed = {"y": [rng.normal(2, 1, 3), rng.normal(-1, 1, 1), rng.normal(0.5, 1, 12)]}
idata = est.sample(observed, num_samples=1000)
print(az.summary(idata.posterior.isel(dataset=0), kind="stats").round(2).to_string())

# %%
# Eight schools
# -------------
# Each school reports one estimated effect ``y_j`` with a known standard error
# ``sigma_j``. The standard error is a covariate, drawn in the simulator from the range
# the data need, and passed to the local flow as a condition.

simulator = make_multilevel_simulator(
    hyperprior,
    lambda mu, tau, rng: dict(theta=rng.normal(mu, tau), sigma=rng.uniform(5, 20)),
    lambda theta, sigma, rng: dict(y=rng.normal(theta, sigma)),
    meta_fn=lambda rng: dict(J=int(rng.integers(2, 13))))
adapter = MultilevelAdapter(
    global_adapter(),
    make_adapter(Concatenate(["y", "sigma"], into="inference_conditions"),
                 Rename("theta", "inference_variables")))
est = AmortizedMultilevelPosterior(
    adapter=adapter, global_summary_network=DeepSet(summary_dim=16, pooling="mean+sum"),
    epochs=10, batches_per_epoch=STEPS // 10, random_state=0, verbose=True)
est.fit(simulator)
schools = {"y": np.array([28, 8, -3, 7, -1, 1, 18, 12.0]),
           "sigma": np.array([15, 10, 16, 11, 9, 11, 10, 18.0])}
idata = est.sample(schools, num_samples=2000)
print(az.summary(idata.posterior.isel(dataset=0), kind="stats").round(2).to_string())

# %%
# The school effects shrink from the raw estimates (crosses) toward the population mean.

theta = idata.posterior["theta"].isel(dataset=0).values.reshape(-1, 8)
fig, ax = plt.subplots(figsize=(6, 3))
ax.violinplot(theta, positions=np.arange(8), showextrema=False)
ax.plot(np.arange(8), schools["y"], "kx", label="raw estimate y_j")
ax.axhline(float(idata.posterior["mu"].mean()), color="0.5", ls="--", label="posterior mean of mu")
ax.set_xlabel("school")
ax.set_ylabel("theta_j")
ax.legend(fontsize="small")
fig.tight_layout()
