"""Issue 19: which training settings matter on a fixed bank, measured by held-out log density.

A C2ST against the reference posterior (``reference_posteriors.py``) takes minutes per
cell; the mean of ``-log q(theta | x)`` over 20,000 fresh simulations takes a second and
ranks settings the same way, because it is the expected KL divergence from the true
posterior to the learned one plus a constant of the problem (a proper scoring rule). For
the linear Gaussian problem and for two moons the constant is known (in closed form, or by a
quadrature: ``reference_posteriors.two_moons_log_posterior``), so the script prints the KL
itself.

Run ``python benchmarks/offline_defaults.py PROBLEM --budgets 1000 10000 --seeds 0 1
[--before] [--set KEY=VALUE ...] [--flow KEY=VALUE ...] [--save DIR]``; prints one
markdown row per cell (``--before``: the settings of the runs before the offline defaults;
``--save``: each cell's held-out values, which ``worst_cell.py`` compares in pairs;
``--likelihood``: an ``AmortizedLikelihood`` of the data given the parameters instead,
scored by the held-out ``-log q(x | theta)``; ``--test-sims N``: N held-out simulations
per cell instead of 20,000, for ``--constrain reject``, whose scoring draws 1000 times per
simulation).
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np

from reference_posteriors import (BEFORE, BEFORE_FLOW, CONSTRAIN, PROBLEMS, _parse,
                                  _vector_adapter, add_bank_steps, add_constrain, kept_methods,
                                  two_moons_log_posterior)
from skabi import AmortizedLikelihood, AmortizedPosterior
from skabi.adapters import Rename, Standardize, make_adapter
from skabi.networks import CouplingFlow

N_TEST = 20_000


def exact_log_prob(name, sims):
    """log p(theta | x) of the exact posterior, where it is known in closed form (the
    linear Gaussian) or by a quadrature (two moons)."""
    if name == "two_moons":
        return two_moons_log_posterior(sims["theta"], sims["x"])
    if name != "linear_gaussian":
        return None
    theta, x = sims["theta"], sims["x"]
    return (-0.5 * np.sum((theta - x / 2) ** 2, axis=1) / 0.05
            - 5 * np.log(2 * np.pi * 0.05))


def _likelihood_adapter():
    """The problem's data given its parameters: ``x`` standardized, ``theta`` the
    condition (as the problem's posterior adapter reads it, constraints left out)."""
    return make_adapter(Standardize(["x"]), Rename("x", "inference_variables"),
                        Rename("theta", "inference_conditions"))


def heldout(name, seed):
    """A cell's ``N_TEST`` held-out simulations: the same for every method scored on it
    (``sbi_side_by_side.py --heldout`` scores sbi's NPE on them too)."""
    return PROBLEMS[name]["simulate"](N_TEST, np.random.default_rng(50_000 + seed))


def save_heldout(directory, name, budget, seed, nll, history=None):
    """Write a cell's held-out ``-log q`` (and its training history) where ``worst_cell.py``
    reads them."""
    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    np.save(path / f"{name}-{budget}-{seed}.npy", np.asarray(nll, dtype=np.float64))
    if history is not None:
        history.to_csv(path / f"{name}-{budget}-{seed}.history.csv")


def run(name, budget, seed, params, flow, history=False, members=1, save=None,
        likelihood=False, unconstrained=False):
    problem = PROBLEMS[name]
    adapter = _vector_adapter if unconstrained else problem["adapter"]
    if likelihood and "summary" in problem:
        raise SystemExit(f"--likelihood: {name} needs a summary network (vector data only)")
    if unconstrained and ("summary" in problem or "names" in problem):
        raise SystemExit(f"--unconstrained: {name} is not a vector problem with one 'theta'")
    bank = problem["simulate"](budget, np.random.default_rng(seed))
    test = heldout(name, seed)
    settings = dict(params)
    t0 = time.perf_counter()
    log_probs = []
    for member in range(members):    # separate fits, mixed with equal weights
        network = CouplingFlow(**{"transform": "spline", **flow})
        if likelihood:
            est = AmortizedLikelihood(adapter=_likelihood_adapter(),
                                      inference_network=network,
                                      random_state=seed + 1000 * member, **settings)
        else:
            est = AmortizedPosterior(adapter=adapter(), inference_network=network,
                                     summary_network=problem.get("summary", lambda: None)(),
                                     random_state=seed + 1000 * member, **settings)
        est.fit(bank)
        if CONSTRAIN["method"] in ("auto", "select"):
            print(f"  (kept: {kept_methods(est.adapter_)})", flush=True)
        t1 = time.perf_counter()
        log_probs.append(est.log_prob(test))
        print(f"  (held-out log_prob of {len(test['x'])} simulations: "
              f"{time.perf_counter() - t1:.0f} s)", flush=True)
    seconds = time.perf_counter() - t0
    stacked = np.stack(log_probs)
    top = stacked.max(axis=0)
    nll = -(top + np.log(np.mean(np.exp(stacked - top), axis=0)))
    exact = None if likelihood else exact_log_prob(name, test)
    hist = est.history_
    if save:    # every held-out -log q, for paired differences (worst_cell.py)
        save_heldout(save, name, budget, seed, nll, hist)
    if history:
        print(hist[["loss", "val_loss", "lr"]].round(4).to_string())
    best = int(hist["val_loss"].idxmin()) + 1 if hist["val_loss"].notna().any() else None
    kl = None if exact is None else float(np.mean(nll + exact))
    return float(nll.mean()), float(nll.std() / np.sqrt(len(nll))), kl, best, len(hist), seconds


def main():
    global N_TEST
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
    parser.add_argument("--likelihood", action="store_true",
                        help="an AmortizedLikelihood of x given theta, scored by the "
                             "held-out -log q(x | theta), instead of the posterior")
    parser.add_argument("--unconstrained", action="store_true",
                        help="leave out the problem's Constrain step: the flow models the "
                             "parameters as they are (its mass outside the prior's bounds "
                             "is lost, as in sbi's flow before its leakage correction)")
    add_bank_steps(parser)
    add_constrain(parser)
    parser.add_argument("--members", type=int, default=1,
                        help="an ensemble of this many separate fits (mixture)")
    parser.add_argument("--test-sims", type=int, default=N_TEST,
                        help="held-out simulations per cell (fewer: cheaper scoring with "
                             "--constrain reject, at twice the standard error for a quarter)")
    parser.add_argument("--save", metavar="DIR",
                        help="write each cell's held-out -log q and history to DIR "
                             "(compared by worst_cell.py)")
    args = parser.parse_args()
    N_TEST = args.test_sims
    params = {**(BEFORE if args.before else {}), **_parse(args.set)}
    flow = {**(BEFORE_FLOW if args.before else {}), **_parse(args.flow)}
    label = args.label or " ".join((["before"] if args.before else []) + args.set + args.flow
                                   + ([f"BANK_STEPS={args.bank_steps}"] if args.bank_steps
                                      else [])) or "defaults"
    if args.likelihood:
        label = "likelihood " + label
    if args.unconstrained:
        label += " unconstrained"
    if CONSTRAIN["method"] != "map":
        label += f" constrain={CONSTRAIN['method']}"
    if args.members > 1:
        label += f" x{args.members}"
    for name in args.problems:
        for budget in args.budgets:
            for seed in args.seeds:
                nll, se, kl, best, epochs, seconds = run(name, budget, seed, params, flow,
                                                         args.history, args.members, args.save,
                                                         args.likelihood, args.unconstrained)
                kl_text = "" if kl is None else f"{kl:.3f}"
                print(f"| {name} | {budget} | {seed} | {label} | {nll:.3f} ({se:.3f}) | "
                      f"{kl_text} | {best} / {epochs} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
