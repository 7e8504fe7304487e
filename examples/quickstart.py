"""Quickstart: the BayesFlow linear-regression tutorial, end to end, with skabi.

Simulator (N in 5..14 per batch) -> adapter -> DeepSet + spline coupling flow, online
training on 2 CPU cores in about two minutes, then posterior draws for 200 validation
datasets x 1000 draws with recovery and calibration summaries, and the posterior of one
observed dataset given as a pandas DataFrame.

Run:  python examples/quickstart.py  [--fast]   (--fast: a 20-second smoke run)
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from skabi import AmortizedPosterior, make_adapter, make_simulator
from skabi.adapters import AsSet, Broadcast, Concatenate, Constrain, Rename, Sqrt
from skabi.networks import CouplingFlow, DeepSet

warnings.filterwarnings("ignore", message="ArviZ is undergoing", category=FutureWarning)


# 1. The generative model, as single-draw functions (exactly as in the tutorial).
def prior():
    beta = np.random.normal([2, 0], [3, 1])   # intercept, slope
    sigma = np.random.gamma(1, 1)             # residual sd
    return dict(beta=beta, sigma=sigma)


def likelihood(beta, sigma, N):
    x = np.random.normal(0, 1, size=N)
    y = np.random.normal(beta[0] + beta[1] * x, sigma, size=N)
    return dict(y=y, x=x)


def meta():
    return dict(N=np.random.randint(5, 15))   # constant within a batch


def main(fast=False):
    simulator = make_simulator([prior, likelihood], meta_fn=meta)

    # 2. How the simulated variables feed the networks.
    adapter = make_adapter(
        Broadcast("N", to="x"),
        AsSet(["x", "y"]),
        Constrain("sigma", lower=0),
        Sqrt("N"),
        Concatenate(["beta", "sigma"], into="inference_variables"),
        Concatenate(["x", "y"], into="summary_variables"),
        Rename("N", "inference_conditions"),
    )

    # 3. Networks (hyperparameters only) and training.
    est = AmortizedPosterior(
        adapter=adapter,
        inference_network=CouplingFlow(transform="spline"),
        summary_network=DeepSet(summary_dim=10),
        epochs=2 if fast else 50,                 # as in the tutorial: 50 x 200 steps
        batches_per_epoch=50 if fast else 200,
        batch_size=64,
        validation_sims=300,
        random_state=0,
        verbose=True,
    )
    start = time.perf_counter()
    est.fit(simulator)
    print(f"\nTrained on {est.n_simulations_} simulations in {time.perf_counter() - start:.1f} s")
    print(est.history_[["loss", "val_loss", "lr", "seconds"]].tail(3).to_string())

    # 4. Posterior draws for 200 validation datasets (they hold the true parameters).
    val_sims = simulator.sample(200, random_state=123)
    start = time.perf_counter()
    idata = est.sample(val_sims, num_samples=1000)
    print(f"\nSampled 200 datasets x 1000 draws in {time.perf_counter() - start:.2f} s")
    sigma = idata.posterior["sigma"].values
    print(f"smallest sigma draw: {sigma.min():.3g} (all > 0: {bool((sigma > 0).all())})")

    # 5. Recovery and calibration.
    print("\nDiagnostics (metric x parameter):")
    print(est.compute_default_diagnostics(val_sims).round(3).to_string())
    print(f"\nHeld-out score (mean log q): {est.score(val_sims):.3f}")

    # 6. One observed dataset as a DataFrame: rows are observations.
    rng = np.random.default_rng(7)
    x_obs = rng.normal(size=12)
    observed = pd.DataFrame({"x": x_obs, "y": 1.5 + 0.8 * x_obs + rng.normal(0, 0.5, size=12)})
    post = est.sample(observed, meta={"N": len(observed)}, num_samples=2000)
    import arviz as az

    print("\nPosterior of the observed DataFrame (truth: beta=[1.5, 0.8], sigma=0.5):")
    print(az.summary(post.sel(dataset=0), kind="stats").round(3).to_string())
    return est


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny budget smoke run")
    main(fast=parser.parse_args().fast)
