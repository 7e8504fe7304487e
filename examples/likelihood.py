"""
Amortized likelihoods and marginal likelihoods
==============================================

:class:`~skabi.AmortizedLikelihood` learns the density of the data given the parameters,
``q(x | theta)``, from the same simulations as a posterior. :class:`~skabi.AmortizedJoint` trains both in
one run (JANA); together they give the marginal likelihood (evidence) ``log p(x)`` of any
dataset, hence Bayes factors, and pointwise log likelihoods for ArviZ's leave-one-out
cross-validation.

The model is conjugate, so every answer can be checked: ``mu ~ N(0, 1)`` and ``N``
observations ``x_n ~ N(mu, 1)``, with ``N`` from 5 to 30. The exact evidence is
``log N(x; 0, I + 1 1^T)``.

Run ``python examples/likelihood.py`` (about a minute and a half on one CPU core); ``--fast`` or
``SKABI_DOCS_FAST=1`` trains for a few seconds.
"""

import os
import sys
import warnings

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from skabi import (AmortizedJoint, AmortizedLikelihood, AmortizedPosterior,
                   add_log_likelihood, make_adapter, make_simulator)
from skabi.adapters import AsObservations, AsSet, Broadcast, Rename, Sqrt
from skabi.networks import DeepSet

warnings.filterwarnings("ignore", message="ArviZ is undergoing", category=FutureWarning)
FAST = "--fast" in sys.argv[1:] or os.environ.get("SKABI_DOCS_FAST") == "1"

# %%
# One simulator, one training run for two networks
# ------------------------------------------------
# The posterior reads the set of observations; the likelihood's adapter reads the roles
# the other way round: :class:`~skabi.adapters.AsObservations` splits every dataset into
# its observations, so the network learns the density of ONE observation given ``mu``,
# and a dataset's log density is the sum over its observations. The two estimators are
# templates (adapter and networks) for :class:`~skabi.AmortizedJoint`, which trains both
# on every batch of simulations; the prior density is for the marginal likelihood.


def prior(rng):
    return dict(mu=rng.normal())


def likelihood(mu, N, rng):
    return dict(x=rng.normal(mu, 1.0, size=N))


simulator = make_simulator([prior, likelihood],
                           meta_fn=lambda rng: dict(N=int(rng.integers(5, 31))))
budget = dict(epochs=3 if FAST else 20, batches_per_epoch=40 if FAST else 100,
              random_state=0, verbose=True)   # progress bars with ETA

est = AmortizedJoint(
    AmortizedPosterior(
        adapter=make_adapter(Broadcast("N", to="x"), AsSet("x"), Sqrt("N"),
                             Rename("x", "summary_variables"),
                             Rename("N", "inference_conditions"),
                             Rename("mu", "inference_variables")),
        summary_network=DeepSet(summary_dim=4)),
    AmortizedLikelihood(
        adapter=make_adapter(AsObservations("x"), Rename("x", "inference_variables"),
                             Rename("mu", "inference_conditions"))),
    prior={"mu": stats.norm(0, 1)}, **budget).fit(simulator)
posterior, lik = est.posterior_, est.likelihood_   # two fitted estimators

# %%
# The likelihood as a surrogate simulator
# ---------------------------------------
# Synthetic observations for ``mu = 1.5`` against the simulator's.

fake = lik.sample({"mu": np.array([[1.5]])}, num_samples=2000, n_obs=1)
fake_x = np.ravel(fake["x"])
fig, ax = plt.subplots(figsize=(5, 3))
ax.hist(np.random.default_rng(0).normal(1.5, 1.0, 2000), bins=50, density=True,
        alpha=0.5, label="simulator")
ax.hist(fake_x, bins=50, density=True, alpha=0.5, label="AmortizedLikelihood")
ax.set_xlabel("x given mu = 1.5")
ax.legend()
fig.tight_layout()

# %%
# Marginal likelihoods against the exact ones
# -------------------------------------------
# For 30 new datasets of one size (``chunk_size=30`` draws ``N`` once for all of them):
# importance sampling with the amortized posterior as proposal and the learned
# likelihood as the density of the data, with the prior density given to the joint
# estimator as a ``scipy.stats`` distribution. (For a posterior and a likelihood trained
# separately, :func:`skabi.log_marginal_likelihood` does the same.)

observed = simulator.sample(30, random_state=1, chunk_size=30)
x = np.asarray(observed["x"])
n = x.shape[1]
exact = stats.multivariate_normal(np.zeros(n), np.eye(n) + np.ones((n, n))).logpdf(x)
ml = est.log_marginal_likelihood({"x": x, "N": n}, num_samples=500)
print(ml.head().round(3).to_string())
print(f"largest |error| of log p(x): {np.abs(ml['log_ml'].to_numpy() - exact).max():.3f}")

fig, ax = plt.subplots(figsize=(4, 4))
ax.errorbar(exact, ml["log_ml"], yerr=2 * ml["mc_se"], fmt="o", ms=3)
lims = [exact.min(), exact.max()]
ax.plot(lims, lims, color="k", lw=1)
ax.set_xlabel("exact log p(x)")
ax.set_ylabel("skabi log p(x)")
fig.tight_layout()

# %%
# Correcting the posterior with the likelihood
# --------------------------------------------
# The same importance weights correct the posterior network: ``importance=True`` draws
# four proposals per draw from the amortized posterior and resamples them in proportion
# to ``p(mu) q(x | mu) / q(mu | x)`` (:func:`skabi.importance_sample`). Pareto k per
# dataset says whether the network covered the posterior (below 0.7).

exact_mean, exact_sd = x[:5].sum(axis=1) / (n + 1), (n + 1) ** -0.5
raw = est.sample({"x": x[:5], "N": n}, num_samples=2000)
fixed = est.sample({"x": x[:5], "N": n}, num_samples=2000, importance=True)
for name, draws in (("network", raw), ("corrected", fixed)):
    mu = draws.posterior["mu"].values[0]
    print(f"{name:>9}: |mean error| / exact sd "
          f"{np.abs(mu.mean(axis=0) - exact_mean).max() / exact_sd:.3f}, "
          f"sd / exact sd {mu.std(axis=0).min() / exact_sd:.3f}-"
          f"{mu.std(axis=0).max() / exact_sd:.3f}")
print("Pareto k:", np.round(fixed.sample_stats["pareto_k"].values, 2))

# %%
# Leave-one-out cross-validation with ArviZ
# -----------------------------------------
# :func:`skabi.add_log_likelihood` adds the ``log_likelihood`` group (the log density of
# every observation at every posterior draw), which ``az.loo`` reads.

idata = posterior.sample({"x": x[:1], "N": n}, num_samples=1000)
idata = add_log_likelihood(idata, lik)
print(az.loo(idata.isel(dataset=0)))
