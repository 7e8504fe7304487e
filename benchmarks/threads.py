"""Torch intra-op thread count vs. CPU contention, on the quickstart model (task L).

Measures, for torch thread counts 1 and 2, each on an idle machine and with one other
CPU-bound process (a pure-Python busy loop in a subprocess) running the whole time:

* seconds per optimizer step of ``AmortizedPosterior(...).fit(simulator)`` for the
  linear-regression tutorial (task L of ``benchmarks/tasks.py``: its simulator and
  adapter, ``DeepSet(summary_dim=10)`` and ``CouplingFlow(transform="spline")``), batch
  64, 3 epochs x 50 batches, from ``est.history_["seconds"]`` without the first epoch;
* seconds of ``est.sample(sims_200, num_samples=1000, return_type="numpy")``.

Each cell is repeated (3 times by default, cells interleaved within a repeat) and
reported as median [min, max]. The thread count is set with the estimator parameter
``n_threads`` where ``AmortizedPosterior().get_params()`` has it, else with
``torch.set_num_threads(n)`` before fit and before sample. The busy process is killed
after each cell and at exit.

The 1-minute load average before each cell is printed: "idle" cells are only idle if it
is near 0 (it lags, so read it with the previous cell in mind).

Run:  python benchmarks/threads.py [--quick] [--repeats 3] [--threads 1 2]
      (--quick: a tiny smoke run of a few seconds)
"""

import argparse
import atexit
import os
import signal
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tasks import regression_adapter, regression_simulator  # noqa: E402

import skabi  # noqa: E402
from skabi import AmortizedPosterior  # noqa: E402
from skabi.networks import CouplingFlow, DeepSet  # noqa: E402

HAS_N_THREADS = "n_threads" in AmortizedPosterior().get_params()
_BUSY = []


def start_busy():
    """One CPU-bound process (pure-Python loop) running until :func:`stop_busy`."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    _BUSY.append(proc)
    time.sleep(0.5)                       # let it get onto a core before timing
    return proc


def stop_busy():
    while _BUSY:
        proc = _BUSY.pop()
        proc.kill()
        proc.wait()


atexit.register(stop_busy)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # so that finally/atexit run


def run_cell(n, busy, cfg, sims, seed):
    """(s/step of fit without the first epoch, s of sampling) for n threads."""
    kw = dict(n_threads=n) if HAS_N_THREADS else {}
    est = AmortizedPosterior(
        adapter=regression_adapter(),
        inference_network=CouplingFlow(transform="spline"),
        summary_network=DeepSet(summary_dim=10),
        epochs=cfg["epochs"], batches_per_epoch=cfg["batches"], batch_size=64,
        random_state=seed, **kw,
    )
    if busy:
        start_busy()
    try:
        if not HAS_N_THREADS:
            torch.set_num_threads(n)
        est.fit(regression_simulator())
        secs = est.history_["seconds"].to_numpy()[1:]
        step = float(secs.sum()) / (len(secs) * cfg["batches"])
        if not HAS_N_THREADS:
            torch.set_num_threads(n)
        start = time.perf_counter()
        est.sample(sims, num_samples=cfg["draws"], return_type="numpy", random_state=seed)
        sample = time.perf_counter() - start
    finally:
        stop_busy()
    return step, sample


def fmt(values, scale=1.0, digits=4):
    v = [x * scale for x in values]
    return f"{statistics.median(v):.{digits}f} [{min(v):.{digits}f}, {max(v):.{digits}f}]"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    a = p.parse_args(argv)
    cfg = (dict(epochs=2, batches=5, n_sims=20, draws=100, repeats=1) if a.quick else
           dict(epochs=3, batches=50, n_sims=200, draws=1000, repeats=3))
    if a.repeats:
        cfg["repeats"] = a.repeats
    print(f"skabi from {os.path.dirname(skabi.__file__)}; torch {torch.__version__}, {os.cpu_count()} CPUs, default torch threads "
          f"{torch.get_num_threads()}, thread count via "
          f"{'n_threads=' if HAS_N_THREADS else 'torch.set_num_threads'}; "
          f"fit {cfg['epochs']} x {cfg['batches']} steps (batch 64), "
          f"sample {cfg['n_sims']} x {cfg['draws']}, {cfg['repeats']} repeats", flush=True)
    sims = regression_simulator().sample(cfg["n_sims"], random_state=123)
    cells = [(n, busy) for n in a.threads for busy in (False, True)]
    res = {c: ([], []) for c in cells}
    t0 = time.perf_counter()
    for r in range(cfg["repeats"]):
        for n, busy in cells:
            load = os.getloadavg()[0]         # others' load shows here (ours adds ~n)
            step, sample = run_cell(n, busy, cfg, sims, seed=r)
            res[n, busy][0].append(step)
            res[n, busy][1].append(sample)
            print(f"  repeat {r} threads={n} {'busy' if busy else 'idle'}: "
                  f"{step * 1e3:.2f} ms/step, sample {sample:.3f} s "
                  f"(1-min load before {load:.1f}, t={time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\n{'threads':>7} {'load':>5} | {'fit ms/step  median [min, max]':>32} | "
          f"{'sample s  median [min, max]':>30} | busy/idle fit, sample")
    for n, busy in cells:
        steps, samples = res[n, busy]
        ratio = ""
        if busy:
            idle_step, idle_sample = (statistics.median(x) for x in res[n, False])
            ratio = (f"{statistics.median(steps) / idle_step:.2f}x, "
                     f"{statistics.median(samples) / idle_sample:.2f}x")
        print(f"{n:>7} {'busy' if busy else 'idle':>5} | {fmt(steps, 1e3, 2):>32} | "
              f"{fmt(samples, 1, 3):>30} | {ratio}")


if __name__ == "__main__":
    main()
