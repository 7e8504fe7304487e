"""Losses of each estimator on a fixed seed, printed exactly (a refactoring check).

Trains each of the six estimators for a few tiny steps, online (a simulator) and offline
(a bank in memory, where the ``"auto"`` training values differ), with one CPU thread, and
prints the ``history_`` losses as JSON with ``repr`` of every float. Run it before and
after a change that must not change behaviour and compare the two outputs::

    python benchmarks/contract_losses.py > before.json   # on the old commit
    python benchmarks/contract_losses.py > after.json    # on the new one
    diff before.json after.json                           # empty: same losses bit for bit

With ``--save DIR`` it also writes each fitted estimator to ``DIR`` (tiny files, used as
load-compatibility fixtures in ``tests/data``) and ``DIR/draws.json``: the draws each
loaded file gives on a fixed seed.
"""

import argparse
import json
import os
import sys
import warnings

import numpy as np
import torch

from skabi import (AmortizedJoint, AmortizedLikelihood, AmortizedModelComparison,
                   AmortizedMultilevelPosterior, AmortizedPointEstimator, AmortizedPosterior,
                   make_multilevel_simulator, make_simulator)
from skabi.adapters import (AsObservations, AsSet, Concatenate, Constrain, MultilevelAdapter,
                            Rename, make_adapter)
from skabi.networks import CouplingFlow, DeepSet, DenseHead

SMALL = dict(epochs=2, batches_per_epoch=3, batch_size=8, pilot_size=16, random_state=0)


def _prior(rng):
    return dict(theta=rng.normal(size=2))


def _likelihood(theta, rng):
    return dict(x=theta + rng.normal(size=(6, 2)))


def simulator():
    return make_simulator([_prior, _likelihood])


def _flow():
    return CouplingFlow(depth=1, subnet_width=8)


def _posterior_adapter():
    return make_adapter(Rename("theta", "inference_variables"), Rename("x", "summary_variables"))


def _likelihood_adapter():
    return make_adapter(AsObservations("x"), Rename("x", "inference_variables"),
                        Rename("theta", "inference_conditions"))


def multilevel_simulator():
    return make_multilevel_simulator(
        lambda rng: dict(mu=rng.normal(0, 5), tau=abs(rng.normal(0, 5))),
        lambda mu, tau, rng: dict(theta=rng.normal(mu, tau)),
        lambda theta, N, rng: dict(y=rng.normal(theta, 1, size=N)),
        meta_fn=lambda rng: dict(J=int(rng.integers(2, 5)), N=int(rng.integers(1, 5))))


def _multilevel_adapter():
    return MultilevelAdapter(
        make_adapter(Constrain("tau", lower=0),
                     Concatenate(["mu", "tau"], into="inference_variables")),
        make_adapter(AsSet("y"), Rename("y", "summary_variables"),
                     Rename("theta", "inference_variables")))


def estimators():
    """``{name: (estimator, training data)}``: online (a simulator) and offline (a bank)."""
    sim = simulator()
    bank = sim.sample(64, random_state=7)
    X, y = bank["x"].reshape(64, -1), bank["theta"]
    labels = (y[:, 0] > 0).astype(int)
    out = {}
    for where, data in (("online", sim), ("bank", bank)):
        out[f"posterior-{where}"] = (AmortizedPosterior(
            adapter=_posterior_adapter(), inference_network=_flow(),
            summary_network=DeepSet(summary_dim=2, width=8), **SMALL), data)
        out[f"likelihood-{where}"] = (AmortizedLikelihood(
            adapter=_likelihood_adapter(), inference_network=_flow(), **SMALL), data)
        out[f"point-{where}"] = (AmortizedPointEstimator(
            adapter=_posterior_adapter(), head=DenseHead(width=8),
            summary_network=DeepSet(summary_dim=2, width=8), **SMALL), data)
        out[f"joint-{where}"] = (AmortizedJoint(
            AmortizedPosterior(adapter=_posterior_adapter(), inference_network=_flow(),
                               summary_network=DeepSet(summary_dim=2, width=8)),
            AmortizedLikelihood(adapter=_likelihood_adapter(), inference_network=_flow()),
            **SMALL), data)
    out["classifier-arrays"] = (AmortizedModelComparison(head=DenseHead(width=8), **SMALL),
                                (X, labels))
    out["point-arrays"] = (AmortizedPointEstimator(head=DenseHead(width=8), **SMALL), (X, y))
    ml = multilevel_simulator()
    out["multilevel-online"] = (AmortizedMultilevelPosterior(
        adapter=_multilevel_adapter(), inference_network=_flow(),
        local_inference_network=_flow(), summary_network=DeepSet(summary_dim=2, width=8),
        global_summary_network=DeepSet(summary_dim=2, width=8), **SMALL), ml)
    return out


def _losses(est):
    frames = ([est.posterior_.history_, est.likelihood_.history_]
              if isinstance(est, AmortizedJoint) else [est.history_])
    return [[repr(float(v)) for v in frame[col].to_numpy()]
            for frame in frames for col in ("loss", "val_loss")]


def _draws(name, est, sim, ml):
    """A few numbers each estimator computes on a fixed seed (after loading)."""
    if name.startswith("multilevel"):
        out = est.sample(ml.sample(2, random_state=3), 5, random_state=4, return_type="numpy")
        return {k: np.asarray(v).ravel().tolist() for k, v in sorted(out.items())}
    data = sim.sample(2, random_state=3)
    if name.startswith("classifier"):
        return np.asarray(est.predict_proba(data["x"].reshape(2, -1))).ravel().tolist()
    if name.startswith("point-arrays"):
        return np.asarray(est.predict(data["x"].reshape(2, -1))).ravel().tolist()
    if name.startswith("point"):
        return np.asarray(est.predict(data)).ravel().tolist()
    if name.startswith("likelihood"):
        return np.asarray(est.log_prob(data)).ravel().tolist()
    out = est.sample(data, 5, random_state=4, return_type="numpy")
    return {k: np.asarray(v).ravel().tolist() for k, v in sorted(out.items())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", help="also save each fitted estimator to this folder")
    parser.add_argument("--only", help="comma-separated names to run")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    result, draws = {}, {}
    sim, ml = simulator(), multilevel_simulator()
    for name, (est, data) in estimators().items():
        if args.only and name not in args.only.split(","):
            continue
        est.fit(*data) if isinstance(data, tuple) else est.fit(data)
        result[name] = _losses(est)
        if args.save:
            path = os.path.join(args.save, name + ("" if isinstance(est, AmortizedJoint)
                                                  else ".skabi"))
            est.save(path)
            loaded = type(est).load(path)
            draws[name] = _draws(name, loaded, sim, ml)
    if args.save:
        with open(os.path.join(args.save, "draws.json"), "w") as fh:
            json.dump(draws, fh, indent=1, sort_keys=True)
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
