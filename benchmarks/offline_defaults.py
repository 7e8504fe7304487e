"""Issue 19: which training settings matter on a fixed bank, measured by held-out log density.

A C2ST against the reference posterior (``reference_posteriors.py``) takes minutes per
cell; the mean of ``-log q(theta | x)`` over 20,000 fresh simulations takes a second and
ranks settings the same way, because it is the expected KL divergence from the true
posterior to the learned one plus a constant of the problem (a proper scoring rule). For
the linear Gaussian problem the constant is known, so the script prints the KL itself.

Run ``python benchmarks/offline_defaults.py PROBLEM --budgets 1000 10000 --seeds 0 1
[--before] [--set KEY=VALUE ...] [--flow KEY=VALUE ...]``; prints one markdown row
per cell (``--before``: the settings of the runs before the offline defaults).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import wider_suite
from reference_posteriors import BEFORE, BEFORE_FLOW, PROBLEMS, _parse
from skabi import AmortizedPosterior
from skabi.networks import CouplingFlow

N_TEST = 20_000


def exact_log_prob(name, sims):
    """log p(theta | x) of the exact posterior, where it is known in closed form."""
    if name != "linear_gaussian":
        return None
    theta, x = sims["theta"], sims["x"]
    return (-0.5 * np.sum((theta - x / 2) ** 2, axis=1) / 0.05
            - 5 * np.log(2 * np.pi * 0.05))


def run(name, budget, seed, params, flow, history=False, members=1):
    problem = {**PROBLEMS, **wider_suite.PROBLEMS}[name]
    bank = problem["simulate"](budget, np.random.default_rng(seed))
    test = problem["simulate"](N_TEST, np.random.default_rng(50_000 + seed))
    settings = dict(params)
    t0 = time.perf_counter()
    log_probs = []
    for member in range(members):    # separate fits, mixed with equal weights
        est = AmortizedPosterior(adapter=problem["adapter"](),
                                 inference_network=CouplingFlow(**{"transform": "spline", **flow}),
                                 summary_network=problem.get("summary", lambda: None)(),
                                 random_state=seed + 1000 * member, **settings)
        est.fit(bank)
        log_probs.append(est.log_prob(test))
    seconds = time.perf_counter() - t0
    stacked = np.stack(log_probs)
    top = stacked.max(axis=0)
    nll = -(top + np.log(np.mean(np.exp(stacked - top), axis=0)))
    exact = exact_log_prob(name, test)
    hist = est.history_
    if history:
        print(hist[["loss", "val_loss", "lr"]].round(4).to_string())
    best = int(hist["val_loss"].idxmin()) + 1 if hist["val_loss"].notna().any() else None
    kl = None if exact is None else float(np.mean(nll + exact))
    return float(nll.mean()), float(nll.std() / np.sqrt(len(nll))), kl, best, len(hist), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("problems", nargs="+")
    parser.add_argument("--budgets", nargs="+", type=int, default=[10_000])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--set", nargs="*", metavar="KEY=VALUE", default=[])
    parser.add_argument("--flow", nargs="*", metavar="KEY=VALUE", default=[])
    parser.add_argument("--history", action="store_true")
    parser.add_argument("--before", action="store_true",
                        help="the settings a user had to choose before the offline defaults")
    parser.add_argument("--label", default="")
    parser.add_argument("--bank-steps", type=int,
                        help="a candidate for skabi.training.defaults.BANK_STEPS (the step "
                             "budget of epochs=\"auto\" with a bank)")
    parser.add_argument("--members", type=int, default=1,
                        help="an ensemble of this many separate fits (mixture)")
    args = parser.parse_args()
    params = {**(BEFORE if args.before else {}), **_parse(args.set)}
    if args.bank_steps:
        from skabi.training import defaults

        defaults.BANK_STEPS = args.bank_steps
    flow = {**(BEFORE_FLOW if args.before else {}), **_parse(args.flow)}
    label = args.label or " ".join((["before"] if args.before else []) + args.set + args.flow
                                   + ([f"BANK_STEPS={args.bank_steps}"] if args.bank_steps
                                      else [])) or "defaults"
    if args.members > 1:
        label += f" x{args.members}"
    for name in args.problems:
        for budget in args.budgets:
            for seed in args.seeds:
                nll, se, kl, best, epochs, seconds = run(name, budget, seed, params, flow,
                                                         args.history, args.members)
                kl_text = "" if kl is None else f"{kl:.3f}"
                print(f"| {name} | {budget} | {seed} | {label} | {nll:.3f} ({se:.3f}) | "
                      f"{kl_text} | {best} / {epochs} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
