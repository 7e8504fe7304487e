"""Multilevel benchmark (issue 18): the normal-normal hierarchical model.

mu ~ N(0, 5), tau ~ HalfNormal(5), theta_j ~ N(mu, tau), y_ij ~ N(theta_j, 1), J in 2..20,
N in 1..20 (drawn once per batch). Trains AmortizedMultilevelPosterior per seed and
reports training time, s/step and SBC per level (calibration_error, family-wise 95% bands
over the parameters of a level) on held-out simulations of every J.

    python benchmarks/multilevel.py --seeds 0 1 2 [--steps 6000] [--fast]
"""

import argparse
import json
import time

import numpy as np

from skabi import AmortizedMultilevelPosterior, Simulator, make_multilevel_simulator
from skabi.adapters import (AsSet, Concatenate, Constrain, MultilevelAdapter, Rename,
                            make_adapter)
from skabi.diagnostics import calibration_error
from skabi.networks import CouplingFlow, DeepSet


class Hyper(Simulator):
    def simulate(self, batch_size, rng):
        return {"mu": rng.normal(0, 5, size=(batch_size, 1)),
                "tau": np.abs(rng.normal(0, 5, size=(batch_size, 1)))}


class Groups(Simulator):
    def simulate(self, batch_size, rng, mu, tau):
        return {"theta": rng.normal(mu, tau)}


class Data(Simulator):
    def simulate(self, batch_size, rng, theta, N):
        return {"y": rng.normal(theta, 1.0, size=(batch_size, N))}


def simulator():
    return make_multilevel_simulator(
        Hyper(), Groups(), Data(),
        meta_fn=lambda rng: dict(J=int(rng.integers(2, 21)), N=int(rng.integers(1, 21))))


def estimator(seed, steps, batch_size=64):
    adapter = MultilevelAdapter(
        make_adapter(Constrain("tau", lower=0),
                     Concatenate(["mu", "tau"], into="inference_variables")),
        make_adapter(AsSet("y"), Rename("y", "summary_variables"),
                     Rename("theta", "inference_variables")))
    epochs = 10
    return AmortizedMultilevelPosterior(
        adapter=adapter, inference_network=CouplingFlow(depth=4),
        local_inference_network=CouplingFlow(depth=4),
        summary_network=DeepSet(summary_dim=8, width=64, pooling="mean+sum"),
        global_summary_network=DeepSet(summary_dim=16, width=64, pooling="mean+sum"),
        epochs=epochs, batches_per_epoch=max(1, steps // epochs), batch_size=batch_size,
        random_state=seed, n_threads=1)


def run(seed, steps, n_val, num_samples):
    sim = simulator()
    est = estimator(seed, steps)
    start = time.perf_counter()
    est.fit(sim)
    seconds = time.perf_counter() - start
    n_steps = est.epochs * est.batches_per_epoch
    out = {"seed": seed, "steps": n_steps, "train_s": round(seconds, 1),
           "s_per_step": round(seconds / n_steps, 4)}
    rng = np.random.default_rng(1000 + seed)
    per_level = {"global": [], "local": []}
    for J in range(2, 21, 2):   # held-out datasets of every size, N drawn per batch
        val = make_multilevel_simulator(
            Hyper(), Groups(), Data(),
            meta_fn=lambda rng, J=J: dict(J=J, N=int(rng.integers(1, 21))))
        sims = val.sample(n_val // 10, random_state=rng)
        levels = est.levels(est.sample(sims, num_samples))
        for k in per_level:
            per_level[k].append(levels[k])
    from skabi import concat_datasets

    for level, parts in per_level.items():
        cal = calibration_error(concat_datasets(parts), family_wise=True)
        out[level] = {name: {"error": round(float(r["error"]), 3),
                             "band": round(float(r["band"]), 3), "inside": bool(r["inside"])}
                      for name, r in cal.iterrows()}
    t = time.perf_counter()
    est.sample({"y": np.zeros((8, 5))}, 1000, return_type="numpy")
    out["sample_1000_s"] = round(time.perf_counter() - t, 3)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--n-val", type=int, default=300)
    parser.add_argument("--num-samples", type=int, default=200)
    parser.add_argument("--fast", action="store_true")
    args = parser.parse_args()
    if args.fast:
        args.steps, args.n_val, args.num_samples = 100, 50, 50
    for seed in args.seeds:
        print(json.dumps(run(seed, args.steps, args.n_val, args.num_samples)), flush=True)
