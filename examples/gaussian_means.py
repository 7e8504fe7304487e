"""
Gaussian means: a first posterior
=================================

The smallest amortized workflow: the means of a 4-dimensional Gaussian, observed
through 50 draws. The prior is ``theta ~ N(0, I)`` and each observation is
``x_n ~ N(theta, I)``, so the exact posterior is known,
``N(sum(x) / (n + 1), I / (n + 1))``, and we can check what the networks learn.

The simulator here is *batched*: a :class:`skabi.Simulator` subclass that draws a whole
batch with vectorised numpy code (the other spelling, single-draw functions, is in the
linear-regression tutorial). A DeepSet reads the 50 exchangeable observations; an affine
coupling flow gives the posterior.

Run ``python examples/gaussian_means.py`` (about 20 seconds on one CPU core); ``--fast`` or
``SKABI_DOCS_FAST=1`` trains for a few seconds.
"""

import os
import sys

import matplotlib.pyplot as plt
import numpy as np

from skabi import AmortizedPosterior, Simulator, make_adapter
from skabi.adapters import Rename
from skabi.diagnostics import calibration_error, plots
from skabi.networks import CouplingFlow, DeepSet

FAST = "--fast" in sys.argv[1:] or os.environ.get("SKABI_DOCS_FAST") == "1"

# %%
# A batched simulator
# -------------------
# ``simulate(batch_size, rng)`` returns a dict of arrays with a leading batch axis.


class GaussianMeans(Simulator):
    def __init__(self, n_obs=50, dim=4):
        self.n_obs = n_obs
        self.dim = dim

    def simulate(self, batch_size, rng):
        theta = rng.normal(size=(batch_size, self.dim))
        x = theta[:, None, :] + rng.normal(size=(batch_size, self.n_obs, self.dim))
        return {"theta": theta, "x": x}


simulator = GaussianMeans()
print({k: v.shape for k, v in simulator.sample(2, random_state=0).items()})

# %%
# Adapter, networks, training
# ---------------------------
# ``theta`` is what we infer; ``x``, of shape ``(batch, 50, 4)``, is already a set of 50
# observations of 4 features, so it goes to the summary network as it is.

adapter = make_adapter(Rename("theta", "inference_variables"),
                       Rename("x", "summary_variables"))
est = AmortizedPosterior(adapter=adapter,
                         inference_network=CouplingFlow(depth=4),
                         summary_network=DeepSet(summary_dim=8),
                         epochs=5 if FAST else 20, batches_per_epoch=60 if FAST else 100,
                         random_state=0, verbose=True)   # progress bar with ETA
est.fit(simulator)
fig = plots.loss(est.history_)

# %%
# Against the exact posterior
# ---------------------------
# For 100 new datasets: the posterior means and sds against the exact ones, and
# simulation-based calibration. With four parameters the four tests are read together
# (``family_wise=True``): each band is widened so that exact draws pass all four 95% of
# the time, where four separate 95% bands fail one of them in about one run of five.

val = simulator.sample(100, random_state=1)
idata = est.sample(val, num_samples=500)
draws = idata.posterior["theta"].values[0]            # (draw, dataset, 4)
exact_mean = val["x"].sum(axis=1) / (simulator.n_obs + 1)
exact_sd = np.sqrt(1 / (simulator.n_obs + 1))
print(f"posterior means: largest error {np.abs(draws.mean(0) - exact_mean).max():.3f} "
      f"(exact sd {exact_sd:.3f})")
print(f"posterior sds: {draws.std(0).mean(0).round(3)} (exact {exact_sd:.3f})")
print(calibration_error(idata, family_wise=True).round(3).to_string())

fig, ax = plt.subplots(figsize=(4, 4))
ax.scatter(exact_mean.ravel(), draws.mean(0).ravel(), s=8)
lims = [exact_mean.min(), exact_mean.max()]
ax.plot(lims, lims, color="k", lw=1)
ax.set_xlabel("exact posterior mean")
ax.set_ylabel("skabi posterior mean")
fig.tight_layout()

# %%
fig = plots.calibration_histogram(idata)
