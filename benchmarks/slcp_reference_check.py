"""How good is the SLCP reference? Two independent samplers of the same posterior, compared
by the C2ST that scores the networks (issue 28).

For each observed dataset of ``reference_posteriors.py``'s SLCP cells (the observations of
``default_rng(10_000 + seed)``) this prints the C2ST of

* ``slcp_reference`` (the tempered sequential Monte Carlo sampler) against itself with
  another seed: how far from 0.5 an exact sampler would score against the reference;
* ``slcp_reference`` against a second, differently built sampler: importance resampling of
  ``--prior-draws`` prior draws by their likelihood, the draws given random signs of
  theta_3 and theta_4, then ``--moves`` of the same Metropolis-Hastings moves (which only
  correct within modes; the resampling gives the modes their weight). A mode or weight the
  sequential sampler got wrong would show here.

Both near 0.5 (within the C2ST's own noise, about 0.01 at 10,000 draws a side) is the
evidence that the reference, not the network, is what a score of the network measures.

Run ``python benchmarks/slcp_reference_check.py [--seeds 0 1 2] [--observations 5]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from reference_posteriors import (N_REF, _flip_signs, _slcp_log_lik, _slcp_settle, cell_data,
                                  slcp_reference)
from skabi.diagnostics import c2st


def resampled_reference(x, n, rng, *, prior_draws=2_000_000, moves=2000, chunk=200_000):
    """Importance resampling from the prior, random signs, then ``moves`` MH moves."""
    log_w, cand = [], []
    for _ in range(prior_draws // chunk):
        theta = rng.uniform(-3, 3, size=(chunk, 5))
        log_w.append(_slcp_log_lik(theta, x))
        cand.append(theta)
    log_w, cand = np.concatenate(log_w), np.concatenate(cand)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    ess = 1 / np.sum(w ** 2)
    theta = _flip_signs(cand[rng.choice(len(w), size=n, p=w)], rng)
    theta, _, _ = _slcp_settle(theta, _slcp_log_lik(theta, x), x, moves, rng)
    return theta, ess


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--observations", type=int, default=5)
    parser.add_argument("--prior-draws", type=int, default=2_000_000)
    parser.add_argument("--moves", type=int, default=2000)
    args = parser.parse_args()
    print("| seed | observation | theta | SMC vs SMC | SMC vs resampled | resampling ESS | s |")
    print("|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        _, observed, _ = cell_data("slcp", 1000, seed, args.observations)
        for i, (x, theta) in enumerate(zip(observed["x"], observed["theta"])):
            t0 = time.perf_counter()
            first = slcp_reference(x, N_REF, np.random.default_rng([seed, i, 1]))
            second = slcp_reference(x, N_REF, np.random.default_rng([seed, i, 2]))
            other, ess = resampled_reference(x, N_REF, np.random.default_rng([seed, i, 3]),
                                             prior_draws=args.prior_draws, moves=args.moves)
            same = float(c2st(first, second).iloc[0])
            across = float(c2st(first, other).iloc[0])
            print(f"| {seed} | {i} | {np.round(theta, 2).tolist()} | {same:.3f} | "
                  f"{across:.3f} | {ess:.0f} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
