"""
Two moons: a bimodal posterior
==============================

The two-moons simulator, a standard test of simulation-based inference: two parameters,
two data values, and a posterior that, for data near the origin, is a pair of crescents.
A Gaussian approximation would fill the gap between them; a flow must bend around it.

There is no summary network here: the two data values go straight to the inference
network as conditions. We train flow matching (an ODE-based generative network) and a
spline coupling flow on the same budget and look at both posteriors for ``x = (0, 0)``.

Run ``python examples/two_moons.py`` (about two minutes on one CPU core); ``--fast`` or
``SKABI_DOCS_FAST=1`` trains for a few seconds, too short for sharp crescents.
"""

import os
import sys

import matplotlib.pyplot as plt
import numpy as np

from skabi import AmortizedPosterior, make_adapter, make_simulator
from skabi.adapters import Rename
from skabi.networks import CouplingFlow, FlowMatching

FAST = "--fast" in sys.argv[1:] or os.environ.get("SKABI_DOCS_FAST") == "1"

# %%
# The simulator
# -------------
# ``theta`` is uniform on the square ``[-1, 1]^2``; the data are a point on a noisy
# half circle, shifted by a function of ``theta`` that forgets the sign of
# ``theta_1 + theta_2``: two values of ``theta`` explain each observation equally well.


def prior(rng):
    return dict(theta=rng.uniform(-1, 1, size=2))


def likelihood(theta, rng):
    angle = rng.uniform(-np.pi / 2, np.pi / 2)
    radius = rng.normal(0.1, 0.01)
    point = np.array([radius * np.cos(angle) + 0.25, radius * np.sin(angle)])
    shift = np.array([-abs(theta[0] + theta[1]), -theta[0] + theta[1]]) / np.sqrt(2)
    return dict(x=point + shift)


simulator = make_simulator([prior, likelihood])
adapter = make_adapter(Rename("theta", "inference_variables"),
                       Rename("x", "inference_conditions"))

# %%
# Two inference networks, one budget
# ----------------------------------
# (Their losses are on different scales: flow matching regresses a velocity field, the
# coupling flow minimises the negative log density.)

budget = dict(epochs=4 if FAST else 40, batches_per_epoch=50 if FAST else 200,
              batch_size=128, random_state=0, verbose=True)   # progress bars with ETA
estimators = {
    "flow matching": AmortizedPosterior(adapter=adapter, inference_network=FlowMatching(),
                                        **budget),
    "spline coupling flow": AmortizedPosterior(
        adapter=adapter, inference_network=CouplingFlow(transform="spline"), **budget),
}
for name, est in estimators.items():
    est.fit(simulator)
    print(f"{name}: final loss {est.history_['loss'].iloc[-1]:.3f}")

# %%
# The posterior of ``x = (0, 0)``
# -------------------------------
# The prior's square is drawn in grey.

observed = {"x": np.zeros((1, 2))}
fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharex=True, sharey=True)
for ax, (name, est) in zip(axes, estimators.items()):
    theta = est.sample(observed, num_samples=3000, return_type="numpy")["theta"][0]
    ax.scatter(theta[:, 0], theta[:, 1], s=2, alpha=0.3)
    ax.add_patch(plt.Rectangle((-1, -1), 2, 2, fill=False, color="0.6"))
    ax.set_title(name)
    ax.set_xlabel("theta[0]")
axes[0].set_ylabel("theta[1]")
axes[0].set_xlim(-1.1, 1.1)
axes[0].set_ylim(-1.1, 1.1)
fig.tight_layout()

# %%
# Both networks find the two modes, at ``theta`` near ``(0.2, 0.2)`` and
# ``(-0.2, -0.2)``. On this budget the spline flow draws the thin crescents, while flow
# matching blurs each into a blob: its default backbone needs more steps for shapes this
# thin. The benchmarks measure the same on banks of 10^4 simulations (C2ST against
# reference draws, 0.5 is perfect: spline flow 0.563, flow matching 0.772, flow
# matching with ``backbone="residual"`` 0.616).
