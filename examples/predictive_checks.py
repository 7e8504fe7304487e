"""
Predictive checks and misspecification
======================================

An amortized posterior answers for any data, including data the model could never have
produced. This example runs the checks that catch that, on the linear regression of the
starter tutorial: a prior predictive check before training, a posterior predictive check
after it, and the misspecification test of the summary network, which asks whether an
observed dataset looks like the simulations the networks were trained on.

Run ``python examples/predictive_checks.py`` (about a minute on one CPU core); ``--fast``
or ``SKABI_DOCS_FAST=1`` trains for a few seconds, which is too short for the test to
have its power.
"""

import os
import sys
import warnings

import arviz as az
import numpy as np

from skabi import AmortizedPosterior, make_adapter, make_simulator, sample_predictive
from skabi.adapters import AsSet, Broadcast, Concatenate, Constrain, Rename, Sqrt
from skabi.diagnostics import plots
from skabi.networks import CouplingFlow, DeepSet

warnings.filterwarnings("ignore", message="ArviZ is undergoing", category=FutureWarning)
FAST = "--fast" in sys.argv[1:] or os.environ.get("SKABI_DOCS_FAST") == "1"

# %%
# Model and estimator
# -------------------
# ``summary_mmd_weight`` adds a penalty that pulls the summaries of simulated data
# toward a standard normal: data the model cannot produce then land away from it.


def prior(rng):
    return dict(beta=rng.normal([2.0, 0.0], [3.0, 1.0]), sigma=rng.gamma(1.0, 1.0))


def likelihood(beta, sigma, N, rng):
    x = rng.normal(0.0, 1.0, size=N)
    return dict(x=x, y=rng.normal(beta[0] + beta[1] * x, sigma))


simulator = make_simulator([prior, likelihood],
                           meta_fn=lambda rng: dict(N=int(rng.integers(5, 15))))
adapter = make_adapter(Broadcast("N", to="x"), AsSet(["x", "y"]),
                       Constrain("sigma", lower=0), Sqrt("N"),
                       Concatenate(["beta", "sigma"], into="inference_variables"),
                       Concatenate(["x", "y"], into="summary_variables"),
                       Rename("N", "inference_conditions"))
est = AmortizedPosterior(adapter=adapter, inference_network=CouplingFlow(),
                         # max pooling keeps extreme residuals visible in the summaries
                         summary_network=DeepSet(summary_dim=10, pooling="mean+max"),
                         summary_mmd_weight=1.0,
                         epochs=3 if FAST else 30, batches_per_epoch=50 if FAST else 200,
                         random_state=0, verbose=True)   # progress bar with ETA
est.fit(simulator)

# %%
# Two observed datasets
# ---------------------
# The first follows the model. The second has a noise sd of 10, far beyond what the
# Gamma(1, 1) prior of ``sigma`` allows.

rng = np.random.default_rng(3)
x = rng.normal(size=(2, 12))
observed = {"x": x, "N": 12,
            "y": np.stack([1.0 + 0.5 * x[0] + rng.normal(0, 0.7, 12),
                           1.0 + 0.5 * x[1] + rng.normal(0, 10.0, 12)])}

# %%
# Prior and posterior predictive checks
# -------------------------------------
# :func:`skabi.sample_predictive` runs the simulator on prior draws and on posterior
# draws of each dataset and adds the ``prior_predictive`` and ``posterior_predictive``
# groups that ArviZ's plots read.

idata = est.sample(observed, num_samples=500)
idata = sample_predictive(idata, simulator, num_samples=100, random_state=0)
print(list(idata.groups()))
axes = az.plot_ppc(idata.sel(dataset=0), var_names=["y"], num_pp_samples=50)

# %%
# For the second dataset the observed ``y`` (black) is far wider than anything the
# posterior predicts: the model cannot reproduce these data.

axes = az.plot_ppc(idata.sel(dataset=1), var_names=["y"], num_pp_samples=50)

# %%
# The misspecification test
# -------------------------
# The test compares the summaries of the observed data with those of simulations of
# the same size (a maximum mean discrepancy), with a null distribution from simulated
# datasets. A small p-value says the data do not look like the model's.

for j, label in enumerate(["well specified", "sigma = 10"]):
    one = {"x": observed["x"][j:j + 1], "y": observed["y"][j:j + 1], "N": 12}
    result = est.misspecification_test(one, simulator, n_null=100 if FAST else 500,
                                       random_state=0)
    print(f"{label}: p-value {result.p_value:.3f}")
fig = plots.mmd_hypothesis_test(result)
