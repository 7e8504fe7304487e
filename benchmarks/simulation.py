"""Throughput of skabi.storage.simulate with joblib and Dask, 1 and 2 workers.

The simulator is one single-draw function composed with ``make_simulator`` that costs
about 5 ms per draw, in two flavours:

* ``busy``: a busy loop of small numpy work for 5 ms (CPU-bound: the honest case, it
  scales with the cores);
* ``sleep``: ``time.sleep(0.005)`` (I/O-bound: shows the scheduling overhead only).

Each configuration draws ``N_SIM`` simulations in batches of ``BATCH`` into memory; the
Dask LocalCluster (processes, one thread per worker) is started before timing and warmed
up with one run. Run: ``python benchmarks/simulation.py`` (about a minute).
"""

from __future__ import annotations

import time

import numpy as np

from skabi import make_simulator
from skabi.storage import simulate

COST_S, N_SIM, BATCH = 0.005, 400, 20


def busy(rng):
    t0 = time.perf_counter()
    a = np.ones(64)
    while time.perf_counter() - t0 < COST_S:
        a = np.sqrt(a * 1.0001 + 1.0)
    return dict(theta=rng.normal(size=2), x=rng.normal(size=10))


def sleepy(rng):
    time.sleep(COST_S)
    return dict(theta=rng.normal(size=2), x=rng.normal(size=10))


def _rate(simulator, **kwargs):
    t0 = time.perf_counter()
    simulate(simulator, N_SIM, batch_size=BATCH, random_state=0, **kwargs)
    return N_SIM / (time.perf_counter() - t0)


def main():
    from distributed import Client, LocalCluster

    simulators = {"busy": make_simulator([busy]), "sleep": make_simulator([sleepy])}
    rows = []
    for kind, sim in simulators.items():
        rows.append((kind, "serial (n_jobs=1)", _rate(sim)))
        _rate(sim, n_jobs=2)  # start the loky workers
        rows.append((kind, "joblib n_jobs=2", _rate(sim, n_jobs=2)))
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            for kind, sim in simulators.items():
                _rate(sim, client=client)  # warm-up
                rows.append((kind, f"dask {workers} worker(s)", _rate(sim, client=client)))
    ideal = 1 / COST_S
    print(f"{N_SIM} simulations, batches of {BATCH}, ~{COST_S * 1e3:.0f} ms per draw "
          f"(one worker at best {ideal:.0f} sim/s)")
    print(f"{'simulator':<10} {'backend':<22} {'sim/s':>8} {'x ideal 1-worker':>17}")
    for kind, backend, rate in sorted(rows, key=lambda r: r[0]):
        print(f"{kind:<10} {backend:<22} {rate:8.0f} {rate / ideal:17.2f}")


if __name__ == "__main__":
    main()
