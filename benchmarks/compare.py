"""Task G side by side with BayesFlow and sbi, when they are importable.

Neither is a dependency of skabi and nothing here installs them: a peer that cannot be
imported is reported as skipped. skabi's row comes from :func:`run.run_one`; the peers get
the same simulator, budget (batch 64, 2000 steps = 128,000 simulations), test set (200
datasets x 1000 draws) and metrics.

sbi holds out 10% of the simulations for validation (its default), so it takes about 1800
optimizer steps over the 128,000 simulations; its ``s/step`` is its training time over 2000
steps like skabi's, so validation and data handling count against it.

Usage: ``python benchmarks/compare.py [--seeds 0 1 2] [--threads 1] [--json rows.json]``;
``python benchmarks/run.py --from-json ... rows.json`` puts the rows into the README.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import N_DRAWS, N_TEST, gaussian_metrics, run_one  # noqa: E402
from tasks import G_DIM, G_N, GaussianSimulator  # noqa: E402

STEPS, BATCH = 2000, 64


def _sbi(seed):
    import torch
    from sbi.inference import NPE  # sbi >= 0.23
    from sbi.neural_nets import posterior_nn

    torch.manual_seed(seed)
    sims = GaussianSimulator().sample(STEPS * BATCH, random_state=seed)
    theta = torch.as_tensor(sims["theta"], dtype=torch.float32)
    x = torch.as_tensor(sims["x"].reshape(len(theta), -1), dtype=torch.float32)
    npe = NPE(density_estimator=posterior_nn(model="zuko_nice"))
    t0 = time.perf_counter()
    estimator = npe.append_simulations(theta, x).train(training_batch_size=BATCH, max_num_epochs=1)
    train_s = time.perf_counter() - t0
    posterior = npe.build_posterior(estimator)
    test = GaussianSimulator().sample(N_TEST, random_state=10_000 + seed)
    xt = torch.as_tensor(test["x"].reshape(N_TEST, -1), dtype=torch.float32)
    t0 = time.perf_counter()
    draws = posterior.sample_batched((N_DRAWS,), x=xt).permute(1, 0, 2).numpy()
    sample_s = time.perf_counter() - t0
    row = dict(library="sbi (zuko NICE)", seed=seed, train_s=train_s, sample_s=sample_s,
               s_step=train_s / STEPS)
    row.update(gaussian_metrics(draws.astype(np.float64), test["x"], test["theta"]))
    return row


def _bayesflow(seed):
    import bayesflow as bf
    import keras

    keras.utils.set_random_seed(seed)
    sim = GaussianSimulator()

    def simulator_fn(batch_shape):
        return sim.sample(int(np.prod(batch_shape)))

    adapter = (bf.adapters.Adapter().convert_dtype("float64", "float32")
               .rename("theta", "inference_variables").rename("x", "summary_variables"))
    workflow = bf.BasicWorkflow(
        simulator=bf.simulators.LambdaSimulator(simulator_fn, is_batched=True),
        adapter=adapter, inference_network=bf.networks.CouplingFlow(),
        summary_network=bf.networks.DeepSet())
    t0 = time.perf_counter()
    workflow.fit_online(epochs=20, num_batches_per_epoch=100, batch_size=BATCH, verbose=0)
    train_s = time.perf_counter() - t0
    test = sim.sample(N_TEST, random_state=10_000 + seed)
    t0 = time.perf_counter()
    draws = workflow.sample(conditions={"x": test["x"]}, num_samples=N_DRAWS)["theta"]
    sample_s = time.perf_counter() - t0
    row = dict(library="BayesFlow (defaults)", seed=seed, train_s=train_s, sample_s=sample_s,
               s_step=train_s / STEPS)
    row.update(gaussian_metrics(np.asarray(draws, dtype=np.float64), test["x"], test["theta"]))
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="write the rows to this JSON file")
    p.add_argument("--peers", nargs="*", default=["sbi", "BayesFlow"],
                   help="which peers to run (default both); skabi runs unless --no-skabi")
    p.add_argument("--no-skabi", action="store_true")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    assert G_DIM == 4 and G_N == 50
    rows = []
    for seed in a.seeds:
        if not a.no_skabi:
            rows.append(dict(library="skabi", **run_one("G", seed, a.threads, quick=False)))
        for name, module, fn in (("sbi", "sbi", _sbi), ("BayesFlow", "bayesflow", _bayesflow)):
            if name not in a.peers:
                continue
            if importlib.util.find_spec(module) is None:
                print(f"{name}: not importable, skipped (not a dependency of skabi).")
                continue
            try:
                row = fn(seed)
            except Exception as exc:  # a peer's API drift must not hide skabi's numbers
                print(f"{name}: failed ({type(exc).__name__}: {exc}); skipped.")
                continue
            version = importlib.import_module(module).__version__
            rows.append(dict(row, library=f"{row['library']} {version}", threads=a.threads))
    keys = ("library", "seed", "s_step", "train_s", "sample_s", "rmse_sd", "sd_ratio", "kl",
            "sbc")
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k])
                                for k in keys) + " |")
    if a.json:
        Path(a.json).write_text(json.dumps(dict(compare=rows), indent=1))


if __name__ == "__main__":
    main()
