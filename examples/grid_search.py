"""
Grid search on the regression tutorial
======================================

Which summary size and flow depth suit the BayesFlow linear-regression tutorial
(N observations, 5 to 14, drawn once per batch)? Two ways to let scikit-learn's
``GridSearchCV`` decide, both scored by ``est.score``: the mean log density of the true
parameters under the approximate posterior, on the parameters' own scale (the adapter's
Jacobians included), so scores of candidates with other adapters or networks compare.

1. **Online**: every candidate trains on fresh simulations, as ``fit(simulator)`` does,
   and is scored on one held-out set drawn once by the splitter
   :class:`skabi.model_selection.HeldOutSimulations`.
2. **A fixed bank**: ``simulator.sample(n, chunk_size=64)`` draws a bank whose datasets
   differ in size (``N`` drawn per 64 simulations, as in training); it splits with any
   scikit-learn splitter, and the sets are padded and masked.

Run ``python examples/grid_search.py`` (about three minutes on 2 CPU cores); ``--fast``
or ``SKABI_DOCS_FAST=1`` runs a smaller grid on small budgets (about a minute). The
figure is saved as ``grid_search_scores.png``.
"""

import os
import sys
import time
import warnings

import numpy as np
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.model_selection import GridSearchCV, cross_val_score

from skabi import AmortizedPosterior, make_adapter, make_simulator
from skabi.adapters import AsSet, Broadcast, Concatenate, Constrain, Rename, Sqrt
from skabi.model_selection import HeldOutSimulations
from skabi.networks import CouplingFlow, DeepSet

warnings.filterwarnings("ignore", message="ArviZ is undergoing", category=FutureWarning)
FAST = "--fast" in sys.argv[1:] or os.environ.get("SKABI_DOCS_FAST") == "1"
N_JOBS = 1 if FAST else 2   # candidates fitted in parallel, one torch thread each

# %%
# The tutorial's model
# --------------------


def prior(rng):
    return dict(beta=rng.normal([2, 0], [3, 1]), sigma=rng.gamma(1, 1))


def likelihood(beta, sigma, N, rng):
    x = rng.normal(0, 1, size=N)
    return dict(x=x, y=rng.normal(beta[0] + beta[1] * x, sigma))


def meta(rng):
    return dict(N=int(rng.integers(5, 15)))


# %%
# One estimator and a grid of network hyperparameters, addressed as in any scikit-learn
# pipeline: ``<parameter>__<hyperparameter>``.

simulator = make_simulator([prior, likelihood], meta_fn=meta)
adapter = make_adapter(Broadcast("N", to="x"), AsSet(["x", "y"]),
                       Constrain("sigma", lower=0), Sqrt("N"),
                       Concatenate(["beta", "sigma"], into="inference_variables"),
                       Concatenate(["x", "y"], into="summary_variables"),
                       Rename("N", "inference_conditions"))
est = AmortizedPosterior(adapter=adapter, inference_network=CouplingFlow(),
                         summary_network=DeepSet(), epochs=2 if FAST else 10,
                         batches_per_epoch=50 if FAST else 100, random_state=0)
grid = {"summary_network__summary_dim": [2, 4] if FAST else [2, 4, 8],
        "inference_network__depth": [2, 4] if FAST else [2, 4, 6]}

# %%
# 1. Online: fresh simulations for every candidate
# ------------------------------------------------
# ``HeldOutSimulations`` is a splitter with one split: every candidate trains on its own
# fresh simulations and is scored on the same held-out set.

start = time.perf_counter()
online = GridSearchCV(est, grid, cv=HeldOutSimulations(500, random_state=1), n_jobs=N_JOBS,
                      verbose=2)   # one line per fit, with its time
online.fit(simulator)
print(f"online search: {len(online.cv_results_['params'])} candidates + refit in "
      f"{time.perf_counter() - start:.0f} s")
table = pd.DataFrame(online.cv_results_["params"])
table["held-out score"] = online.cv_results_["mean_test_score"]
table["rank"] = online.cv_results_["rank_test_score"]
print(table.sort_values("rank").to_string(index=False))
print("best:", online.best_params_)

# %%
# 2. A fixed bank, split three ways
# ---------------------------------
# The bank's datasets differ in size (``N`` is drawn once per chunk of 64); any
# scikit-learn splitter divides it, and the sets are padded and masked.

bank = simulator.sample(1500 if FAST else 6000, chunk_size=64, random_state=2)
sizes = sorted({len(x) for x in bank["x"]})
print(f"bank: {bank.shape[0]} simulations, N from {sizes[0]} to {sizes[-1]}")
offline = GridSearchCV(est.set_params(epochs=3 if FAST else 20), grid, cv=3, n_jobs=N_JOBS,
                       verbose=2)   # one line per fit, with its time
offline.fit(bank)
print("best on the bank:", offline.best_params_)
scores = cross_val_score(offline.best_estimator_, bank, cv=3)
print("cross_val_score of the best:", np.round(scores, 3))

# %%
# Scores of every candidate, both searches
# ----------------------------------------

fig, ax = plt.subplots(figsize=(6, 3.5))
for search, label in ((online, "online, held-out simulations"), (offline, "bank, 3-fold")):
    params = search.cv_results_["params"]
    names = [f"s{p['summary_network__summary_dim']} d{p['inference_network__depth']}"
             for p in params]
    ax.errorbar(names, search.cv_results_["mean_test_score"],
                yerr=search.cv_results_["std_test_score"], marker="o", capsize=3,
                label=label)
ax.set_xlabel("summary_dim (s), flow depth (d)")
ax.set_ylabel("mean log q(theta | x)")
ax.legend()
fig.tight_layout()
fig.savefig("grid_search_scores.png", dpi=120)
