"""Speed of skabi's networks on this machine (CPU, batch 64).

Prints, at 1 and 2 torch threads, the median forward+backward+Adam step time per network
(with the summary network where there is one) and the posterior draws per second.

Run: ``python benchmarks/networks.py`` (about 1-2 minutes).
"""

from __future__ import annotations

import statistics
import time

import torch

from skabi.networks import CouplingFlow, DeepSet, FlowMatching, SetTransformer, TimeSeriesNetwork

BATCH, N_SET, F_SET, DIM = 64, 50, 4, 4


def _median_time(fn, repeats: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _setup(inference, summary, feature_dim, seq_len, fused=False):
    torch.manual_seed(0)
    summ = summary.build(feature_dim) if summary is not None else None
    cond_dim = summ.summary_dim if summ is not None else 8
    net = inference.build(DIM, cond_dim)
    params = list(net.parameters()) + (list(summ.parameters()) if summ is not None else [])
    opt = torch.optim.Adam(params, lr=1e-3, **({"fused": True} if fused else {}))
    x = torch.randn(BATCH, seq_len, feature_dim)
    theta = torch.randn(BATCH, DIM)

    def embed(data):
        return summ(data) if summ is not None else data[:, 0, :cond_dim]

    def step():
        opt.zero_grad(set_to_none=True)
        loss = net.loss(theta, embed(x))
        loss.backward()
        opt.step()

    n_params = sum(p.numel() for p in params)
    return net, embed, step, n_params


def _draws_per_second(net, embed, feature_dim, seq_len, n_cond, n_draws, repeats):
    """Seconds for ``n_cond`` datasets x ``n_draws`` draws (summary network included)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n_cond, seq_len, feature_dim)

    def draw(n_c=n_cond):
        with torch.no_grad():
            net.sample(n_draws, embed(x[:n_c]), generator=gen)

    draw(max(1, n_cond // 20))  # warm-up on a small problem
    seconds = _median_time(draw, repeats=repeats, warmup=0)
    return seconds, n_cond * n_draws / seconds


CASES = [
    # name, inference holder, summary holder, feature_dim, set/series length, (n_cond, n_draws)
    ("DeepSet + CouplingFlow(affine)  [reference]", CouplingFlow(depth=6), DeepSet(summary_dim=8),
     F_SET, N_SET, (200, 1000)),
    ("  same, Adam(fused=True)", CouplingFlow(depth=6), DeepSet(summary_dim=8),
     F_SET, N_SET, (0, 0)),
    ("DeepSet + CouplingFlow(spline)", CouplingFlow(depth=6, transform="spline"),
     DeepSet(summary_dim=8), F_SET, N_SET, (200, 1000)),
    ("DeepSet + FlowMatching(rk4, 25 steps)", FlowMatching(), DeepSet(summary_dim=8),
     F_SET, N_SET, (10, 1000)),
    ("DeepSet + FlowMatching(euler, 50 steps)", FlowMatching(integrator="euler", steps=50),
     DeepSet(summary_dim=8), F_SET, N_SET, (10, 1000)),
    ("SetTransformer(SAB) + CouplingFlow(affine)", CouplingFlow(depth=6),
     SetTransformer(summary_dim=8), F_SET, N_SET, (200, 1000)),
    ("SetTransformer(ISAB 16) + CouplingFlow(affine)", CouplingFlow(depth=6),
     SetTransformer(summary_dim=8, num_inducing_points=16), F_SET, N_SET, (200, 1000)),
    ("TimeSeriesNetwork(GRU) + CouplingFlow(affine), T=100", CouplingFlow(depth=6),
     TimeSeriesNetwork(summary_dim=8), 2, 100, (200, 1000)),
]


def main() -> None:
    print(f"torch {torch.__version__}; batch {BATCH}; theta dim {DIM}; sets of {N_SET} x "
          f"{F_SET}; step = forward + backward + Adam step (median, after warm-up); "
          "sample = summary + draws")
    print("targets (reference, 1 thread): step <= 14 ms, 200 x 1000 draws <= 1.5 s")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        print(f"\n== torch.set_num_threads({threads}) ==")
        print(f"{'network':55s} {'params':>8s} {'step ms':>8s} {'sample s':>9s} "
              f"{'draws/s':>11s}")
        for i, (name, inf, summ, fdim, length, (n_cond, n_draws)) in enumerate(CASES):
            net, embed, step, n_params = _setup(inf, summ, fdim, length, fused="fused" in name)
            net.train()
            ms = 1000 * _median_time(step, repeats=50 if i < 2 else 15)
            if not n_cond:
                print(f"{name:55s} {n_params:8d} {ms:8.2f}")
                continue
            net.eval()
            sec, rate = _draws_per_second(net, embed, fdim, length, n_cond, n_draws,
                                          repeats=3 if i == 0 else 1)
            print(f"{name:55s} {n_params:8d} {ms:8.2f} {sec:9.3f} {rate:11.0f}"
                  f"   ({n_cond} x {n_draws} draws)")


if __name__ == "__main__":
    main()
