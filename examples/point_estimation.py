"""
Point estimation: posterior means and quantiles without a posterior
===================================================================

``AmortizedPointEstimator`` is a scikit-learn regressor from datasets to Bayes
estimators (Sainsbury-Dale et al. 2024): it learns the posterior mean (squared error)
and any posterior quantiles (pinball loss) of every parameter directly, in one forward
pass per dataset. On the BayesFlow linear-regression tutorial we learn the mean and the
5% / 50% / 95% quantiles of the intercept, slope and noise sd, check the 90% intervals'
coverage of the true parameters on held-out simulations, and compare with the quantiles
of a full ``AmortizedPosterior`` trained for the same number of steps.

Run ``python examples/point_estimation.py`` (under a minute on one CPU core); ``--fast``
or ``SKABI_DOCS_FAST=1`` trains for a few seconds.
"""

import os
import sys
import time

import matplotlib.pyplot as plt
import numpy as np

from skabi import AmortizedPointEstimator, AmortizedPosterior, make_adapter, make_simulator
from skabi.adapters import AsSet, Broadcast, Concatenate, Constrain, Rename, Sqrt
from skabi.networks import DeepSet, DenseHead
FAST = "--fast" in sys.argv[1:] or os.environ.get("SKABI_DOCS_FAST") == "1"

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
# The point estimator
# -------------------
# ``estimands``: the posterior mean and three quantiles of every parameter element. A
# dense head maps the summaries to them.

simulator = make_simulator([prior, likelihood], meta_fn=meta)
adapter = make_adapter(Broadcast("N", to="x"), AsSet(["x", "y"]),
                       Constrain("sigma", lower=0), Sqrt("N"),
                       Concatenate(["beta", "sigma"], into="inference_variables"),
                       Concatenate(["x", "y"], into="summary_variables"),
                       Rename("N", "inference_conditions"))
budget = dict(epochs=2 if FAST else 20, batches_per_epoch=50 if FAST else 100,
              random_state=0, verbose=True)   # progress bars with ETA
est = AmortizedPointEstimator(adapter=adapter, estimands=("mean", 0.05, 0.5, 0.95),
                              summary_network=DeepSet(summary_dim=10),
                              head=DenseHead(), **budget)
t0 = time.perf_counter()
est.fit(simulator)
t_point = time.perf_counter() - t0

# %%
# Coverage of the 90% intervals on held-out simulations
# -----------------------------------------------------

held_out = simulator.sample(500 if FAST else 2000, random_state=1, chunk_size=64)
print(est.predict_frame(held_out[:3]).round(2))
truth = np.concatenate([np.asarray(held_out["beta"]),
                        np.asarray(held_out["sigma"]).reshape(-1, 1)], axis=1)
q = est.predict_quantiles(held_out, [0.05, 0.95])
cover = np.mean((truth > q[:, 0]) & (truth < q[:, 1]), axis=0)
print(f"point estimator: trained in {t_point:.0f} s; R^2 of the means "
      f"{est.score(held_out):.3f}; 90% interval coverage "
      + ", ".join(f"{n} {c:.3f}" for n, c in zip(est.target_names_, cover)))

# %%
# A full posterior on the same budget
# -----------------------------------

post = AmortizedPosterior(adapter=adapter, summary_network=DeepSet(summary_dim=10),
                          **budget)
t0 = time.perf_counter()
post.fit(simulator)
t_post = time.perf_counter() - t0
draws = post.sample(held_out, 1000, return_type="numpy", random_state=0)
flat = np.concatenate([draws["beta"], draws["sigma"].reshape(*draws["sigma"].shape[:2], 1)],
                      axis=2)
lo, hi = np.quantile(flat, [0.05, 0.95], axis=1)
cover = np.mean((truth > lo) & (truth < hi), axis=0)
width_point = np.mean(q[:, 1] - q[:, 0], axis=0)
print(f"posterior: trained in {t_post:.0f} s; 90% interval coverage "
      + ", ".join(f"{n} {c:.3f}" for n, c in zip(est.target_names_, cover)))
print("mean 90% interval width, point estimator vs posterior: "
      + ", ".join(f"{n} {a:.2f} / {b:.2f}" for n, a, b in
                  zip(est.target_names_, width_point, np.mean(hi - lo, axis=0))))

# %%
# The 90% intervals of the slope for 30 held-out datasets: the point estimator's
# quantiles (left of each pair) and the posterior's, with the true slope as a dot.

j, rows = 1, np.arange(30)
order = np.argsort(truth[rows, j])
fig, ax = plt.subplots(figsize=(7, 3))
ax.vlines(rows - 0.15, q[order, 0, j], q[order, 1, j], color="C0", label="point estimator")
ax.vlines(rows + 0.15, lo[order, j], hi[order, j], color="C1", label="posterior")
ax.plot(rows, truth[order, j], "k.", label="true slope")
ax.set_xlabel("held-out dataset (sorted by true slope)")
ax.set_ylabel(est.target_names_[j])
ax.legend(fontsize="small")
fig.tight_layout()
