"""Amortized likelihoods (issue 16): PSIS-LOO with a learned against an analytic likelihood.

Regression tutorial (task L of ``benchmarks/tasks.py``): ``beta ~ N([2, 0], [3, 1])``,
``sigma ~ Gamma(1, 1)``, ``x_n ~ N(0, 1)``, ``y_n ~ N(beta0 + beta1 x_n, sigma)``.

Per seed:

* a posterior as task L-spline (``DeepSet(summary_dim=10)``, spline ``CouplingFlow``, 30
  epochs x 128 batches of 64 simulations);
* a learned pointwise likelihood ``q(y_n | x_n, beta, sigma)``: ``AsObservations(["x",
  "y"])`` first, ``y`` modelled, ``x`` a per-observation covariate beside ``(beta, sigma)``,
  ``CouplingFlow(depth=4)``, ``--lik-steps`` steps of 64 simulations (as
  ``benchmarks/likelihood.py``, which models ``(x_n, y_n)`` jointly; here ``x`` is a
  covariate so that the learned value is the same quantity as the analytic
  ``log N(y_n; beta0 + beta1 x_n, sigma)``).

Observed data: ``--datasets`` datasets of N = 14 from the prior, simulated once with a
fixed seed (the same for every training seed). Per dataset, 2000 posterior draws from two
sources: the amortized posterior, and the exact posterior (``regression_exact_posterior``
of ``benchmarks/tasks.py``), which isolates the likelihood's own error from the
posterior's. For each source the ``log_likelihood`` group is filled twice with
:func:`skabi.add_log_likelihood` (learned, analytic) on the same draws, and ``az.loo`` runs
on each (one dataset at a time). Reported: both elpd_loo, their difference, the standard
error of the difference as ``az.compare`` computes it (``sqrt(N * var(pointwise elpd_loo
differences))``), whether |difference| <= 1 SE (the issue's target), both Pareto k maxima,
``az.compare``'s own ``dse``, and the share of amortized sigma draws below the exact
posterior's 0.1% quantile (the posterior's tail towards sigma = 0, which breaks PSIS).
A third source corrects the amortized draws by importance sampling with the learned
likelihood and the prior (:func:`skabi.importance_sample`, ``--proposals`` proposals per
draw): the learned model's posterior, without the network's tail. "workflow" compares
the whole amortized analysis (learned likelihood on the corrected draws) with the exact
one (analytic likelihood on exact draws).

``--tutorial`` replaces the prior datasets with the quickstart's observed dataset (12
pairs), and ``--pooling mean+max`` gives the posterior the quickstart's summary network.

``--noise-floor PAIRS`` measures the criterion for the analytic likelihood against itself
on PAIRS pairs of independent exact-posterior draw sets (no training).

``--datasets 30 --moment-dim 4 --post-epochs 60`` is issue 28's item 5 (the quickstart's
posterior over 30 datasets; a ``CRITERION`` line per source and seed), and
``--lik-proposal wide`` trains the likelihood on :func:`wide_prior` instead of the prior.

Usage: ``python benchmarks/likelihood_loo.py [--seeds 0 1 2] [--datasets 5] [--tutorial]
[--pooling mean+max] [--moment-dim 4] [--lik-proposal wide] [--noise-floor 100] [--fast]``;
prints every number.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tasks import likelihood, meta, regression_exact_posterior, regression_simulator  # noqa: E402
from tasks import regression_task  # noqa: E402

from skabi import AmortizedLikelihood, add_log_likelihood, importance_sample  # noqa: E402
from skabi import from_arviz, make_simulator, to_arviz  # noqa: E402
from skabi.adapters import AsObservations, Concatenate, Constrain, Rename, make_adapter  # noqa: E402
from skabi.networks import CouplingFlow  # noqa: E402

N_OBS = 14
#: The tutorial's prior density (task L), for importance sampling.
PRIOR = {"beta": stats.norm([2.0, 0.0], [3.0, 1.0]), "sigma": stats.gamma(1.0)}
DATA_SEED = 20260


def observed_datasets(n_datasets, n_obs=N_OBS, seed=DATA_SEED):
    """Datasets of the tutorial's model, parameters from its prior: x, y (K, N) and the truth."""
    rng = np.random.default_rng(seed)
    beta = rng.normal([2.0, 0.0], [3.0, 1.0], size=(n_datasets, 2))
    sigma = rng.gamma(1.0, 1.0, size=n_datasets)
    x = rng.normal(size=(n_datasets, n_obs))
    y = rng.normal(beta[:, :1] + beta[:, 1:] * x, sigma[:, None])
    return {"x": x, "y": y, "N": np.asarray(n_obs)}, beta, sigma


def tutorial_dataset():
    """The quickstart's observed dataset (12 pairs, ``y = 1.5 + 0.8 x + N(0, 0.5)``) in
    the shape of :func:`observed_datasets`."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=12)
    y = 1.5 + 0.8 * x + rng.normal(0, 0.5, size=12)
    return ({"x": x[None], "y": y[None], "N": np.asarray(12)}, np.array([[1.5, 0.8]]),
            np.array([0.5]))


def analytic_log_lik(draws, observed):
    """log N(y_n; beta0 + beta1 x_n, sigma): (S, N)."""
    beta, sigma = np.asarray(draws["beta"]), np.asarray(draws["sigma"]).reshape(-1, 1)
    mean = beta[:, :1] + beta[:, 1:2] * np.asarray(observed["x"])[None, :]
    return stats.norm.logpdf(np.asarray(observed["y"])[None, :], mean, sigma)


def wide_prior():
    """A training proposal for the likelihood (``--lik-proposal wide``): beta from the
    prior, sigma half from the prior, half log-uniform on [0.01, 3], so that small sigma,
    where the prior has little mass and the likelihood is sharpest, is seen often. A
    likelihood ``q(y | x, beta, sigma)`` may be trained on any proposal of the parameters
    that covers them; the prior stays the prior of the analysis."""
    beta = np.random.normal([2, 0], [3, 1])
    if np.random.uniform() < 0.5:
        sigma = np.random.gamma(1, 1)
    else:
        sigma = float(np.exp(np.random.uniform(np.log(0.01), np.log(3.0))))
    return dict(beta=beta, sigma=sigma)


def fit_likelihood(seed, steps, batch_size=64, linear_warmup="auto", proposal="prior"):
    adapter = make_adapter(AsObservations(["x", "y"]), Constrain("sigma", lower=0),
                           Rename("y", "inference_variables"),
                           Concatenate(["beta", "sigma", "x"], into="inference_conditions"))
    batches = min(100, steps)
    lik = AmortizedLikelihood(adapter=adapter, inference_network=CouplingFlow(depth=4,
                                                                linear_warmup=linear_warmup),
                              epochs=max(1, steps // batches), batches_per_epoch=batches,
                              batch_size=batch_size, random_state=seed)
    if proposal == "wide":
        return lik.fit(make_simulator([wide_prior, likelihood], meta_fn=meta))
    return lik.fit(regression_simulator())


def loo_pair(idata_learned, idata_analytic, k):
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = az.loo(idata_learned.isel(dataset=k), pointwise=True)
        b = az.loo(idata_analytic.isel(dataset=k), pointwise=True)
        try:
            cmp = az.compare({"learned": idata_learned.isel(dataset=k),
                              "analytic": idata_analytic.isel(dataset=k)})
            dse = float(cmp["dse"].max())
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            print(f"    az.compare failed: {exc!r}")
            dse = float("nan")
    ia = np.asarray(a["loo_i"]).ravel()
    ib = np.asarray(b["loo_i"]).ravel()
    diff = ia - ib
    se = float(np.sqrt(diff.size * np.var(diff)))
    return dict(elpd_learned=float(a["elpd_loo"]), se_learned=float(a["se"]),
                elpd_analytic=float(b["elpd_loo"]), se_analytic=float(b["se"]),
                diff=float(a["elpd_loo"] - b["elpd_loo"]), se_diff=se, dse=dse,
                k_learned=float(np.max(np.asarray(a["pareto_k"]))),
                k_analytic=float(np.max(np.asarray(b["pareto_k"]))),
                max_abs_pointwise=float(np.max(np.abs(diff))))


def _report_sigma_tail(seed, amortized, exact_sigma, label="amortized"):
    amort_sigma = from_arviz(amortized)[0]["sigma"][..., 0]     # (K, S)
    q = np.quantile(exact_sigma, 0.001, axis=1)
    print(f"[seed {seed}] {label} sigma draws below the exact posterior's 0.1% quantile: "
          f"{', '.join(f'{np.mean(amort_sigma[k] < q[k]):.2%}' for k in range(len(q)))} "
          f"(expected 0.1%); smallest {label} sigma per dataset: "
          f"{', '.join(f'{v:.4f}' for v in amort_sigma.min(1))}; exact: "
          f"{', '.join(f'{v:.4f}' for v in exact_sigma.min(1))}", flush=True)


def _report_c2st(seed, sources, observed, n_draws):
    """C2ST of the network's and of the corrected draws against fresh exact posterior
    draws, per dataset; resampled draws repeat, so their number of distinct draws is
    printed beside."""
    from skabi.diagnostics import c2st

    beta, sigma = regression_exact_posterior(observed["x"], observed["y"], n_draws,
                                             np.random.default_rng(seed + 1100))
    reference = {"beta": beta, "sigma": sigma[..., None]}
    for source in ("amortized", "amortized+IS"):
        draws = from_arviz(sources[source])[0]
        draws = {k: (v if v.ndim == 3 else v[..., None]) for k, v in draws.items()}
        score = c2st(draws, reference)
        distinct = [len(np.unique(draws["sigma"][k, :, 0])) for k in range(len(score))]
        print(f"[seed {seed}] C2ST of the {source} draws against exact draws: "
              f"{', '.join(f'{v:.3f}' for v in score)} (distinct draws "
              f"{', '.join(str(d) for d in distinct)} of {draws['sigma'].shape[1]})",
              flush=True)


def run_seed(seed, args, observed, truth_beta, truth_sigma):
    if not args.exact_only:
        est, sim = regression_task(seed, transform=args.posterior_transform,
                                   epochs=args.post_epochs, batches_per_epoch=args.post_batches,
                                   pooling=args.pooling, moment_dim=args.moment_dim)
        start = time.perf_counter()
        est.fit(sim)
        print(f"[seed {seed}] posterior: {args.post_epochs} x {args.post_batches} steps of 64, "
              f"train {time.perf_counter() - start:.1f} s, final loss "
              f"{est.history_['loss'].iloc[-1]:.3f}", flush=True)
    start = time.perf_counter()
    lik = fit_likelihood(seed, args.lik_steps, args.lik_batch,
                         linear_warmup=True if args.lik_linear_warmup else "auto",
                         proposal=args.lik_proposal)
    print(f"[seed {seed}] likelihood q(y_n | x_n, beta, sigma), {args.lik_proposal} "
          f"proposal: {args.lik_steps} steps of {args.lik_batch}, "
          f"train {time.perf_counter() - start:.1f} s, final loss "
          f"{lik.history_['loss'].iloc[-1]:.3f}", flush=True)

    exact_beta, exact_sigma = regression_exact_posterior(
        observed["x"], observed["y"], args.draws, np.random.default_rng(seed + 500))
    sources = {
        "exact": to_arviz({"beta": exact_beta, "sigma": exact_sigma[..., None]},
                          observed={"x": observed["x"], "y": observed["y"]}),
    }
    if not args.exact_only:
        sources["amortized"] = est.sample(observed, num_samples=args.draws,
                                          random_state=seed + 300)
        _report_sigma_tail(seed, sources["amortized"], exact_sigma)
        # The amortized draws corrected by the learned likelihood (importance resampling).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            sources["amortized+IS"] = importance_sample(
                est, lik, observed, PRIOR, num_samples=args.draws, proposals=args.proposals,
                random_state=seed + 700)
        st = sources["amortized+IS"].sample_stats
        weights_k = np.asarray(st["pareto_k"].values, dtype=float)
        print(f"[seed {seed}] importance sampling ({args.proposals} x {args.draws} proposals, "
              f"learned likelihood, {time.perf_counter() - start:.1f} s): Pareto k "
              f"{', '.join(f'{v:.2f}' for v in st['pareto_k'].values)}; ess "
              f"{', '.join(f'{v:.0f}' for v in st['ess'].values)}", flush=True)
        _report_sigma_tail(seed, sources["amortized+IS"], exact_sigma, "corrected")
        _report_c2st(seed, sources, observed, args.draws)
    rows = []
    pairs = {}
    for source, idata in sources.items():
        learned = add_log_likelihood(idata, lik)
        analytic = add_log_likelihood(idata, analytic_log_lik)
        ll_l = np.asarray(next(iter(learned.log_likelihood.data_vars.values())))
        ll_a = np.asarray(analytic.log_likelihood["obs"])
        err = ll_l - ll_a
        print(f"[seed {seed}] {source} draws: pointwise log lik error (learned - analytic) "
              f"over all draws and observations: mean {err.mean():+.4f}, sd {err.std():.4f}, "
              f"median |err| {np.median(np.abs(err)):.4f}, 99% |err| "
              f"{np.quantile(np.abs(err), 0.99):.3f}, max |err| {np.abs(err).max():.3f}")
        pairs[source] = (learned, analytic)
    if "amortized+IS" in pairs:
        # The whole amortized workflow (corrected draws, learned likelihood) against the
        # exact analysis (exact draws, analytic likelihood): different draws, so the Monte
        # Carlo error of PSIS-LOO enters (see --noise-floor).
        pairs["workflow"] = (pairs["amortized+IS"][0], pairs["exact"][1])
    for source, (learned, analytic) in pairs.items():
        for k in range(observed["x"].shape[0]):
            r = loo_pair(learned, analytic, k)
            r["met"] = abs(r["diff"]) <= r["se_diff"]
            r["source"], r["seed"], r["dataset"] = source, seed, k
            rows.append(r)
            print(f"[seed {seed}] {source} dataset {k} (beta {truth_beta[k, 0]:+.2f} "
                  f"{truth_beta[k, 1]:+.2f}, sigma {truth_sigma[k]:.2f}): elpd_loo learned "
                  f"{r['elpd_learned']:.3f} (se {r['se_learned']:.3f}), analytic "
                  f"{r['elpd_analytic']:.3f} (se {r['se_analytic']:.3f}), diff {r['diff']:+.3f}, "
                  f"se_diff {r['se_diff']:.3f} (az.compare dse {r['dse']:.3f}), z "
                  f"{r['diff'] / r['se_diff']:+.2f}, |diff| <= 1 se: "
                  f"{r['met']}, max Pareto k learned {r['k_learned']:.3f} analytic "
                  f"{r['k_analytic']:.3f}, max |pointwise elpd diff| "
                  f"{r['max_abs_pointwise']:.3f}", flush=True)
    if "amortized+IS" in sources:
        for r in rows:
            r["weights_k"] = float(weights_k[r["dataset"]])
    for source in pairs:
        sub = [r for r in rows if r["source"] == source]
        print(f"[seed {seed}] {source} draws: within 1 se on {sum(r['met'] for r in sub)} of "
              f"{len(sub)} datasets; max Pareto k <= 0.7 (both) on "
              f"{sum(max(r['k_learned'], r['k_analytic']) <= 0.7 for r in sub)}", flush=True)
    return rows


def noise_floor(observed, draws, reps, seed=0):
    """The criterion for the analytic likelihood against ITSELF: ``az.loo`` on two
    independent sets of exact posterior draws, ``reps`` pairs per dataset. Prints how often
    the two elpd_loo agree within one se of their difference, and the sd of the difference
    (the Monte Carlo error of PSIS-LOO at this number of draws)."""
    rng = np.random.default_rng(seed)
    for k in range(observed["x"].shape[0]):
        one = {"x": observed["x"][k:k + 1], "y": observed["y"][k:k + 1]}
        z, diffs = [], []
        for _ in range(reps):
            pair = []
            for _ in range(2):
                beta, sigma = regression_exact_posterior(one["x"], one["y"], draws, rng)
                idata = to_arviz({"beta": beta, "sigma": sigma[..., None]}, observed=one)
                pair.append(add_log_likelihood(idata, analytic_log_lik))
            r = loo_pair(pair[0], pair[1], 0)
            z.append(r["diff"] / r["se_diff"])
            diffs.append(r["diff"])
        z = np.abs(np.asarray(z))
        print(f"noise floor, dataset {k}, {draws} draws, {reps} pairs of independent exact "
              f"draw sets, analytic against analytic: within 1 se on {np.mean(z <= 1):.0%}, "
              f"median |diff| / se {np.median(z):.2f}, sd of diff {np.std(diffs):.3f} nats",
              flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--datasets", type=int, default=5)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--post-epochs", type=int, default=30)
    parser.add_argument("--post-batches", type=int, default=128)
    parser.add_argument("--lik-steps", type=int, default=2000)
    parser.add_argument("--lik-batch", type=int, default=64)
    parser.add_argument("--proposals", type=int, default=8,
                        help="importance sampling: proposal draws per corrected draw")
    parser.add_argument("--lik-proposal", default="prior", choices=["prior", "wide"],
                        help="what the likelihood trains on: the prior's (beta, sigma), or "
                             "half of sigma log-uniform on [0.01, 3] (wide_prior)")
    parser.add_argument("--lik-linear-warmup", action="store_true",
                        help="the likelihood flow's linear warm-up online too "
                             "(CouplingFlow(linear_warmup=True))")
    parser.add_argument("--posterior-transform", default="spline",
                        choices=["affine", "spline"],
                        help="the coupling transform of the task-L posterior")
    parser.add_argument("--pooling", default="mean", choices=["mean", "mean+max"],
                        help="the DeepSet pooling of the task-L posterior (the quickstart's: "
                             "mean+max)")
    parser.add_argument("--moment-dim", type=int, default=0,
                        help="DeepSet(moment_dim=...) of the task-L posterior (the "
                             "quickstart's: 4, with 60 epochs)")
    parser.add_argument("--tutorial", action="store_true",
                        help="the quickstart's observed dataset instead of prior datasets")
    parser.add_argument("--exact-only", action="store_true",
                        help="skip the amortized posterior: exact posterior draws only")
    parser.add_argument("--noise-floor", type=int, default=0, metavar="PAIRS",
                        help="only the criterion's Monte Carlo floor: the analytic likelihood "
                             "against itself on PAIRS pairs of independent exact draw sets")
    parser.add_argument("--fast", action="store_true", help="smoke run: tiny budgets")
    args = parser.parse_args(argv)
    if args.fast:
        args.datasets, args.draws = 2, 300
        args.post_epochs, args.post_batches, args.lik_steps = 2, 10, 20
    if args.tutorial:
        observed, beta, sigma = tutorial_dataset()
        print(f"the quickstart's observed dataset (N = 12); {args.draws} posterior draws",
              flush=True)
    else:
        observed, beta, sigma = observed_datasets(args.datasets)
        print(f"{args.datasets} observed datasets of N = {N_OBS} (data seed {DATA_SEED}); "
              f"{args.draws} posterior draws each", flush=True)
    if args.noise_floor:
        noise_floor(observed, args.draws, args.noise_floor)
        return
    allrows = []
    for seed in args.seeds:
        allrows += run_seed(seed, args, observed, beta, sigma)
    for source in ("amortized", "amortized+IS", "workflow", "exact"):
        sub = [r for r in allrows if r["source"] == source]
        if not sub:
            continue
        print(f"TOTAL {source} draws: within 1 se on {sum(r['met'] for r in sub)} of {len(sub)} "
              f"(seed, dataset) pairs")
        for seed in args.seeds:
            criterion(source, seed, [r for r in sub if r["seed"] == seed])


def criterion(source, seed, rows):
    """Issue 28 item 5 over the datasets of one seed: z = diff / se_diff with |mean| <= 0.3
    and sd in [0.7, 1.4]; mean |diff| <= 0.1 x se(elpd) (the analytic elpd_loo's se); every
    Pareto k of the LOO (both likelihoods) <= 0.7, and of the importance weights."""
    if not rows:
        return
    z = np.array([r["diff"] / r["se_diff"] for r in rows])
    abs_diff = np.array([abs(r["diff"]) for r in rows])
    se = np.array([r["se_analytic"] for r in rows])
    rel = abs_diff / se
    k_loo = np.array([max(r["k_learned"], r["k_analytic"]) for r in rows])
    line = (f"CRITERION {source} seed {seed}, {len(rows)} datasets: z mean {z.mean():+.3f} "
            f"(|mean| <= 0.3: {abs(z.mean()) <= 0.3}), sd {z.std(ddof=1):.3f} (in [0.7, 1.4]: "
            f"{0.7 <= z.std(ddof=1) <= 1.4}); mean |diff| / se(elpd) {rel.mean():.3f} "
            f"(<= 0.1: {rel.mean() <= 0.1}); mean |diff| {abs_diff.mean():.3f} nats, mean "
            f"se(elpd) {se.mean():.3f}; LOO Pareto k "
            f"<= 0.7 on {np.sum(k_loo <= 0.7)} of {len(rows)} (max {k_loo.max():.2f}; the "
            f"analytic likelihood alone: {sum(r['k_analytic'] <= 0.7 for r in rows)})")
    if "weights_k" in rows[0]:
        wk = np.array([r["weights_k"] for r in rows])
        line += (f"; importance weights' Pareto k <= 0.7 on {np.sum(wk <= 0.7)} of {len(rows)} "
                 f"(max {wk.max():.2f})")
    print(line, flush=True)


if __name__ == "__main__":
    main()
