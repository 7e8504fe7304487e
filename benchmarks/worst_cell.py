"""Issue 28, item 3: choose training defaults by the worst cell, not the mean.

``offline_defaults.py --save DIR`` writes, for every cell (problem, bank size, seed), the
held-out ``-log q(theta | x)`` of each of its 20,000 test simulations. The test simulations
of a cell are the same for every candidate, so two candidates differ cell by cell by a
paired mean difference, with a small standard error. This script reads one directory per
candidate and prints:

* a row per cell: each candidate's mean, and its difference to the best candidate of that
  cell (its *regret*, in nats; 0 for the best) with the paired standard error;
* a row per candidate: its worst regret over all cells (and the cell), the number of cells
  where it is worse than the best by more than ``--tolerance`` plus two standard errors,
  and its mean regret.

The candidate to choose is the one with the smallest worst regret. ``--select NAME=A,B``
adds a candidate that is, per cell, whichever of A and B reached the lower validation loss
(from the ``.history.csv`` beside each cell): a per-fit choice between two settings.
``--select-heldout NAME=A,B`` chooses instead by the held-out log density of the cell's
first ``budget // 10`` held-out simulations, and scores every candidate on the rest: for
settings whose validation losses are on different scales (``--constrain map|reject``).

Run ``python benchmarks/worst_cell.py defaults=/tmp/c0 candidate=/tmp/c1 [...]
[--tolerance 0.005] [--select pick=defaults,candidate]``; a cell is compared only where
every candidate has it.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np
import pandas as pd


def load(directories):
    """``{cell: {candidate: values}}`` for the cells every candidate has."""
    found = {}
    for name, directory in directories.items():
        for path in sorted(pathlib.Path(directory).glob("*.npy")):
            found.setdefault(path.stem, {})[name] = np.load(path)
    return {cell: runs for cell, runs in found.items() if len(runs) == len(directories)}


def best_validation_loss(directory, cell):
    """The lowest validation loss of a cell's training history (warm-up epochs included)."""
    history = pathlib.Path(directory) / f"{cell}.history.csv"
    if not history.exists():
        raise SystemExit(f"--select needs {history} (offline_defaults.py --save writes it)")
    return float(pd.read_csv(history)["val_loss"].min())


def add_selection(cells, directories, spec):
    """A candidate ``NAME=A,B`` that, per cell, is whichever of candidates A and B reached
    the lower validation loss: what a fit that trained both and kept the better on its
    validation simulations would have given. Returns the name and how often it took A."""
    name, pair = spec.split("=", 1)
    first, second = pair.split(",")
    took_first = 0
    for cell, runs in cells.items():
        a = best_validation_loss(directories[first], cell)
        b = best_validation_loss(directories[second], cell)
        runs[name] = runs[first] if a <= b else runs[second]
        took_first += a <= b
    return name, took_first


def add_heldout_selection(cells, spec):
    """A candidate ``NAME=A,B`` that, per cell, is whichever of A and B has the higher
    held-out log density on the cell's first ``budget // 10`` held-out simulations (as
    many as the fit's own validation split holds). Unlike :func:`add_selection` it also
    compares candidates whose losses are on different scales (``--constrain map`` and
    ``reject``: the network sees the logit in one and ``theta`` in the other). Every
    candidate is then scored on the remaining simulations only, so the choice is not
    scored on the data that made it. Given twice, the second choice is made on the next
    ``budget // 10`` simulations and every candidate is scored on what is left after
    both. Returns the name and how often it took A."""
    name, pair = spec.split("=", 1)
    first, second = pair.split(",")
    took_first = 0
    for cell, runs in cells.items():
        k = int(cell.rsplit("-", 2)[1]) // 10
        a, b = runs[first], runs[second]
        pick = a if a[:k].mean() <= b[:k].mean() else b
        took_first += pick is a
        for key in list(runs):
            runs[key] = runs[key][k:]
        runs[name] = pick[k:]
    return name, took_first


def _order(cell):
    problem, budget, seed = cell.rsplit("-", 2)
    return int(budget), problem, int(seed)


def regrets(runs):
    """Each candidate's paired mean difference to the best of ``runs`` and its se."""
    means = {name: float(np.mean(values)) for name, values in runs.items()}
    best = min(means, key=means.get)
    out = {}
    for name, values in runs.items():
        diff = values - runs[best]
        out[name] = (float(np.mean(diff)), float(np.std(diff) / np.sqrt(len(diff))))
    return means, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("candidates", nargs="+", metavar="NAME=DIR")
    parser.add_argument("--tolerance", type=float, default=0.005,
                        help="a regret above this (plus two se) counts as worse")
    parser.add_argument("--select", action="append", default=[], metavar="NAME=A,B",
                        help="add a candidate that takes, per cell, whichever of A and B "
                             "has the lower validation loss")
    parser.add_argument("--select-heldout", action="append", default=[], metavar="NAME=A,B",
                        help="add a candidate that takes, per cell, whichever of A and B "
                             "scores better on the first budget/10 held-out simulations "
                             "(then every candidate is scored on the rest)")
    args = parser.parse_args()
    directories = dict(pair.split("=", 1) for pair in args.candidates)
    cells = load(directories)
    if not cells:
        raise SystemExit("no cell is in every candidate's directory")
    names = list(directories)
    for spec in args.select:
        name, took = add_selection(cells, directories, spec)
        names.append(name)
        print(f"{name}: took {spec.split('=', 1)[1].split(',')[0]} in {took} of {len(cells)} "
              "cells\n")
    for spec in args.select_heldout:
        name, took = add_heldout_selection(cells, spec)
        names.append(name)
        print(f"{name}: took {spec.split('=', 1)[1].split(',')[0]} in {took} of {len(cells)} "
              "cells (chosen on the first budget/10 held-out simulations, scored on the "
              "rest)\n")
    print("| cell | " + " | ".join(f"{n}: -log q | regret (se)" for n in names) + " |")
    print("|---|" + "---|---|" * len(names))
    worst = {name: (-np.inf, None) for name in names}
    worse = dict.fromkeys(names, 0)
    total = dict.fromkeys(names, 0.0)
    for cell in sorted(cells, key=_order):
        means, reg = regrets(cells[cell])
        row = []
        for name in names:
            value, se = reg[name]
            row.append(f"{means[name]:.3f} | {value:+.3f} ({se:.3f})")
            total[name] += value
            if value > worst[name][0]:
                worst[name] = (value, cell)
            worse[name] += value > args.tolerance + 2 * se
        print(f"| {cell} | " + " | ".join(row) + " |")
    print(f"\n{len(cells)} cells. Per candidate: worst regret (cell), cells worse than the "
          f"best by more than {args.tolerance} + 2 se, mean regret.\n")
    print("| candidate | worst regret | cell | cells worse | mean regret |")
    print("|---|---|---|---|---|")
    for name in sorted(names, key=lambda n: worst[n][0]):
        print(f"| {name} | {worst[name][0]:+.3f} | {worst[name][1]} | {worse[name]} | "
              f"{total[name] / len(cells):+.4f} |")


if __name__ == "__main__":
    main()
