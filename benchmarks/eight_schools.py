"""Eight schools (issue 18): the amortized posterior against a long MCMC reference.

The model of ``examples/multilevel.py``: mu ~ N(0, 5), tau ~ HalfNormal(5),
theta_j ~ N(mu, tau), y_j ~ N(theta_j, sigma_j), with the classic
y = 28, 8, -3, 7, -1, 1, 18, 12 and sigma = 15, 10, 16, 11, 9, 11, 10, 18.

Reference: emcee (affine-invariant ensemble sampler; installed in the benchmark's
environment only, not a skabi dependency) on the non-centred parametrisation
(mu, log tau, eta_1..8), theta_j = mu + tau * eta_j, with the log-Jacobian of log tau;
several independent runs, each checked for autocorrelation time and acceptance fraction,
must agree before their draws are pooled.

Amortized: AmortizedMultilevelPosterior as in ``examples/multilevel.py``'s
``eight_schools`` (default flows, a mean+sum DeepSet over the schools, (y_j, sigma_j) as
the local conditions), trained per seed; 10,000 draws in one ``sample`` call (timed).
Reports C2ST of (mu, log tau) (target <= 0.6) and, per school,
|mean_amortized - mean_ref| / sd_ref (target <= 0.1) and sd_amortized / sd_ref.

    pip install emcee   # benchmark only
    python benchmarks/eight_schools.py --seeds 0 1 2 [--steps 3000] [--fast]
"""

import argparse
import json
import time

import numpy as np

Y = np.array([28, 8, -3, 7, -1, 1, 18, 12.0])
SIGMA = np.array([15, 10, 16, 11, 9, 11, 10, 18.0])
J = len(Y)


# ----------------------------------------------------------------------------- reference
def log_prob(x):
    """Log posterior of (mu, log tau, eta_1..8), vectorised over rows of ``x``."""
    x = np.atleast_2d(x)
    mu, log_tau, eta = x[:, 0], x[:, 1], x[:, 2:]
    tau = np.exp(log_tau)
    theta = mu[:, None] + tau[:, None] * eta
    lp = -0.5 * (mu / 5.0) ** 2                      # mu ~ N(0, 5)
    lp += -0.5 * (tau / 5.0) ** 2 + log_tau          # tau ~ HalfNormal(5), d tau / d log tau
    lp += -0.5 * np.sum(eta ** 2, axis=1)            # eta_j ~ N(0, 1)
    lp += -0.5 * np.sum(((Y - theta) / SIGMA) ** 2, axis=1)  # y_j ~ N(theta_j, sigma_j)
    return lp


def to_theta(x):
    """(mu, log tau, eta) -> dict of mu, log_tau, tau, theta (n, 8)."""
    return {"mu": x[:, 0], "log_tau": x[:, 1], "tau": np.exp(x[:, 1]),
            "theta": x[:, :1] + np.exp(x[:, 1:2]) * x[:, 2:]}


def summary(d):
    """Means and sds of mu, log tau and theta_j."""
    cols = np.column_stack([d["mu"], d["log_tau"], d["theta"]])
    return cols.mean(0), cols.std(0)


def reference(n_runs, n_walkers, burn, steps, seed=1000):
    import emcee

    ndim = 2 + J
    runs, checks = [], []
    start = time.perf_counter()
    for r in range(n_runs):
        rng = np.random.default_rng(seed + r)
        p0 = np.column_stack([rng.normal(0, 5, n_walkers), rng.normal(1, 1, n_walkers),
                              rng.normal(0, 1, (n_walkers, J))])
        sampler = emcee.EnsembleSampler(
            n_walkers, ndim, log_prob, vectorize=True,
            moves=[(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)])
        sampler.random_state = np.random.RandomState(seed + r).get_state()
        state = sampler.run_mcmc(p0, burn)
        sampler.reset()
        sampler.run_mcmc(state, steps)
        tau_ac = sampler.get_autocorr_time(quiet=True)
        thin = max(1, int(np.ceil(np.max(tau_ac))))
        chain = sampler.get_chain(flat=True, thin=thin)
        runs.append(chain)
        checks.append({"run": r, "max_autocorr": round(float(np.max(tau_ac)), 1),
                       "steps_over_autocorr": round(steps / float(np.max(tau_ac)), 1),
                       "acceptance": round(float(np.mean(sampler.acceptance_fraction)), 3),
                       "thin": thin, "draws": len(chain)})
    seconds = time.perf_counter() - start
    means = np.array([summary(to_theta(c))[0] for c in runs])
    sds = np.array([summary(to_theta(c))[1] for c in runs])
    pooled = np.concatenate(runs)
    _, sd_pool = summary(to_theta(pooled))
    # between-run spread of the means in pooled sds, and of the sds relative to their mean
    agreement = {"max_mean_spread_in_sd": round(float(np.max(np.ptp(means, 0) / sd_pool)), 3),
                 "max_sd_rel_spread": round(float(np.max(np.ptp(sds, 0) / sds.mean(0))), 3)}
    return pooled, checks, agreement, seconds


# ----------------------------------------------------------------------------- amortized
def train(seed, steps):
    from skabi import AmortizedMultilevelPosterior, make_multilevel_simulator
    from skabi.adapters import (Concatenate, Constrain, MultilevelAdapter, Rename,
                                make_adapter)
    from skabi.networks import DeepSet

    # exactly examples/multilevel.py's eight_schools, with the seed as random_state
    simulator = make_multilevel_simulator(
        lambda rng: dict(mu=rng.normal(0, 5), tau=abs(rng.normal(0, 5))),
        lambda mu, tau, rng: dict(theta=rng.normal(mu, tau), sigma=rng.uniform(5, 20)),
        lambda theta, sigma, rng: dict(y=rng.normal(theta, sigma)),
        meta_fn=lambda rng: dict(J=int(rng.integers(2, 13))))
    adapter = MultilevelAdapter(
        make_adapter(Constrain("tau", lower=0),
                     Concatenate(["mu", "tau"], into="inference_variables")),
        make_adapter(Concatenate(["y", "sigma"], into="inference_conditions"),
                     Rename("theta", "inference_variables")))
    est = AmortizedMultilevelPosterior(
        adapter=adapter, global_summary_network=DeepSet(summary_dim=16, pooling="mean+sum"),
        epochs=10, batches_per_epoch=max(1, steps // 10), random_state=seed, n_threads=1)
    start = time.perf_counter()
    est.fit(simulator)
    return est, time.perf_counter() - start


def amortized_draws(est, n):
    start = time.perf_counter()
    out = est.sample({"y": Y, "sigma": SIGMA}, num_samples=n, return_type="numpy")
    seconds = time.perf_counter() - start
    mu = np.asarray(out["mu"]).reshape(n)
    tau = np.asarray(out["tau"]).reshape(n)
    theta = np.asarray(out["theta"]).reshape(n, J)
    return {"mu": mu, "log_tau": np.log(tau), "tau": tau, "theta": theta}, seconds


def compare(amort, ref, n, seed):
    from skabi.diagnostics import c2st

    rng = np.random.default_rng(seed)
    idx = rng.choice(len(ref["mu"]), size=n, replace=False)   # balanced classes
    a = np.column_stack([amort["mu"], amort["log_tau"]])
    r = np.column_stack([ref["mu"][idx], ref["log_tau"][idx]])
    acc = float(c2st(a, r).iloc[0])
    m_ref, s_ref = ref["theta"].mean(0), ref["theta"].std(0)
    m_a, s_a = amort["theta"].mean(0), amort["theta"].std(0)
    z = np.abs(m_a - m_ref) / s_ref
    return {"c2st_mu_logtau": round(acc, 3),
            "theta_mean_err_in_sd": [round(float(v), 3) for v in z],
            "theta_max_mean_err_in_sd": round(float(z.max()), 3),
            "theta_sd_ratio": [round(float(v), 3) for v in s_a / s_ref],
            "mu_mean_sd": [round(float(amort["mu"].mean()), 2), round(float(amort["mu"].std()), 2)],
            "log_tau_mean_sd": [round(float(amort["log_tau"].mean()), 3),
                                round(float(amort["log_tau"].std()), 3)],
            "c2st_met": acc <= 0.6, "theta_met": bool(z.max() <= 0.1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--fast", action="store_true", help="a few steps (smoke test)")
    args = parser.parse_args()
    if args.fast:
        args.steps, args.draws = 50, 1000
        mcmc = dict(n_runs=2, n_walkers=32, burn=500, steps=2000)
    else:
        mcmc = dict(n_runs=4, n_walkers=48, burn=3000, steps=12_000)

    pooled, checks, agreement, mcmc_s = reference(**mcmc)
    ref = to_theta(pooled)
    for c in checks:
        print(json.dumps({"mcmc_run": c}), flush=True)
    m, s = summary(ref)
    # chance level of the C2ST at this number of draws: two disjoint halves of the reference
    from skabi.diagnostics import c2st
    perm = np.random.default_rng(0).permutation(len(pooled))[:2 * args.draws]
    both = np.column_stack([ref["mu"], ref["log_tau"]])[perm]
    ref_vs_ref = float(c2st(both[:args.draws], both[args.draws:]).iloc[0])
    print(json.dumps({"mcmc": {**mcmc, "seconds": round(mcmc_s, 1), "draws": len(pooled),
                               **agreement, "c2st_ref_vs_ref": round(ref_vs_ref, 3),
                               "mu_mean_sd": [round(m[0], 2), round(s[0], 2)],
                               "log_tau_mean_sd": [round(m[1], 3), round(s[1], 3)],
                               "theta_mean": [round(v, 2) for v in m[2:]],
                               "theta_sd": [round(v, 2) for v in s[2:]]}}), flush=True)
    for seed in args.seeds:
        est, train_s = train(seed, args.steps)
        amort, sample_s = amortized_draws(est, args.draws)
        out = {"seed": seed, "steps": args.steps, "train_s": round(train_s, 1),
               "sample_s": round(sample_s, 3), "draws": args.draws,
               **compare(amort, ref, args.draws, seed)}
        print(json.dumps(out), flush=True)
