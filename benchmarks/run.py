"""Run the issue-7 benchmarks (tasks G and L), print the tables, regenerate README.md.

Every (task, torch threads, seed) runs in its own Python process, so that peak RSS
(``resource.getrusage(...).ru_maxrss``) is that run's own. Per run:

* ``s/step``: median seconds per optimizer step after the first 50 steps, measured
  between consecutive calls of the simulator by the training loop (one call per step:
  simulation + adapter + forward + backward + Adam);
* ``train s``: wall time of ``est.fit(simulator)`` (pilot, adapter fit, model build, import
  of torch's optimizer machinery included);
* ``sample s``: ``est.sample(200 datasets, num_samples=1000, return_type="numpy")``, best of
  3 (``arviz s``: the same returning the ArviZ container with ``log_q`` per draw, once,
  arviz already imported);
* ``py peak MiB``: tracemalloc peak (numpy and Python allocations) during that sampling;
  ``RSS MiB``: the process's peak resident memory;
* ``load``: the 1-minute load average when the run ended (other processes share the 2
  cores; timings taken under a load above the thread count are inflated);
* accuracy on 200 fresh datasets x 1000 draws (see ``gaussian_metrics`` and
  ``regression_metrics``). For G, RMSE of the posterior mean over datasets and dimensions
  divided by the exact posterior sd; mean ratio of the draws' sd to the exact sd; mean
  KL(exact || Gaussian fitted to the draws, full covariance); the largest SBC rank-ECDF
  deviation over the 4 dimensions (``skabi.diagnostics.calibration_error``), its 95% band
  (per dimension) and whether every dimension stays inside its simultaneous band. The
  ``exact:`` columns apply the same metrics to 1000 draws of the exact posterior on the
  same datasets: the noise floor of 200 x 1000 draws (the largest of 4 deviations exceeds
  a one-dimension 95% band about 1 time in 5 even for exact draws).
* ``inside (family-wise)``: the same SBC test with the bands widened for the number of
  parameters (``calibration_error(..., family_wise=True)``: Bonferroni, each at level
  0.05 / 4 for G, 0.05 / 3 for L), so that exact draws fail a run 5-10% of the time
  rather than 14-19% (a run passes when every ECDF stays inside its band and every
  deviation inside its deviation band: two 5% tests, mostly flagging the same runs).
* For L the 200 test datasets are 20 for each N in 5..14 (the prior on N, stratified; the
  simulator draws N once per batch, so one batch of 200 would test a single N), and the
  exact posterior is sampled too (``tasks.regression_exact_posterior``: beta | sigma is
  Gaussian in closed form, sigma | data a one-dimensional density sampled on a fine grid).
  ``sd / exact sd`` is the median over datasets of the ratio of the draws' sd to the exact
  posterior sd, ``mean err / exact sd`` the median |posterior mean error| in exact sds
  (beta0 / beta1 / sigma); ``sample s`` is still timed on one batch of 200 datasets.

Usage::

    python benchmarks/run.py                 # everything: about 25 minutes on 2 cores
    python benchmarks/run.py --quick         # smoke run: short training, 1 seed, 1 thread
    python benchmarks/run.py --tasks G --seeds 0 1 2 --threads 1 2
    python benchmarks/run.py --memory        # 1000 datasets x 10,000 draws within 4 GiB
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

N_TEST, N_DRAWS, SKIP = 200, 1000, 50
QUICK_STEPS = {"G": 300, "G-defaults": 300, "L-affine": 256, "L-spline": 256}


# ---------------------------------------------------------------------------- one run
class TimedSimulator:
    """Wraps a simulator; records the time of each ``sample`` call (one per step)."""

    def __init__(self, simulator):
        self.simulator = simulator
        self.times = []

    def sample(self, batch_size, *, random_state=None):
        self.times.append(time.perf_counter())
        return self.simulator.sample(batch_size, random_state=random_state)


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _inside(cal):
    """Per element of a ``calibration_error`` frame: ECDF inside its simultaneous band and
    the deviation inside its band."""
    return cal["inside"] & (cal["error"] <= cal["band"])


def _sbc(draws, targets, n_params):
    """Per-element SBC (95% bands) and the family-wise verdict over ``n_params`` elements.

    A 95% band per element flags at least one of 4 exactly calibrated elements about 1 time
    in 5; the family-wise test (Bonferroni: each element at level 0.05 / n_params) keeps
    the chance of a false alarm per run at 5% for each of the two bands (see ``_inside``).
    """
    from skabi.diagnostics import calibration_error

    cal = calibration_error(draws, targets)
    fw = calibration_error(draws, targets, family_wise=True)
    assert len(fw) == n_params, (len(fw), n_params)
    return cal, bool(_inside(fw).all())


def gaussian_metrics(draws, x, theta):
    """RMSE(posterior mean)/sd, mean sd ratio, mean KL(exact || Gaussian fit), SBC."""
    from tasks import gaussian_exact_posterior

    mu, sd = gaussian_exact_posterior(x)
    m = draws.mean(axis=1)
    rmse = float(np.sqrt(np.mean((m - mu) ** 2)) / sd)
    ratio = float(np.mean(draws.std(axis=1, ddof=1) / sd))
    d = draws.shape[-1]
    kls = []
    for i in range(draws.shape[0]):
        cov = np.cov(draws[i], rowvar=False)
        inv = np.linalg.inv(cov)
        diff = m[i] - mu[i]
        kls.append(0.5 * (sd ** 2 * np.trace(inv) + diff @ inv @ diff - d
                          + np.linalg.slogdet(cov)[1] - d * np.log(sd ** 2)))
    cal, fw_inside = _sbc({"theta": draws}, {"theta": theta}, d)
    worst = cal["error"].idxmax()
    return dict(rmse_sd=rmse, sd_ratio=ratio, kl=float(np.mean(kls)),
                sbc=float(cal["error"].max()), band=float(cal.loc[worst, "band"]),
                sbc_inside=bool(_inside(cal).all()),
                sbc_fw_inside=fw_inside)


def gaussian_test_set_luck(seed, replicates=50):
    """How often exact posterior draws pass SBC on seed ``seed``'s 200 G test datasets.

    The SBC verdict depends on the test set as well as on the posterior: ``replicates``
    independent sets of 1000 exact draws per dataset give the pass rates of a perfect
    posterior approximation on this very test set (per dimension and family-wise) and
    the range of its largest deviation.
    """
    from tasks import gaussian_exact_draws

    test = held_out_batch("G", seed)
    n_params = test["theta"].shape[1]
    rng = np.random.default_rng(99)
    per_dim, fw, dev = 0, 0, []
    for _ in range(replicates):
        exact = gaussian_exact_draws(test["x"], N_DRAWS, rng)
        cal, fw_inside = _sbc({"theta": exact}, {"theta": test["theta"]}, n_params)
        per_dim += bool(_inside(cal).all())
        fw += fw_inside
        dev.append(float(cal["error"].max()))
    return dict(seed=seed, replicates=replicates, per_dim=per_dim, fw=fw,
                dev_min=min(dev), dev_max=max(dev))


def regression_metrics(draws, test, exact):
    """SBC per parameter, median |z|, contraction, min sigma; median sd ratio and median
    |mean error| / sd against the exact posterior ``exact`` (draws with the same keys)."""
    from skabi.diagnostics import posterior_contraction, posterior_z_score

    targets = {k: np.asarray(test[k]) for k in draws}
    cal, fw_inside = _sbc(draws, targets, 3)
    z = posterior_z_score(draws, targets, summary=True)
    con = posterior_contraction(draws, targets, summary=True)
    out, inside = {}, _inside(cal)
    for name in cal.index:
        key = name.replace("[", "").replace("]", "")
        out[f"sbc_{key}"] = float(cal.loc[name, "error"])
        out[f"band_{key}"] = float(cal.loc[name, "band"])
        out[f"inside_{key}"] = bool(inside[name])
    ecal, efw = _sbc(exact, targets, 3)
    columns = [(draws["beta"][..., j], exact["beta"][..., j]) for j in (0, 1)]
    columns.append((draws["sigma"].reshape(exact["sigma"].shape), exact["sigma"]))
    ratios = [float(np.median(a.std(1) / e.std(1))) for a, e in columns]
    errors = [float(np.median(np.abs(a.mean(1) - e.mean(1)) / e.std(1))) for a, e in columns]
    out.update(median_abs_z=float(z.median()), contraction=float(con.median()),
               min_sigma=float(draws["sigma"].min()), sbc_fw_inside=fw_inside,
               sd_ratio=ratios, mean_err=errors,
               exact_sbc=float(ecal["error"].max()),
               exact_inside=bool(_inside(ecal).all()),
               exact_fw_inside=efw)
    return out


def held_out_batch(task, seed):
    """The 200 test datasets of a run of ``task`` (for L, the batch that times sampling)."""
    from tasks import GaussianSimulator, regression_simulator

    sim = GaussianSimulator() if task.startswith("G") else regression_simulator()
    return sim.sample(N_TEST, random_state=10_000 + seed)


def regression_test_set(seed):
    """200 test datasets of task L, 20 for each N in 5..14 (the prior on N, stratified)."""
    from tasks import likelihood, prior

    from skabi import make_simulator

    return [make_simulator([prior, likelihood], meta_fn=lambda n=n: dict(N=n)).sample(
        N_TEST // 10, random_state=20_000 + 100 * seed + n) for n in range(5, 15)]


def run_one(task, seed, threads, quick):
    import torch

    torch.set_num_threads(threads)
    from tasks import TASKS

    spec = TASKS[task]
    steps = QUICK_STEPS[task] if quick else spec["steps"]
    gaussian = task.startswith("G")
    if gaussian:
        est, sim = spec["build"](seed, steps=steps)
    else:
        est, sim = spec["build"](seed, epochs=max(1, steps // 128),
                                 batches_per_epoch=min(128, steps))
    est.set_params(n_threads=threads)  # skabi sets (and restores) torch's threads per call
    timed = TimedSimulator(sim)
    t0 = time.perf_counter()
    est.fit(timed)
    train_s = time.perf_counter() - t0
    n_steps = est.epochs * est.batches_per_epoch
    step_times = np.diff(timed.times[-n_steps:])  # the training steps; pilot calls dropped
    s_step = float(np.median(step_times[SKIP:])) if len(step_times) > SKIP else float("nan")

    test = held_out_batch(task, seed)
    obs = {k: v for k, v in test.items() if k not in ("theta", "beta", "sigma")}
    sample_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        draws = est.sample(obs, N_DRAWS, return_type="numpy")
        sample_times.append(time.perf_counter() - t0)
    import arviz  # noqa: F401  (imported once, outside the timing)

    t0 = time.perf_counter()
    est.sample(test, N_DRAWS)   # ArviZ container, with log_q and the observed data
    arviz_s = time.perf_counter() - t0
    tracemalloc.start()
    est.sample(obs, N_DRAWS, return_type="numpy")
    py_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    n_params = sum(p.numel() for p in est.approximator_.parameters())
    row = dict(task=task, seed=seed, threads=threads, steps=len(step_times) + 1,
               params=n_params, s_step=s_step, train_s=train_s,
               sample_s=min(sample_times), arviz_s=arviz_s, py_peak_mib=py_peak,
               rss_mib=_rss_mib(), load=os.getloadavg()[0])
    if gaussian:
        row.update(gaussian_metrics(draws["theta"], test["x"], test["theta"]))
        # the same metrics for 1000 draws of the exact posterior: the noise floor
        from tasks import gaussian_exact_draws

        exact = gaussian_exact_draws(test["x"], N_DRAWS, np.random.default_rng(seed))
        row.update({f"exact_{k}": v for k, v in
                    gaussian_metrics(exact, test["x"], test["theta"]).items()})
    else:
        from tasks import regression_exact_posterior

        parts, exact = {}, {"beta": [], "sigma": []}
        rng = np.random.default_rng(seed)
        for batch in regression_test_set(seed):
            obs = {k: v for k, v in batch.items() if k not in ("beta", "sigma")}
            for k, v in est.sample(obs, N_DRAWS, return_type="numpy").items():
                parts.setdefault(k, []).append(v)
            for k in ("beta", "sigma"):
                parts.setdefault("true_" + k, []).append(np.asarray(batch[k]))
            beta, sigma = regression_exact_posterior(batch["x"], batch["y"], N_DRAWS, rng)
            exact["beta"].append(beta)
            exact["sigma"].append(sigma[..., None])
        draws = {k: np.concatenate(parts[k]) for k in ("beta", "sigma")}
        truth = {k: np.concatenate(parts["true_" + k]) for k in ("beta", "sigma")}
        exact = {k: np.concatenate(v) for k, v in exact.items()}
        row.update(regression_metrics(draws, truth, exact))
    return row


def _current_rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_during(fn):
    """(result of fn(), peak resident MiB while it ran), polling every 5 ms."""
    import threading

    peak, done = [_current_rss_mib()], threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], _current_rss_mib())
            done.wait(0.005)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        out = fn()
    finally:
        done.set()
        watcher.join()
    return out, max(peak[0], _current_rss_mib())


MEMORY_CASES = [(1000, 10_000), (2, 20_000_000)]  # (datasets, draws per dataset)


def memory_check(threads=1):
    """Task G, briefly trained: ``est.sample(datasets, draws, return_type="numpy")`` for
    each case of :data:`MEMORY_CASES`; resident memory before and at its peak during the
    call (polled), against the size of the result."""
    from tasks import GaussianSimulator, gaussian_task

    est, sim = gaussian_task(0, steps=100)
    est.set_params(n_threads=threads)
    est.fit(sim)
    cases = []
    for datasets, draws in MEMORY_CASES:
        test = GaussianSimulator().sample(datasets, random_state=1)
        before = _current_rss_mib()
        t0 = time.perf_counter()
        out, peak = _peak_rss_during(
            lambda: est.sample({"x": test["x"]}, draws, return_type="numpy"))
        seconds = time.perf_counter() - t0
        result = sum(v.nbytes for v in out.values()) / 2**20
        cases.append(dict(datasets=datasets, draws=draws, result_mib=result,
                          rss_before_mib=before, rss_peak_mib=peak,
                          working_mib=peak - before - result, seconds=seconds))
        del out
    return dict(task="memory", threads=threads, cases=cases, rss_mib=_rss_mib())


# ---------------------------------------------------------------------------- driver
def _child(args):
    cmd = [sys.executable, str(Path(__file__).resolve())] + args
    env = dict(os.environ, PYTHONHASHSEED="0")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        sys.stderr.write(res.stderr)
        raise RuntimeError(f"benchmark child {args} failed")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _fmt(v, spec):
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return " / ".join(format(x, spec) for x in v)
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float) and np.isnan(v):
        return "-"
    return format(v, spec)


G_COLUMNS = [("threads", "threads", "d"), ("seed", "seed", "d"), ("load", "load", ".1f"),
             ("s/step", "s_step", ".4f"),
             ("train s", "train_s", ".1f"), ("sample s", "sample_s", ".2f"),
             ("arviz s", "arviz_s", ".2f"), ("py peak MiB", "py_peak_mib", ".0f"),
             ("RSS MiB", "rss_mib", ".0f"), ("RMSE/sd", "rmse_sd", ".3f"),
             ("sd ratio", "sd_ratio", ".3f"), ("KL", "kl", ".4f"), ("SBC dev", "sbc", ".3f"),
             ("band", "band", ".3f"), ("inside", "sbc_inside", ""),
             ("inside (family-wise)", "sbc_fw_inside", ""),
             ("exact: RMSE/sd", "exact_rmse_sd", ".3f"), ("exact: KL", "exact_kl", ".4f"),
             ("exact: SBC dev", "exact_sbc", ".3f"), ("exact: inside", "exact_sbc_inside", ""),
             ("exact: inside (family-wise)", "exact_sbc_fw_inside", "")]
L_COLUMNS = [("threads", "threads", "d"), ("seed", "seed", "d"), ("load", "load", ".1f"),
             ("s/step", "s_step", ".4f"),
             ("train s", "train_s", ".1f"), ("sample s", "sample_s", ".2f"),
             ("arviz s", "arviz_s", ".2f"), ("py peak MiB", "py_peak_mib", ".0f"),
             ("RSS MiB", "rss_mib", ".0f"),
             ("SBC beta0 (band)", ("sbc_beta0", "band_beta0"), ""),
             ("SBC beta1 (band)", ("sbc_beta1", "band_beta1"), ""),
             ("SBC sigma (band)", ("sbc_sigma", "band_sigma"), ""),
             ("all inside", ("inside_beta0", "inside_beta1", "inside_sigma"), ""),
             ("inside (family-wise)", "sbc_fw_inside", ""),
             ("median abs z", "median_abs_z", ".3f"), ("contraction", "contraction", ".3f"),
             ("min sigma", "min_sigma", ".2e"),
             ("sd / exact sd", "sd_ratio", ".2f"), ("mean err / exact sd", "mean_err", ".2f"),
             ("exact: SBC dev", "exact_sbc", ".3f"), ("exact: inside", "exact_inside", ""),
             ("exact: inside (family-wise)", "exact_fw_inside", "")]


def _cell(row, key, spec):
    if isinstance(key, str) and key not in row:
        return "-"
    if isinstance(key, tuple) and key[0].startswith("inside"):
        return "yes" if all(row[k] for k in key) else "NO"
    if isinstance(key, tuple):
        return f"{row[key[0]]:.3f} ({row[key[1]]:.3f})"
    return _fmt(row[key], spec)


def table(rows, columns):
    head = "| " + " | ".join(c[0] for c in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_cell(r, c[1], c[2]) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep] + body)


PEERS = """\
Reference numbers quoted from issue 7 (measured by the issue author on this machine: 2 cores,
torch 2.13 CPU, 1 thread, the same tasks). sbi's NICE row was re-measured above with
`benchmarks/compare.py`; BayesFlow 2.1 was not (it needs Python >= 3.12), its 2.0.12 was.

| task G | s/step | sample 200x1000 | RMSE/sd | KL | seeds |
|---|---|---|---|---|---|
| BayesFlow 2.1 (torch backend, defaults: 394k params) | 0.24-0.31 | 5.8-6.5 s | 0.39-0.40 | 0.29-0.31 | 2 |
| sbi 0.27 NPE (zuko NICE, 120k params, 1 epoch over 128k sims) | 0.015-0.021 | 2.0-2.8 s | 0.29-2.1 | 0.18-2.1 | 3 |
| sbi 0.27 NPE (MAF, same budget) | 0.014-0.018 | 3.3-4.4 s | 2.1-3.8 | 2.2-4.1 | 3 |
| the exact posterior, 1000 draws (noise floor) | - | - | 0.032 | 0.007 | - |
| a bare PyTorch loop of the same 120k-parameter networks | 0.014 | 2.3 s | - | - | - |

Task L: BayesFlow 2.1 (affine CouplingFlow, DeepSet, defaults, 396k params) 0.116-0.121
s/step, 5.0-5.6 s to sample 200 x 1000, SBC deviation 0.098 for beta0 (95% band 0.096), and
1 in 100,000 sigma draws was negative despite `constrain(sigma, lower=0)`; sbi (zuko NICE,
fixed N) 0.0144 s/step, 2.3 s to sample.
"""

PROFILE = """\
Where the time went (cProfile and torch.profiler, 1 thread), first round:

* **G training step (~12 ms)**: forward ~3.2 ms (DeepSet over 64 x 50 elements, 6 affine
  couplings), backward ~4-5 ms (linear layers and GELU of the DeepSet's 3200 rows), clip +
  Adam 2.8 ms (torch's default single-tensor Adam on CPU: 46 tensors, 5 kernels each),
  simulation + adapter + numpy->torch ~0.3 ms. Once per fit: creating the first torch
  optimizer imports `torch._dynamo` (~1.5 s of the training wall time).
* **G sampling 200 x 1000 (3.4-3.8 s)**: drawing (inverse flow in cache-sized blocks) ~1 s;
  the log density of every draw ~2.3 s, computed even for `return_type="numpy"`, which
  discards it, and in one 200,000-row block whose 128-wide activations (100 MB per layer)
  fall out of cache (a third of the run was system time: page faults).

Changes: fused Adam/AdamW where torch supports it (CPU from torch 2.4, CUDA; default
otherwise): clip + step 2.8 -> 1.6 ms for G; `sample(..., return_type="numpy")` skips the
log densities it never returns; `log_q` for the ArviZ output is computed in cache-sized
blocks (2.3 -> ~1 s); draws are written into one preallocated float64 array.

Second round, **L spline step (~11.6-13 ms on a quiet machine)**: model step ~10 ms
(forward 3.0, backward 3.9, clip + Adam 0.9), the tutorial's single-draw functions through
`make_simulator` 1.3 ms per batch of 64 (0.8 ms of it the user's own numpy calls), adapter
and tensors 0.3 ms. At batch 64 nearly everything is per-operation overhead: a spline
coupling was ~50 small tensor operations, recorded and replayed by autograd (600 us per
layer forward + backward); `torch.softmax` over an axis of 8 takes a slow path (30 us
against 5 us for long rows); every operation with a Python scalar first wraps the scalar
in a tensor (2.4 us against 1.1 us); the optimizer, zeroing and clipping loop over 60-70
parameter tensors in Python.

Changes: the forward spline is one autograd node with a hand-derived backward (checked
against finite differences and plain autograd) and its own softmax: 600 -> 440 us per
layer; all trainable parameters are views of one flat tensor, so Adam, zeroing and
clipping handle one tensor; `make_simulator` reads each function's signature once and
stacks draws without per-draw shape sets (1270 -> 1080 us of CPU per batch of 64).
The default learning rate went from 5e-4 to 1e-3 and then to 2e-3 (with the cosine
decay). On task L with the spline flow, the median ratio of the posterior sd to the exact
one (beta0 / beta1 / sigma, seed 1, 1000 test datasets) went from 1.32 / 1.73 / 2.25 to
1.05 / 1.16 / 1.42 and then to 1.04 / 1.05 / 1.27 (sigma 1.50 -> 1.24 and 1.66 -> 1.33 on
seeds 0 and 2). At 2e-3, G with the default networks reaches RMSE/sd 0.068-0.075 against
0.074-0.080 at 1e-3, and flow matching on G 0.097-0.100 against 0.107; a SetTransformer
summary on G is unchanged within seed noise (0.084-0.096 against 0.083-0.088). Task G
keeps the issue's 5e-4; `G-defaults` shows G with every default.

Tried and dropped: simulating the next batch in a background thread, either all the time
or only while `loss.backward()` runs (torch releases the GIL there). Both were slower than
simulating in the training thread (12-20 ms against 11-13 ms per step): the simulator's
Python holds the GIL whenever the training thread needs it between two small operations,
and CPython hands it back only after its 5 ms switch interval; a 20-100 us interval did
not beat the serial loop either. A process-based simulator would avoid this but has to
ship the random stream and the user's functions to another process.
"""

TARGETS = """\
Targets (issue 7): G <= 0.017 s/step at 1 thread; G sampling 200 x 1000 <= 1.5 s at 1 thread;
G on every seed RMSE/sd <= 0.15, KL <= 0.05, sd ratio in [0.9, 1.1], SBC inside the 95% band;
L (spline) SBC inside the band for beta0, beta1, sigma and <= 0.012 s/step at 1 thread;
never a sigma draw <= 0; 1000 x 10,000 draws within 4 GiB.
"""


def verdicts(rows, memory, luck=()):
    """(target, met?, the numbers) for the targets of issue 7 that these rows cover."""
    out = []
    g1 = [r for r in rows if r["task"] == "G" and r["threads"] == 1]
    g = [r for r in rows if r["task"] == "G"]
    ls = [r for r in rows if r["task"] == "L-spline"]
    ls1 = [r for r in ls if r["threads"] == 1]

    def span(rs, key, spec):
        vals = [r[key] for r in rs]
        return f"{min(vals):{spec}}-{max(vals):{spec}}"

    if g1:
        out.append(("G <= 0.017 s/step at 1 thread", all(r["s_step"] <= 0.017 for r in g1),
                    span(g1, "s_step", ".4f") + " s/step"))
        out.append(("G sampling 200 x 1000 <= 1.5 s at 1 thread",
                    all(r["sample_s"] <= 1.5 for r in g1), span(g1, "sample_s", ".2f") + " s"))
    if g:
        out.append(("G RMSE/sd <= 0.15, every seed", all(r["rmse_sd"] <= 0.15 for r in g),
                    span(g, "rmse_sd", ".3f")))
        out.append(("G KL <= 0.05, every seed", all(r["kl"] <= 0.05 for r in g),
                    span(g, "kl", ".4f")))
        out.append(("G sd ratio in [0.9, 1.1], every seed",
                    all(0.9 <= r["sd_ratio"] <= 1.1 for r in g), span(g, "sd_ratio", ".3f")))
        out.append(("G SBC deviation inside the 95% band, every seed",
                    all(r["sbc"] <= r["band"] and r["sbc_inside"] for r in g),
                    "deviation " + span(g, "sbc", ".3f") + f" vs band {g[0]['band']:.3f}; "
                    + ", ".join(f"seed {r['seed']}: {'inside' if r['sbc_inside'] else 'outside'}"
                                f" (exact draws: "
                                f"{'inside' if r.get('exact_sbc_inside', True) else 'outside'}"
                                + "".join(f"; inside in {d['per_dim']} of {d['replicates']} "
                                          "replicates" for d in luck if d["seed"] == r["seed"])
                                + ")" for r in g1 or g)))
        if all("sbc_fw_inside" in r for r in g):
            out.append(("G SBC inside the family-wise 95% band (4 dimensions), every seed",
                        all(r["sbc_fw_inside"] for r in g),
                        f"{sum(r['sbc_fw_inside'] for r in g)} of {len(g)} runs"))
    gd = [r for r in rows if r["task"] == "G-defaults"]
    if gd:
        out.append(("G with all skabi defaults: RMSE/sd <= 0.15, KL <= 0.05, sd ratio in "
                    "[0.9, 1.1], every seed",
                    all(r["rmse_sd"] <= 0.15 and r["kl"] <= 0.05 and 0.9 <= r["sd_ratio"] <= 1.1
                        for r in gd),
                    f"RMSE/sd {span(gd, 'rmse_sd', '.3f')}, KL {span(gd, 'kl', '.4f')}, "
                    f"sd ratio {span(gd, 'sd_ratio', '.3f')}; SBC inside (family-wise) in "
                    f"{sum(r['sbc_fw_inside'] for r in gd)} of {len(gd)} runs"))
    if ls:
        params = ("beta0", "beta1", "sigma")
        ok = all(r[f"inside_{p}"] for r in ls for p in params)
        fails = [f"seed {r['seed']} ({r['threads']} thread(s)) {p} (ECDF leaves the "
                 f"simultaneous band; deviation {r[f'sbc_{p}']:.3f}, deviation band "
                 f"{r[f'band_{p}']:.3f})" for r in ls for p in params if not r[f"inside_{p}"]]
        n_ok = sum(all(r[f"inside_{p}"] for p in params) for r in ls)
        exact = sum(r.get("exact_inside", True) for r in ls)
        out.append(("L spline: SBC inside the 95% band for beta0, beta1, sigma", ok,
                    f"{n_ok} of {len(ls)} runs (exact posterior: {exact} of {len(ls)})"
                    + ("; outside: " + ", ".join(fails) if fails else "")
                    + "; deviations " + span([dict(v=r[f"sbc_{p}"]) for r in ls for p in params],
                                            "v", ".3f")))
        if all("sbc_fw_inside" in r for r in ls):
            out.append(("L spline: SBC inside the family-wise 95% band (3 parameters)",
                        all(r["sbc_fw_inside"] for r in ls),
                        f"{sum(r['sbc_fw_inside'] for r in ls)} of {len(ls)} runs (exact "
                        f"posterior: {sum(r['exact_fw_inside'] for r in ls)} of {len(ls)})"))
    if ls1:
        out.append(("L spline <= 0.012 s/step at 1 thread",
                    all(r["s_step"] <= 0.012 for r in ls1), span(ls1, "s_step", ".4f")
                    + " s/step"))
    lall = [r for r in rows if r["task"].startswith("L")]
    if lall:
        out.append(("never a sigma draw <= 0", all(r["min_sigma"] > 0 for r in lall),
                    f"smallest sigma draw {min(r['min_sigma'] for r in lall):.2e}"))
    if memory:
        out.append(("1000 x 10,000 draws within 4 GiB", memory["rss_mib"] <= 4096,
                    f"peak RSS {memory['rss_mib']:.0f} MiB"))
        for case in memory.get("cases", []):
            out.append((f"sample {case['datasets']} x {case['draws']:,} draws: peak <= "
                        "result + 256 MiB", case["working_mib"] <= 256,
                        f"result {case['result_mib']:.0f} MiB, working set "
                        f"{case['working_mib']:.0f} MiB"))
    return out


COMPARE_COLUMNS = [("library", "library", ""), ("seed", "seed", "d"), ("load", "load", ".1f"),
                   ("s/step", "s_step", ".4f"), ("train s", "train_s", ".1f"),
                   ("sample s", "sample_s", ".2f"), ("RMSE/sd", "rmse_sd", ".3f"),
                   ("sd ratio", "sd_ratio", ".3f"), ("KL", "kl", ".4f"),
                   ("SBC dev", "sbc", ".3f"), ("inside (family-wise)", "sbc_fw_inside", "")]


KEEP_MARKER = "<!-- written by hand below this line: run.py keeps it -->"


def write_readme(rows, memory, quick, path=HERE / "README.md", compare=None):
    import torch

    import skabi

    lines = ["# skabi benchmarks (issue 7)", "",
             "Generated by `python benchmarks/run.py" + (" --quick" if quick else "") + "`"
             f" on {time.strftime('%Y-%m-%d')}: skabi {skabi.__version__}, torch "
             f"{torch.__version__}, Python {platform.python_version()}, "
             f"{os.cpu_count()} CPU cores. Every seed is reported.", ""]
    if quick:
        lines += ["**Quick smoke run: short training, the accuracy numbers are not meaningful.**",
                  ""]
    lines += [__doc__.split("Usage::")[0].split("\n\n", 1)[1].strip(), "", TARGETS]
    lines += ["| target | met | measured |", "|---|---|---|"]
    g_seeds = sorted({r["seed"] for r in rows if r["task"].startswith("G")})
    luck = [gaussian_test_set_luck(seed) for seed in g_seeds] if not quick else []
    lines += [f"| {t} | {'yes' if ok else 'NO'} | {m} |"
              for t, ok, m in verdicts(rows, memory, luck)]
    lines += [""]
    for task, cols, title in (
            ("G", G_COLUMNS, "Task G: analytic Gaussian (2000 steps, batch 64, 120k params)"),
            ("G-defaults", G_COLUMNS, "Task G with every skabi default (learning rate 2e-3 "
             "instead of the issue's 5e-4)"),
            ("L-affine", L_COLUMNS, "Task L: linear regression, affine coupling flow"),
            ("L-spline", L_COLUMNS, "Task L: linear regression, spline coupling flow")):
        sub = [r for r in rows if r["task"] == task]
        if sub:
            lines += [f"## {title}", "", f"Parameters: {sub[0]['params']:,}; optimizer steps: "
                      f"{sub[0]['steps']}.", "", table(sub, cols), ""]
    if luck:
        lines += ["## Task G: how often the exact posterior passes SBC on each test set", "",
                  "The SBC verdict of one run depends on its 200 test datasets as well as on "
                  "the posterior. Here the exact posterior is drawn 50 times (1000 draws per "
                  "dataset each time) on each seed's G test set "
                  "(`gaussian_test_set_luck`): how often a perfect approximation passes, "
                  "and the range of its largest deviation.", "",
                  "| seed | inside, every dimension | inside, family-wise | largest deviation |",
                  "|---|---|---|---|"]
        lines += [f"| {d['seed']} | {d['per_dim']} of {d['replicates']} | {d['fw']} of "
                  f"{d['replicates']} | {d['dev_min']:.3f}-{d['dev_max']:.3f} |" for d in luck]
        lines += [""]
    if memory:
        lines += ["## Memory of sample", "",
                  "`est.sample(datasets, draws, return_type='numpy')` on task G (4 parameters, "
                  "float64 draws), each case in the same process after training: resident "
                  "memory polled every 5 ms during the call. Draws are made in chunks of "
                  "2**20 values over datasets and draws and written into the result, so the "
                  "working set (peak - before - result) does not grow with the result.", "",
                  "| datasets | draws each | result MiB | RSS before MiB | peak during MiB | "
                  "working set MiB | seconds |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {c['datasets']} | {c['draws']:,} | {c['result_mib']:.0f} | "
                  f"{c['rss_before_mib']:.0f} | {c['rss_peak_mib']:.0f} | "
                  f"{c['working_mib']:.0f} | {c['seconds']:.1f} |"
                  for c in memory.get("cases", [])]
        lines += ["", f"Peak RSS of the whole process: {memory['rss_mib']:.0f} MiB, "
                  f"{memory['threads']} thread(s).", ""]
    if compare:
        lines += ["## Task G side by side, measured here", "",
                  "`benchmarks/compare.py` in a separate environment with the peers installed "
                  "(torch 2.13 CPU, 1 thread, one after the other on this machine); skabi with "
                  "the same settings as task G above. BayesFlow 2.1 needs Python >= 3.12, so "
                  "the BayesFlow row is 2.0.12, the last release for Python 3.11 (torch "
                  "backend, defaults, one seed: its 2000 steps take 4-5 minutes).", "",
                  table(compare, COMPARE_COLUMNS), ""]
    lines += ["## Profile", "", PROFILE, "## Peers", "", PEERS]
    kept = ""  # the hand-written sections below the marker survive a regeneration
    if path.exists() and KEEP_MARKER in path.read_text():
        kept = path.read_text().split(KEEP_MARKER, 1)[1]
    path.write_text("\n".join(lines) + ("\n" + KEEP_MARKER + kept if kept else ""))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--tasks", nargs="+", default=["G", "L-affine", "L-spline"])
    p.add_argument("--seeds", nargs="+", type=int, default=None)
    p.add_argument("--threads", nargs="+", type=int, default=None)
    p.add_argument("--memory", action="store_true", help="only the memory check")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--no-readme", action="store_true")
    p.add_argument("--json", default=None, help="also write all rows to this JSON file")
    p.add_argument("--from-json", nargs="+", default=None,
                   help="regenerate the README from rows saved with --json")
    p.add_argument("--one", nargs=3, metavar=("TASK", "SEED", "THREADS"), help=argparse.SUPPRESS)
    p.add_argument("--memory-one", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(run_one(a.one[0], int(a.one[1]), int(a.one[2]), a.quick)))
        return
    if a.memory_one:
        print(json.dumps(memory_check()))
        return
    if a.from_json:
        rows, memory, quick, compare = [], None, False, []
        for f in a.from_json:
            data = json.loads(Path(f).read_text())
            rows += data.get("rows", [])
            compare += data.get("compare", [])
            memory = data.get("memory") or memory
            quick = quick or bool(data.get("quick"))
        order = {"G": 0, "G-defaults": 1, "L-affine": 2, "L-spline": 3}
        rows.sort(key=lambda r: (order.get(r["task"], 9), r["threads"], r["seed"]))
        write_readme(rows, memory, quick=quick, compare=compare)
        return
    seeds = a.seeds or ([0] if a.quick else [0, 1, 2])
    threads = a.threads or ([1] if a.quick else [1, 2])
    rows, memory = [], None
    if not a.memory:
        for task in a.tasks:
            for t in threads:
                for s in seeds:
                    args = ["--one", task, str(s), str(t)] + (["--quick"] if a.quick else [])
                    row = _child(args)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    if not a.no_memory:
        memory = _child(["--memory-one"])
        print(json.dumps(memory), flush=True)
    for task, cols in (("G", G_COLUMNS), ("G-defaults", G_COLUMNS), ("L-affine", L_COLUMNS),
                       ("L-spline", L_COLUMNS)):
        sub = [r for r in rows if r["task"] == task]
        if sub:
            print(f"\n{task}\n" + table(sub, cols))
    if a.json:
        Path(a.json).write_text(json.dumps(dict(rows=rows, memory=memory, quick=a.quick),
                                           indent=1))
    if not a.no_readme:
        write_readme(rows, memory, a.quick)


if __name__ == "__main__":
    main()
