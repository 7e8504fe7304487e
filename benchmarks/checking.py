"""Issue 15 figures: TARP on task G, and the misspecification test on task L.

    python benchmarks/checking.py tarp                     # seconds (analytic draws)
    python benchmarks/checking.py train --seed 0 --weight 1.0 --out models/
                                                           # one training of task L, then
                                                           # its SBC and RMSE; saves the model
    python benchmarks/checking.py misspec --model models/L-s0-w1.0.skabi
                                                           # calibration and power of the
                                                           # misspecification test
    python benchmarks/checking.py misspec --seed 0         # train (weight 1) and test in one go
    python benchmarks/checking.py compare --seeds 0,1 --out models/
                                                           # paired NRMSE, with vs without
                                                           # the penalty (models of `train`)
    python benchmarks/checking.py baseline [--model PATH]  # residual tests (and a
                                                           # Mahalanobis test in the model's
                                                           # summary space), for comparison

Prints one line per figure; every seed is reported.
"""

import argparse
import os
import time

import numpy as np

from tasks import gaussian_exact_draws, GaussianSimulator, regression_simulator, regression_task

from skabi import AmortizedPosterior
from skabi.diagnostics import calibration_error, root_mean_squared_error, summary_mmd_test, tarp
from skabi.diagnostics.misspecification import _kernel
from skabi.networks import DeepSet


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


# ------------------------------------------------------------------ task L: training
def run_train(seed, weight, epochs, batches_per_epoch, out=None, n_val=500, n_draws=500,
              summary_dim=10, pooling="mean"):
    """Train task L (spline flow) with ``summary_mmd_weight=weight``; SBC and RMSE."""
    est, sim = regression_task(seed, epochs=epochs, batches_per_epoch=batches_per_epoch)
    est.set_params(summary_mmd_weight=weight)
    if summary_dim != 10 or pooling != "mean":
        est.set_params(summary_network=DeepSet(summary_dim=summary_dim, pooling=pooling))
    t0 = time.perf_counter()
    est.fit(sim)
    train_s = time.perf_counter() - t0
    # the validation set depends on the seed only, so both weights see the same data
    val = sim.sample(n_val, chunk_size=50, random_state=seed + 100)
    post = est.sample(val, num_samples=n_draws, log_q=False, random_state=seed + 300)
    cal = calibration_error(post)
    rmse = root_mean_squared_error(post)
    print(f"train task L seed={seed} weight={weight} summary_dim={summary_dim} "
          f"epochs={epochs}x{batches_per_epoch}: "
          f"{train_s:.0f} s; final loss {est.history_['loss'].iloc[-1]:.3f} "
          f"val_loss {est.history_['val_loss'].iloc[-1]:.3f}", flush=True)
    for name in rmse.index:
        print(f"  seed={seed} weight={weight} {name:10s}: NRMSE {rmse[name]:.4f}  SBC error "
              f"{cal['error'][name]:.3f} band {cal['band'][name]:.3f} "
              f"inside {bool(cal['inside'][name])}", flush=True)
    if out is not None:
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, model_name(seed, weight, summary_dim, pooling))
        est.save(path)
        print(f"  saved {path}", flush=True)
    return est, sim


def model_name(seed, weight, summary_dim=10, pooling="mean"):
    """File name of a model ``run_train`` saves (and ``run_compare`` reads)."""
    dim = "" if summary_dim == 10 else f"-d{summary_dim}"
    pool = "" if pooling == "mean" else f"-{pooling.replace('+', '')}"
    return f"L-s{seed}-w{weight}{dim}{pool}.skabi"


def run_compare(seeds, folder, n_val=500, n_draws=500, n_boot=2000, pooling="mean"):
    """Paired comparison of the models trained with and without the penalty (same seed,
    same budget): NRMSE of each element on the same validation set (the one of
    ``run_train``) with a paired bootstrap over datasets of the difference, and SBC."""
    sim = regression_simulator()
    for seed in seeds:
        val = sim.sample(n_val, chunk_size=50, random_state=seed + 100)
        truth = np.concatenate([np.reshape(val["beta"], (n_val, -1)),
                                np.reshape(val["sigma"], (n_val, -1))], axis=1)
        err = {}
        for weight in (0.0, 1.0):
            est = AmortizedPosterior.load(os.path.join(folder,
                                                       model_name(seed, weight, pooling=pooling)))
            draws = est.sample(val, num_samples=n_draws, random_state=seed + 300,
                               return_type="numpy")
            mean = np.concatenate([np.reshape(draws["beta"], (n_val, n_draws, -1)),
                                   np.reshape(draws["sigma"], (n_val, n_draws, -1))],
                                  axis=2).mean(axis=1)
            err[weight] = (mean - truth) ** 2                    # (n_val, 3)
        scale = truth.max(axis=0) - truth.min(axis=0)
        nrmse = {w: np.sqrt(e.mean(axis=0)) / scale for w, e in err.items()}
        rng = np.random.default_rng(seed)
        boot = np.empty((n_boot, truth.shape[1]))
        for b in range(n_boot):
            i = rng.integers(0, n_val, n_val)
            boot[b] = (np.sqrt(err[1.0][i].mean(axis=0)) - np.sqrt(err[0.0][i].mean(axis=0))) \
                / scale
        for j, name in enumerate(("beta[0]", "beta[1]", "sigma")):
            print(f"compare seed={seed} {name:8s}: NRMSE without {nrmse[0.0][j]:.4f} with "
                  f"{nrmse[1.0][j]:.4f}, difference {nrmse[1.0][j] - nrmse[0.0][j]:+.4f} "
                  f"(paired bootstrap SE {boot[:, j].std():.4f})", flush=True)


# ------------------------------------------------------------------ task L: the test
KINDS = ("well-specified", "heavy tails", "outliers", "prior-data conflict")


def _make_kind(kind, sims, rng):
    """Observed datasets of one kind from task-L simulations ``sims`` (B datasets of size N):
    the simulator's draws as they are (well-specified), or ``y`` rebuilt from the same
    ``beta``, ``sigma`` and ``x`` with t(1.5) residuals, with 2 points shifted by 10 sd, or
    with sigma = 10 (Gamma(1, 1) prior: P(sigma > 10) = 5e-5)."""
    if kind == "well-specified":
        return sims
    beta, sigma, x = sims["beta"], np.reshape(sims["sigma"], (-1, 1)), sims["x"]
    noise = rng.normal(size=x.shape)
    if kind == "heavy tails":
        noise = rng.standard_t(1.5, size=x.shape)
    elif kind == "outliers":
        noise[:, :2] += 10.0 * np.sign(rng.normal(size=(x.shape[0], 2)))
    elif kind == "prior-data conflict":
        sigma = np.full_like(sigma, 10.0)
    y = beta[:, :1] + beta[:, 1:] * x + sigma * noise
    return {"x": x, "y": y, "N": sims["N"]}


class _Reference:
    """One reference set prepared once: exactly :func:`summary_mmd_test`'s split, kernels
    and null, computed once per reference and per M so that many observed sets can be
    tested against it (each test is the one ``summary_mmd_test`` does with this split
    and null; checked against the library call below)."""

    def __init__(self, reference, ms, n_null, rng, null_fraction=0.5):
        self.reference = reference
        n_pool = int(round(reference.shape[0] * null_fraction))
        order = rng.permutation(reference.shape[0])
        self.pool, self.base = reference[order[:n_pool]], reference[order[n_pool:]]
        d = reference.shape[1]
        self.d = d
        self.base_term = _kernel(self.base, self.base, d).mean()
        cross = _kernel(self.pool, self.base, d).mean(axis=1)
        k_pool = _kernel(self.pool, self.pool, d)
        self.null = {}
        for m in ms:
            null = np.empty(n_null)
            for i in range(n_null):
                idx = rng.choice(n_pool, size=m, replace=False)
                sq = k_pool[np.ix_(idx, idx)].mean() + self.base_term - 2 * cross[idx].mean()
                null[i] = np.sqrt(max(sq, 0.0))
            self.null[m] = null

    def p_value(self, observed):
        d = self.d
        sq = (_kernel(observed, observed, d).mean() + self.base_term
              - 2 * _kernel(observed, self.base, d).mean())
        stat = np.sqrt(max(sq, 0.0))
        null = self.null[observed.shape[0]]
        return (1 + np.sum(null >= stat)) / (1 + null.size)


def run_misspec(est, sim, label, seed, n_references=100, n_reference=2000, n_null=500,
                ns=(5, 10, 14), ms=(1, 10), calib_per_ref=4, power_per_ref=2, alpha=0.05):
    """Calibration and power of the misspecification test on task L.

    For each N: ``n_references`` independent reference sets of ``n_reference`` simulations
    (``misspecification_test``'s default), each with its own split and null (``n_null``);
    against each, ``calib_per_ref`` fresh well-specified observed sets and ``power_per_ref``
    sets of each misspecification, for M = 1 and M = 10 datasets per test. Observed sets are
    independent of everything else; tests that share a reference are dependent through it,
    so beside the binomial standard error the standard error over references is printed.
    """
    rng = np.random.default_rng(seed + 200)
    t_all = time.perf_counter()
    print(f"misspecification test, model {label}: {n_references} references x "
          f"{n_reference} simulations per N, null {n_null}, alpha {alpha}", flush=True)
    for n in ns:
        t0 = time.perf_counter()
        hits = {(k, m): [] for k in KINDS for m in ms}      # per reference: list of 0/1
        for r in range(n_references):
            ref_sum = est.summaries(sim.sample_given({"N": n}, n_reference, random_state=rng))
            ref = _Reference(ref_sum, ms, n_null, rng)
            for kind in KINDS:
                per = calib_per_ref if kind == "well-specified" else power_per_ref
                for m in ms:
                    obs = _make_kind(kind, sim.sample_given({"N": n}, per * m, random_state=rng),
                                     rng)
                    s = est.summaries(obs).reshape(per, m, -1)
                    hits[kind, m].append([ref.p_value(s[j]) <= alpha for j in range(per)])
            if r == 0:   # the prepared reference gives summary_mmd_test's p-value exactly
                check_rng = np.random.default_rng(12345)
                prepared = _Reference(ref_sum, (1,), n_null, np.random.default_rng(12345))
                lib = summary_mmd_test(s[0, :1], ref_sum, n_null=n_null, random_state=check_rng)
                assert np.isclose(prepared.p_value(s[0, :1]), lib.p_value), \
                    (prepared.p_value(s[0, :1]), lib.p_value)
        for kind in KINDS:
            for m in ms:
                h = np.asarray(hits[kind, m], dtype=float)       # (references, per)
                rate, count = h.mean(), h.size
                se_binom = np.sqrt(rate * (1 - rate) / count)
                se_ref = h.mean(axis=1).std(ddof=1) / np.sqrt(h.shape[0])
                print(f"misspec {label} N={n:2d} M={m:2d} {kind:20s}: rejection rate "
                      f"{rate:.3f} over {count} tests (binomial SE {se_binom:.3f}, SE over "
                      f"references {se_ref:.3f})", flush=True)
        print(f"  N={n}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"misspecification test total: {time.perf_counter() - t_all:.0f} s", flush=True)


def run_residual_baseline(seed=0, count=20000, alpha=0.05):
    """Hand-made tests for comparison, one dataset each: the kurtosis of the least-squares
    residuals (scale- and beta-invariant, aimed at tails and outliers) and their variance
    (aimed at a large sigma), each rejecting in its upper tail, calibrated on ``count``
    well-specified datasets of the same N. What a test aimed at one kind can do with
    N = 5..14 points, against which the summary-space test's power can be read."""
    rng = np.random.default_rng(seed)
    sim = regression_simulator()

    def residuals(d):
        x, y = np.asarray(d["x"]), np.asarray(d["y"])
        design = np.stack([np.ones_like(x), x], axis=-1)
        coef = np.linalg.solve(design.transpose(0, 2, 1) @ design,
                               np.einsum("bni,bn->bi", design, y)[..., None])[..., 0]
        return y - np.einsum("bni,bi->bn", design, coef)

    stats = {"residual kurtosis": lambda r: (r ** 4).mean(1) / (r ** 2).mean(1) ** 2,
             "residual variance": lambda r: (r ** 2).mean(1)}
    for n in (5, 10, 14):
        r_null = residuals(sim.sample_given({"N": n}, count, random_state=rng))
        r_obs = {kind: residuals(_make_kind(kind, sim.sample_given({"N": n}, 2000,
                                                                    random_state=rng), rng))
                 for kind in KINDS}
        for name, stat in stats.items():
            crit = np.quantile(stat(r_null), 1 - alpha)
            rates = ", ".join(f"{kind} {np.mean(stat(r) > crit):.3f}"
                              for kind, r in r_obs.items())
            print(f"{name} test N={n:2d} M=1: {rates}", flush=True)


def run_summary_norm(est, sim, seed=0, count=20000, alpha=0.05):
    """Another test in the same summary space, for comparison with the MMD test: the
    Mahalanobis distance of one dataset's summary from ``count`` simulated summaries (the
    95% quantile of theirs as critical value). Equal power says the kernel is not what
    limits the MMD test; the summaries are."""
    rng = np.random.default_rng(seed)
    for n in (5, 10, 14):
        ref = est.summaries(sim.sample_given({"N": n}, count, random_state=rng))
        mu, prec = ref.mean(axis=0), np.linalg.inv(np.cov(ref.T))

        def maha(s):
            return np.einsum("bi,ij,bj->b", s - mu, prec, s - mu)

        crit = np.quantile(maha(ref), 1 - alpha)
        rates = []
        for kind in KINDS:
            s = est.summaries(_make_kind(kind, sim.sample_given({"N": n}, 2000,
                                                                random_state=rng), rng))
            rates.append(f"{kind} {np.mean(maha(s) > crit):.3f}")
        print(f"summary Mahalanobis test N={n:2d} M=1: " + ", ".join(rates), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["tarp", "train", "misspec", "compare", "baseline"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weight", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batches-per-epoch", type=int, default=128)
    parser.add_argument("--summary-dim", type=int, default=10, help="train: DeepSet summary_dim")
    parser.add_argument("--pooling", default="mean", help="train: DeepSet pooling")
    parser.add_argument("--out", default=None, help="folder to save the trained model in")
    parser.add_argument("--seeds", default="0,1", help="compare: seeds, comma-separated")
    parser.add_argument("--model", default=None, help="misspec: a saved model instead of training")
    parser.add_argument("--references", type=int, default=100,
                        help="misspec: independent reference sets per N")
    parser.add_argument("--fast", action="store_true",
                        help="misspec: 10 references per N and 3 epochs x 32 batches")
    args = parser.parse_args()
    if args.what == "tarp":
        run_tarp()
    elif args.what == "baseline":
        run_residual_baseline(args.seed)
        if args.model:
            run_summary_norm(AmortizedPosterior.load(args.model), regression_simulator(),
                             args.seed)
    elif args.what == "compare":
        run_compare([int(s) for s in args.seeds.split(",")], args.out, pooling=args.pooling)
    elif args.what == "train":
        run_train(args.seed, args.weight, args.epochs, args.batches_per_epoch, args.out,
                  summary_dim=args.summary_dim, pooling=args.pooling)
    else:
        if args.fast:
            args.references, args.epochs, args.batches_per_epoch = 10, 3, 32
        if args.model:
            est, sim = AmortizedPosterior.load(args.model), regression_simulator()
            label = os.path.basename(args.model)
        else:
            est, sim = run_train(args.seed, args.weight, args.epochs, args.batches_per_epoch,
                                 args.out, summary_dim=args.summary_dim)
            label = f"seed={args.seed} weight={args.weight}"
        run_misspec(est, sim, label, args.seed, args.references)
