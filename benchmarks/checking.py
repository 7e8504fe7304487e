"""Issue 15 figures: TARP on task G, and the misspecification test on task L.

    python benchmarks/checking.py tarp                 # seconds (analytic draws)
    python benchmarks/checking.py misspec --seed 0     # trains task L twice (with/without
                                                       # the MMD penalty): tens of minutes

Prints one line per figure; every seed is reported.
"""

import argparse

import numpy as np

from tasks import gaussian_exact_draws, GaussianSimulator, regression_task

from skabi.diagnostics import calibration_error, root_mean_squared_error, summary_mmd_test, tarp


def run_tarp(seeds=(0, 1, 2, 3, 4), n_datasets=500, n_draws=500):
    for seed in seeds:
        rng = np.random.default_rng(seed)
        sims = GaussianSimulator().sample(n_datasets, random_state=seed)
        draws = gaussian_exact_draws(sims["x"], n_draws, rng)
        mu = draws.mean(axis=1, keepdims=True)
        for label, d in (("exact", draws), ("sd halved", mu + 0.5 * (draws - mu))):
            r = tarp({"theta": d}, {"theta": sims["theta"]})
            print(f"TARP task G seed={seed} {label:9s}: error={r['error']:.3f} "
                  f"band={r['band']:.3f} inside={r['inside']} atc={r['atc']:+.3f}")


def _misspecified(kind, n, count, rng):
    """``count`` regression datasets of size ``n`` of one kind (well-specified or not)."""
    beta = rng.normal([2, 0], [3, 1], size=(count, 2))
    sigma = rng.gamma(1, 1, size=(count, 1))
    x = rng.normal(size=(count, n))
    noise = rng.normal(size=(count, n))
    if kind == "heavy tails":
        noise = rng.standard_t(1.5, size=(count, n))
    elif kind == "outliers":
        noise[:, 0] += 10.0 * np.sign(rng.normal(size=count))
    elif kind == "prior-data conflict":
        sigma = np.full((count, 1), 20.0)
    y = beta[:, :1] + beta[:, 1:] * x + sigma * noise
    return {"x": x, "y": y, "N": n}


def run_misspec(seed, epochs, n_reference=2000, n_null=500):
    results = {}
    for weight in (0.0, 1.0):
        est, sim = regression_task(seed, epochs=epochs)
        est.set_params(summary_mmd_weight=weight).fit(sim)
        val = sim.sample(500, chunk_size=50, random_state=seed + 100)
        post = est.sample(val, num_samples=500, log_q=False)
        cal = calibration_error(post)
        print(f"task L seed={seed} weight={weight}: RMSE/range "
              f"{root_mean_squared_error(post).round(3).to_dict()} SBC error "
              f"{cal['error'].round(3).to_dict()} inside {cal['inside'].to_dict()}")
        results[weight] = est
    est = results[1.0]
    rng = np.random.default_rng(seed + 200)
    for n in (5, 10, 14):
        ref = est.summaries(sim.sample_given({"N": n}, n_reference, random_state=rng))
        for kind in ("well-specified", "heavy tails", "outliers", "prior-data conflict"):
            for m, reps in ((1, 400 if kind == "well-specified" else 200), (10, 100)):
                p = [summary_mmd_test(est.summaries(_misspecified(kind, n, m, rng)), ref,
                                      n_null=n_null, random_state=rng).p_value
                     for _ in range(reps)]
                print(f"misspec seed={seed} N={n:2d} M={m:2d} {kind:20s}: rejection rate at "
                      f"0.05 = {np.mean(np.array(p) <= 0.05):.3f} over {reps}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["tarp", "misspec"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    if args.what == "tarp":
        run_tarp()
    else:
        run_misspec(args.seed, args.epochs)
