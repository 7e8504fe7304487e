"""Issue 17: model comparison (a classifier) and point estimation (a regressor) against
exact answers.

* **Model comparison** -- M0: ``mu = 0`` against M1: ``mu ~ N(0, 1)``, ``x_i ~ N(mu, 1)``,
  ``N ~ UniformInt[5, 50]`` per batch, equal prior odds. The exact posterior probability
  of M1 is ``sigmoid(-log(1 + N) / 2 + (sum x)^2 / (2 (N + 1)))``. Reported over 1000 test
  datasets (the issue's count) and over 10000 (to see below the noise of the expected
  calibration error, whose floor for exact probabilities is printed beside it).
* **Point estimation** -- task G of ``benchmarks/tasks.py`` (4-D Gaussian, N = 50, exact
  posterior ``N(sum x / 51, I / 51)``): posterior-mean RMSE over the exact posterior sd,
  and the empirical coverage of the true parameter by the learned 5% / 95% quantiles,
  over 1000 test datasets; then the training time of the point estimator and of
  ``AmortizedPosterior`` (skabi's defaults) at several budgets, with the RMSE of their
  posterior means (the posterior's from 1000 draws).

Run ``python benchmarks/estimators.py`` (all), ``... comparison``, ``... point`` or
``... steps`` (s/step of both estimators, alternated);
``--seeds 0 1 2``; ``--fast`` for a smoke run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.special import expit

from skabi import AmortizedModelComparison, AmortizedPointEstimator, make_simulator
from skabi.adapters import AsSet, Broadcast, Rename, Sqrt, make_adapter
from skabi.diagnostics import expected_calibration_error
from skabi.model_comparison import simulate_models
from skabi.networks import DeepSet, DenseHead

from tasks import GaussianSimulator, gaussian_exact_posterior, gaussian_task


# ---------------------------------------------------------------------- model comparison
def _meta(rng):
    return dict(N=int(rng.integers(5, 51)))


def _zero(N, rng):
    return dict(x=rng.normal(size=(N, 1)))


def _prior(rng):
    return dict(mu=rng.normal())


def _free(mu, N, rng):
    return dict(x=mu + rng.normal(size=(N, 1)))


MODELS = {"M0": make_simulator(_zero, meta_fn=_meta),
          "M1": make_simulator([_prior, _free], meta_fn=_meta)}


def exact_p1(x):
    x = np.ravel(x)
    n, s = len(x), x.sum()
    return expit(-0.5 * np.log1p(n) + s ** 2 / (2 * (n + 1)))


def comparison(seeds, *, epochs, batches_per_epoch, n_test=(1000, 10000)):
    adapter = make_adapter(Broadcast("N", to="x"), AsSet("x"), Rename("x", "summary_variables"),
                           Sqrt("N"), Rename("N", "inference_conditions"))
    tests = {}
    for n in n_test:
        X, y = simulate_models(MODELS, n, random_state=1000 + n, chunk_size=1)
        tests[n] = (X, y, np.array([exact_p1(x) for x in X["x"]]))
    print(f"\nModel comparison: {epochs} epochs x {batches_per_epoch} batches of 64 "
          f"({epochs * batches_per_epoch * 64} simulations), DeepSet(summary_dim=8) + "
          "DenseHead()")
    print("| seed | train s | test sets | MAE of P(M1 given x) | max abs error | ECE | "
          "ECE of the exact probabilities | accuracy (exact) |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in seeds:
        clf = AmortizedModelComparison(adapter=adapter, summary_network=DeepSet(),
                                       epochs=epochs, batches_per_epoch=batches_per_epoch,
                                       random_state=seed)
        t0 = time.perf_counter()
        clf.fit(MODELS)
        seconds = time.perf_counter() - t0
        for n, (X, y, exact) in tests.items():
            p = clf.predict_proba(X)
            err = np.abs(p[:, 1] - exact)
            ece = expected_calibration_error(y, p, classes=clf.classes_)
            ece_exact = expected_calibration_error(y, np.c_[1 - exact, exact],
                                                   classes=["M0", "M1"])
            acc = np.mean(clf.predict(X) == y)
            acc_exact = np.mean(np.where(exact > 0.5, "M1", "M0") == y)
            print(f"| {seed} | {seconds:.0f} | {n} | {err.mean():.4f} | {err.max():.3f} | "
                  f"{ece:.4f} | {ece_exact:.4f} | {acc:.3f} ({acc_exact:.3f}) |", flush=True)


# ---------------------------------------------------------------------- point estimation
def _point(seed, steps):
    est, _ = gaussian_task(seed, steps=steps, learning_rate=None)   # skabi's default lr
    return AmortizedPointEstimator(adapter=est.adapter, estimands=("mean", 0.05, 0.95),
                                   summary_network=DeepSet(), head=DenseHead(),
                                   epochs=est.epochs, batches_per_epoch=est.batches_per_epoch,
                                   random_state=seed)


def point(seeds, *, steps, budgets):
    simulator = GaussianSimulator()
    test = simulator.sample(1000, random_state=999)
    mean, sd = gaussian_exact_posterior(test["x"])
    print(f"\nPoint estimation on task G: {steps} steps of 64, DeepSet() + DenseHead(), "
          "estimands mean, 0.05, 0.95; 1000 test datasets")
    print("| seed | train s | RMSE / exact sd (per dim) | mean | coverage of [q05, q95] "
          "(per dim) | pooled |")
    print("|---|---|---|---|---|---|")
    for seed in seeds:
        est = _point(seed, steps)
        t0 = time.perf_counter()
        est.fit(simulator)
        seconds = time.perf_counter() - t0
        rmse = np.sqrt(np.mean((est.predict(test) - mean) ** 2, axis=0)) / sd
        q = est.predict_quantiles(test, [0.05, 0.95])
        inside = (test["theta"] > q[:, 0]) & (test["theta"] < q[:, 1])
        print(f"| {seed} | {seconds:.0f} | {' '.join(f'{v:.3f}' for v in rmse)} | "
              f"{rmse.mean():.3f} | {' '.join(f'{v:.3f}' for v in inside.mean(axis=0))} | "
              f"{inside.mean():.3f} |", flush=True)

    print("\nTraining time for the accuracy of the posterior mean, seed 0 (the posterior's "
          "mean from 1000 draws; its Monte Carlo error alone is 0.032 sd)")
    print("| steps | point: train s | point: RMSE/sd | posterior: train s | "
          "posterior: RMSE/sd |")
    print("|---|---|---|---|---|")
    for budget in budgets:
        est = _point(0, budget)
        t0 = time.perf_counter()
        est.fit(simulator)
        t_point = time.perf_counter() - t0
        r_point = np.sqrt(np.mean((est.predict(test) - mean) ** 2)) / sd
        post, _ = gaussian_task(0, steps=budget, learning_rate=None)
        t0 = time.perf_counter()
        post.fit(simulator)
        t_post = time.perf_counter() - t0
        draws = post.sample(test, 1000, return_type="numpy", random_state=0)["theta"]
        r_post = np.sqrt(np.mean((draws.mean(axis=1) - mean) ** 2)) / sd
        print(f"| {budget} | {t_point:.0f} | {r_point:.3f} | {t_post:.0f} | {r_post:.3f} |",
              flush=True)


def step_times(rounds=3, steps=300):
    """s/step of the point estimator and the posterior on task G, alternated so that both
    see the same load (the ratio holds on a busy machine)."""
    simulator = GaussianSimulator()
    print(f"\ns/step on task G, {steps} steps each, alternated {rounds} times")
    print("| round | point s/step | posterior s/step | ratio |")
    print("|---|---|---|---|")
    for r in range(rounds):
        times = []
        for make in (lambda: _point(r, steps), lambda: gaussian_task(r, steps=steps,
                                                                      learning_rate=None)[0]):
            est = make()
            est.fit(simulator)
            times.append(est.history_["seconds"].sum() / steps)
        print(f"| {r} | {times[0]:.4f} | {times[1]:.4f} | {times[1] / times[0]:.1f} |",
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", nargs="?", default="all", choices=["all", "comparison", "point", "steps"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--fast", action="store_true", help="tiny budgets: a smoke run")
    args = parser.parse_args()
    if args.what in ("all", "comparison"):
        comparison(args.seeds, epochs=2 if args.fast else 30,
                   batches_per_epoch=20 if args.fast else 100,
                   n_test=(200,) if args.fast else (1000, 10000))
    if args.what in ("all", "point"):
        point(args.seeds, steps=200 if args.fast else 2000,
              budgets=[100] if args.fast else [500, 1000, 2000])
    if args.what in ("all", "steps"):
        step_times(rounds=1 if args.fast else 3, steps=50 if args.fast else 300)


if __name__ == "__main__":
    main()
