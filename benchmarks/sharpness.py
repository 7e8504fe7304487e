"""How sharp task L's posterior of the noise sd is, against the exact posterior.

SBC checks calibration on average over the prior; it does not see a posterior that is
calibrated but too wide where the summaries lose information. This script trains task L
(spline flow, 30 x 128 steps of 64) with a chosen summary network, or loads a saved
model, and compares the posterior of ``sigma`` with the exact one
(``tasks.regression_exact_posterior``) on 100 datasets from the prior at N = 5 and at
N = 14 (1000 draws each): the ratio of the posterior sds (median and 90th percentile
over datasets) and the share of draws below the exact posterior's 0.1% quantile (0.001
for the exact posterior).

    python benchmarks/sharpness.py mean meanmax meanmax_eq2 settransformer
    python benchmarks/sharpness.py path/to/model.skabi
"""

import argparse
import json
import time

import numpy as np

from skabi import AmortizedPosterior, make_adapter, make_simulator
from skabi.adapters import AsSet, Broadcast, Concatenate, Constrain, Sqrt
from skabi.networks import DeepSet, SetTransformer
from tasks import likelihood, meta, prior, regression_exact_posterior, regression_task


def likelihood_with_residual_sd(beta, sigma, N):
    """The tutorial's likelihood plus a hand-made statistic: log of the least-squares
    residual sd of the dataset (a sufficient statistic for sigma with the fitted line)."""
    out = likelihood(beta, sigma, N)
    design = np.column_stack([np.ones(N), out["x"]])
    resid = out["y"] - design @ np.linalg.lstsq(design, out["y"], rcond=None)[0]
    return {**out, "log_resid_sd": np.log(np.sqrt(resid @ resid / (N - 2)) + 1e-12)}


def with_residual_sd(est):
    """Task L's estimator and simulator with the residual sd as an extra condition."""
    est.set_params(adapter=make_adapter(
        Broadcast("N", to="x"), AsSet(["x", "y"]), Constrain("sigma", lower=0), Sqrt("N"),
        Concatenate(["beta", "sigma"], into="inference_variables"),
        Concatenate(["x", "y"], into="summary_variables"),
        Concatenate(["N", "log_resid_sd"], into="inference_conditions")))
    return est, make_simulator([prior, likelihood_with_residual_sd], meta_fn=meta)

SUMMARY_NETWORKS = {
    "mean": lambda: DeepSet(summary_dim=10),
    "meanmax": lambda: DeepSet(summary_dim=10, pooling="mean+max"),
    "meanmax_eq2": lambda: DeepSet(summary_dim=10, pooling="mean+max", num_equivariant=2),
    "settransformer": lambda: SetTransformer(summary_dim=10),
    # second-order pooling of 4 learned projections beside mean (or mean+max) pooling
    "mean_moments2": lambda: DeepSet(summary_dim=10, moment_dim=2),
    "mean_moments4": lambda: DeepSet(summary_dim=10, moment_dim=4),
    "meanmax_moments4": lambda: DeepSet(summary_dim=10, pooling="mean+max", moment_dim=4),
    # mean+max and the log residual sd of a least-squares fit beside sqrt(N)
    "meanmax_residual_sd": lambda: DeepSet(summary_dim=10, pooling="mean+max"),
}


def run(variant, seed=0, n_datasets=100, n_draws=1000, epochs=30):
    est, sim = regression_task(seed, epochs=epochs)
    train_s = 0.0
    if variant.endswith(".skabi"):
        est = AmortizedPosterior.load(variant)
    else:
        est.set_params(summary_network=SUMMARY_NETWORKS[variant]())
        if variant.endswith("residual_sd"):
            est, sim = with_residual_sd(est)
        start = time.perf_counter()
        est.fit(sim)
        train_s = time.perf_counter() - start
    rng = np.random.default_rng(123)        # the same datasets for every variant
    rows = []
    for n in (5, 14):
        sims = sim.sample_given({"N": n}, n_datasets, random_state=rng)
        sigma = est.sample(sims, num_samples=n_draws, random_state=0,
                           return_type="numpy")["sigma"][..., 0]
        _, exact = regression_exact_posterior(sims["x"], sims["y"], 4 * n_draws, rng)
        ratio = sigma.std(axis=1) / exact.std(axis=1)
        below = (sigma < np.quantile(exact, 0.001, axis=1)[:, None]).mean(axis=1)
        rows.append({"N": n, "sd_ratio_median": round(float(np.median(ratio)), 3),
                     "sd_ratio_q90": round(float(np.quantile(ratio, 0.9)), 3),
                     "below_exact_q001": round(float(below.mean()), 4),
                     "below_exact_q001_worst": round(float(below.max()), 3)})
    return {"variant": variant, "train_s": round(train_s, 1), "rows": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variants", nargs="+",
                        help=f"summary networks ({', '.join(SUMMARY_NETWORKS)}) or .skabi files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30, help="epochs of 128 steps")
    args = parser.parse_args()
    for v in args.variants:
        print(json.dumps({**run(v, args.seed, epochs=args.epochs), "epochs": args.epochs}),
              flush=True)
