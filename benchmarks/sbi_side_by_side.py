"""sbi's NPE on the same banks, observations and reference draws as
``reference_posteriors.py`` (issue 28: a side-by-side table).

Runs in an environment with sbi installed beside skabi (sbi is no skabi dependency)::

    python3 -m venv /tmp/sbienv && . /tmp/sbienv/bin/activate
    pip install torch==2.13.0 sbi==0.27.0 && pip install -e .
    python benchmarks/sbi_side_by_side.py two_moons slcp --budgets 10000

For each (problem, budget, seed) the bank, the observed datasets and the reference draws
come from the same random streams as ``reference_posteriors.run_cell`` (the bank from
``default_rng(seed)``, the observations from ``default_rng(10_000 + seed)``, the
references from the bank's stream after the bank; ``reference_posteriors.cell_data`` and
``c2st_scores`` serve both scripts), so the rows compare with its rows cell by cell. sbi
trains ``NPE(prior, density_estimator=...)`` with its defaults (a neural spline flow,
``"nsf"``, unless ``--estimator`` says otherwise; its own 10% validation split and early
stopping with patience 20) and samples 10,000 draws per observation; C2ST is skabi's
(``skabi.diagnostics.c2st``), the same as for skabi's rows. The vector problems only: the
time series (``ar1``) would need an embedding network.

``--heldout DIR`` also scores sbi's posterior by its mean ``-log q(theta | x)`` on the
20,000 held-out simulations of ``offline_defaults.py`` (the same for skabi's rows there),
and writes them where ``worst_cell.py`` compares them with skabi's, test simulation by test
simulation; ``--observations 0`` skips the C2ST.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
import torch
from sbi.inference import NPE
from sbi.utils import BoxUniform
from sbi.utils.sbiutils import within_support

from offline_defaults import N_TEST, heldout, save_heldout
from reference_posteriors import N_REF, add_save_draws, c2st_scores, cell_data, save_draws

#: sbi priors of the vector problems (what its leakage correction needs)
PRIORS = {
    "linear_gaussian": lambda: torch.distributions.MultivariateNormal(
        torch.zeros(10), 0.1 * torch.eye(10)),
    "gaussian_mixture": lambda: BoxUniform(-10 * torch.ones(2), 10 * torch.ones(2)),
    "two_moons": lambda: BoxUniform(-torch.ones(2), torch.ones(2)),
    "slcp": lambda: BoxUniform(-3 * torch.ones(5), 3 * torch.ones(5)),
    "heavy_tailed": lambda: torch.distributions.MultivariateNormal(
        torch.zeros(2), 4.0 * torch.eye(2)),
    "bernoulli_glm": lambda: torch.distributions.MultivariateNormal(
        torch.zeros(5), torch.eye(5)),
    "sir_ode": lambda: torch.distributions.Independent(torch.distributions.LogNormal(
        torch.log(torch.tensor([0.4, 1 / 8])), torch.tensor([0.5, 0.2])), 1),
}


def heldout_nll(posterior, prior, name, seed, n_leak=128, batch=1000):
    """sbi's ``-log q(theta | x)`` on the cell's held-out simulations (``offline_defaults``'
    ``heldout``): the flow's density cut to the prior's support, then divided by the share
    of its mass inside (sbi's leakage correction, ``posterior.log_prob``'s default, here
    estimated from ``n_leak`` draws per dataset, at least half a draw). Returns the corrected
    values and the mean of the uncorrected ones."""
    test = heldout(name, seed)
    theta = torch.as_tensor(test["theta"], dtype=torch.float32).reshape(N_TEST, -1)
    x = torch.as_tensor(test["x"], dtype=torch.float32).reshape(N_TEST, -1)
    estimator = posterior.posterior_estimator
    raw, inside = [], []
    with torch.no_grad():
        for start in range(0, N_TEST, batch):
            part = slice(start, start + batch)
            raw.append(posterior.log_prob_batched(theta[part], x[part], norm_posterior=False)
                       .reshape(-1))
            draws = estimator.sample((n_leak,), condition=x[part])
            inside.append(within_support(prior, draws).float().mean(0).reshape(-1))
    raw, inside = torch.cat(raw).double(), torch.cat(inside).double()
    nll = -(raw - torch.log(inside.clamp(min=0.5 / n_leak)))
    return nll.numpy(), float(-raw.mean())


def run_cell(name, budget, seed, n_obs, estimator="nsf", n_draws=N_REF, draws_dir=None,
             heldout_dir=None):
    bank, observed, rng = cell_data(name, budget, seed, n_obs)
    torch.manual_seed(seed)
    theta = torch.as_tensor(bank["theta"], dtype=torch.float32).reshape(budget, -1)
    x = torch.as_tensor(bank["x"], dtype=torch.float32).reshape(budget, -1)
    start = time.perf_counter()
    prior = PRIORS[name]()
    inference = NPE(prior=prior, density_estimator=estimator, show_progress_bars=False)
    with contextlib.redirect_stdout(io.StringIO()):    # sbi's "converged after" line
        inference.append_simulations(theta, x).train()
    epochs = inference._summary["epochs_trained"][-1]
    posterior = inference.build_posterior()
    seconds = time.perf_counter() - start
    heldout_text = ""
    if heldout_dir:    # on its own random stream: the C2ST draws stay what they were
        with torch.random.fork_rng():
            nll, raw_mean = heldout_nll(posterior, prior, name, seed)
        save_heldout(heldout_dir, name, budget, seed, nll)
        heldout_text = f"{nll.mean():.3f} ({nll.std() / np.sqrt(len(nll)):.3f}), {raw_mean:.3f}"
    draws = [posterior.sample((n_draws,), show_progress_bars=False,
                              x=torch.as_tensor(x_o, dtype=torch.float32).reshape(1, -1)).numpy()
             for x_o in observed["x"]]
    if draws_dir:
        save_draws(draws_dir, name, budget, seed, draws)
    return c2st_scores(name, draws, observed, rng), heldout_text, seconds, epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("problems", nargs="*", default=list(PRIORS))
    parser.add_argument("--budgets", nargs="+", type=int, default=[1000, 10_000, 100_000])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--observations", type=int, default=5)
    parser.add_argument("--estimator", default="nsf", help="sbi density estimator")
    parser.add_argument("--heldout", metavar="DIR",
                        help="also score sbi by its held-out -log q on offline_defaults.py's "
                             "test simulations, and write them to DIR (for worst_cell.py)")
    add_save_draws(parser)
    args = parser.parse_args()
    print("| problem | budget | seed | sbi NPE C2ST per observation | mean | held-out -log q "
          "(se), uncorrected | train s (epochs) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.problems:
        for budget in args.budgets:
            for seed in args.seeds:
                scores, heldout_text, seconds, epochs = run_cell(
                    name, budget, seed, args.observations, args.estimator,
                    draws_dir=args.save_draws, heldout_dir=args.heldout)
                mean = f"{np.mean(scores):.3f}" if scores else ""
                print(f"| {name} | {budget} | {seed} | {' '.join(f'{s:.3f}' for s in scores)} "
                      f"| {mean} | {heldout_text} | {seconds:.0f} ({epochs}) |", flush=True)


if __name__ == "__main__":
    main()
