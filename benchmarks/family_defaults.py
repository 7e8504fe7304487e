"""Issue 30: the ``"auto"`` training values of the point estimator, the model comparison
and the multilevel posterior, measured on fixed banks against the values they had.

Until issue 30 these three estimators trained a bank with the online numbers (50 epochs
of batches of 64 at 2e-3 with a cosine decay, nothing held out). ``"auto"`` gives them the
bank column of :mod:`skabi.training.defaults` that the posterior and the likelihood use
(a tenth held out, early stopping with patience 20, 5e-4 constant, batches of up to 200,
weight averaging 0.99, about 4000 steps at most). Online both are the same numbers, so only
banks are measured. Each cell is one bank of ``budget`` simulations and one seed (the bank
and the network's initialisation), scored on 5,000 fresh simulations by a proper score:

* point estimator (posterior mean): R^2 against the true parameters; where the posterior
  mean is known exactly (``linear_gaussian``, ``gaussian_sets``) also the RMSE of the
  estimate to it, in posterior standard deviations;
* model comparison: the mean log probability of the true model (minus the log loss; the
  exact posterior probabilities' value is printed beside it);
* multilevel posterior: ``score`` (mean joint log q of the true global and local
  parameters).

Higher is better for every score but the RMSE. Run::

    python benchmarks/family_defaults.py point|comparison|multilevel --posterior-column \
        [--budgets 1000 10000] [--seeds 0 1 2] [--fast]

(``--posterior-column``: the second column's ``"auto"`` takes the posterior's bank column,
the candidate measured; without it, the estimators' own defaults, which since this
measurement are the online values, the first column's. ``--candidate KEY=VALUE ...`` sets
values of the second column, e.g. the "select" candidate below.)

It prints one markdown row per cell: the score before, with ``"auto"``, their difference
and both training times. Default networks throughout (``DeepSet()`` where the data are
sets), one CPU thread.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.special import expit, logsumexp

from reference_posteriors import PROBLEMS, _parse
from skabi import (AmortizedModelComparison, AmortizedMultilevelPosterior,
                   AmortizedPointEstimator, make_multilevel_simulator, make_simulator)
from skabi.adapters import AsSet, Rename, make_adapter
from skabi.model_comparison import simulate_models
from skabi.networks import DeepSet

from contract_losses import _multilevel_adapter
from multilevel import Data, Groups, Hyper
from tasks import GaussianSimulator, gaussian_exact_posterior

#: The values these estimators trained a bank with before ``"auto"``.
BEFORE = dict(epochs=50, batch_size=64, learning_rate=2e-3, lr_schedule="cosine",
              validation_sims=None, early_stopping=False, patience=5, weight_averaging=None)
N_TEST = 5000


# ---------------------------------------------------------------------- point estimation
def _sets_adapter():
    return make_adapter(Rename("theta", "inference_variables"), Rename("x", "summary_variables"))


def _gaussian_sets(n, rng):
    return GaussianSimulator().sample(n, random_state=rng)


POINT = {name: dict(simulate=PROBLEMS[name]["simulate"], adapter=PROBLEMS[name]["adapter"])
         for name in ("linear_gaussian", "two_moons", "gaussian_mixture", "slcp")}
POINT["gaussian_sets"] = dict(simulate=_gaussian_sets, adapter=_sets_adapter, summary=DeepSet)


def _exact_mean(name, test):
    """(posterior mean, posterior sd) where known in closed form, else None."""
    if name == "linear_gaussian":
        return test["x"] / 2, np.sqrt(0.05)
    if name == "gaussian_sets":
        return gaussian_exact_posterior(test["x"])
    return None


def point_cell(name, budget, seed, params):
    problem = POINT[name]
    bank = problem["simulate"](budget, np.random.default_rng(seed))
    test = problem["simulate"](N_TEST, np.random.default_rng(10_000 + seed))
    summary = problem.get("summary")
    est = AmortizedPointEstimator(adapter=problem["adapter"](),
                                  summary_network=summary() if summary else None,
                                  random_state=seed, **params)
    t0 = time.perf_counter()
    est.fit(bank)
    seconds = time.perf_counter() - t0
    out = {"score": est.score(test), "seconds": seconds, "epochs": len(est.history_)}
    exact = _exact_mean(name, test)
    if exact is not None:
        mean, sd = exact
        out["rmse"] = float(np.sqrt(np.mean((est.predict(test) - mean) ** 2)) / sd)
    return out


# ---------------------------------------------------------------------- model comparison
N_OBS = 20
_GRID = np.linspace(-6, 6, 1201)   # quadrature over mu ~ N(0, 1)
_LOG_W = -0.5 * _GRID ** 2 - np.log(np.sum(np.exp(-0.5 * _GRID ** 2)))


def _mu(rng):
    return dict(mu=rng.normal())


def _normal_noise(mu, rng):
    return dict(x=mu + rng.normal(size=(N_OBS, 1)))


def _laplace_noise(mu, rng):   # the same variance as the normal noise
    return dict(x=mu + rng.laplace(scale=1 / np.sqrt(2), size=(N_OBS, 1)))


def _log_marginal(x, log_lik):
    """log p(x) of ``N_OBS`` iid observations with mu ~ N(0, 1), by quadrature."""
    return logsumexp(_LOG_W + log_lik(x[:, None] - _GRID[None, :]).sum(axis=0))


def _normal_ll(r):
    return -0.5 * r ** 2 - 0.5 * np.log(2 * np.pi)


def _laplace_ll(r):
    b = 1 / np.sqrt(2)
    return -np.abs(r) / b - np.log(2 * b)


COMPARISON = {
    # M0: mu = 0 against M1: mu ~ N(0, 1), x_i ~ N(mu, 1) (benchmarks/estimators.py)
    "zero_mean": dict(models={"M0": make_simulator(lambda rng: _normal_noise(0.0, rng)),
                              "M1": make_simulator([_mu, _normal_noise])},
                      exact=lambda x: expit(-0.5 * np.log1p(N_OBS)
                                            + x.sum() ** 2 / (2 * (N_OBS + 1)))),
    # normal against Laplace noise of the same variance, mu ~ N(0, 1) in both
    "noise_shape": dict(models={"normal": make_simulator([_mu, _normal_noise]),
                                "laplace": make_simulator([_mu, _laplace_noise])},
                        exact=lambda x: expit(_log_marginal(x, _normal_ll)
                                              - _log_marginal(x, _laplace_ll))),
}


def _comparison_adapter():
    return make_adapter(AsSet("x"), Rename("x", "summary_variables"))


def comparison_cell(name, budget, seed, params):
    problem = COMPARISON[name]
    X, y = simulate_models(problem["models"], budget, random_state=seed)
    X_test, y_test = simulate_models(problem["models"], N_TEST, random_state=10_000 + seed)
    clf = AmortizedModelComparison(adapter=_comparison_adapter(), summary_network=DeepSet(),
                                   random_state=seed, **params)
    t0 = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - t0
    second = clf.classes_[1]   # p(second model | x) of the exact formula
    exact = np.array([problem["exact"](np.ravel(x)) for x in X_test["x"]])
    exact = np.c_[1 - exact, exact] if second in ("M1", "normal") else np.c_[exact, 1 - exact]
    rows = np.arange(len(y_test))
    truth = np.searchsorted(clf.classes_, y_test)
    p = clf.predict_proba(X_test)
    return {"score": float(np.mean(np.log(np.clip(p[rows, truth], 1e-12, None)))),
            "exact": float(np.mean(np.log(exact[rows, truth]))),
            "seconds": seconds, "epochs": len(clf.history_)}


# ---------------------------------------------------------------------- multilevel
def _multilevel_bank(n, seed, J=8, N=10):
    sim = make_multilevel_simulator(Hyper(), Groups(), Data(),
                                    meta_fn=lambda rng: dict(J=J, N=N))
    return sim.sample(n, random_state=seed)


def multilevel_cell(name, budget, seed, params):
    bank = _multilevel_bank(budget, seed)
    test = _multilevel_bank(N_TEST // 5, 10_000 + seed)
    est = AmortizedMultilevelPosterior(adapter=_multilevel_adapter(),
                                       summary_network=DeepSet(), random_state=seed,
                                       **params)
    t0 = time.perf_counter()
    est.fit(bank)
    seconds = time.perf_counter() - t0
    return {"score": est.score(test), "seconds": seconds, "epochs": len(est.history_)}


MULTILEVEL = {"normal_normal": None}

SUITES = {"point": (POINT, point_cell), "comparison": (COMPARISON, comparison_cell),
          "multilevel": (MULTILEVEL, multilevel_cell)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--problems", nargs="*")
    parser.add_argument("--budgets", nargs="*", type=int, default=[1000, 10000])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--fast", action="store_true", help="a smoke run (tiny budgets)")
    parser.add_argument("--candidate", nargs="*", default=[], metavar="KEY=VALUE",
                        help="train the second column with these values instead of the "
                             "defaults (a candidate for them)")
    parser.add_argument("--before", nargs="*", default=[], metavar="KEY=VALUE",
                        help="change these values of the first column")
    parser.add_argument("--posterior-column", action="store_true",
                        help="let the second column's \"auto\" take the posterior's bank "
                             "column (the candidate of issue 30's measurement)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    problems, cell = SUITES[args.suite]
    if args.posterior_column:
        for cls in (AmortizedPointEstimator, AmortizedModelComparison,
                    AmortizedMultilevelPosterior):
            cls._bank_defaults = None
    names = args.problems or list(problems)
    budgets, seeds = args.budgets, args.seeds
    before = {**BEFORE, **_parse(args.before)}
    second = _parse(args.candidate)
    if args.fast:
        budgets, seeds, before["epochs"], second["epochs"] = [200], seeds[:1], 2, 3
    column = "the posterior's bank column" if args.posterior_column else "the defaults"
    print(f"\n{args.suite}: before = {before}; auto = {column}, changed by {second}\n")
    print("| problem | budget | seed | before | auto | auto - before | extra | "
          "before s | auto s (epochs) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        for budget in budgets:
            for seed in seeds:
                old = cell(name, budget, seed, before)
                new = cell(name, budget, seed, second)
                extra = ""
                if "rmse" in old:
                    extra = f"RMSE/sd {old['rmse']:.3f} -> {new['rmse']:.3f}"
                if "exact" in old:
                    extra = f"exact {old['exact']:.4f}"
                print(f"| {name} | {budget} | {seed} | {old['score']:.4f} | "
                      f"{new['score']:.4f} | {new['score'] - old['score']:+.4f} | {extra} | "
                      f"{old['seconds']:.0f} | {new['seconds']:.0f} ({new['epochs']}) |",
                      flush=True)


if __name__ == "__main__":
    main()
