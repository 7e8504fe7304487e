"""Amortized likelihoods (issue 16): surrogate quality, marginal likelihoods, speed.

1. Regression tutorial (tests/models.py): an AmortizedLikelihood of one observation
   (x_n, y_n) given (beta, sigma); C2ST between 1000 surrogate and 1000 simulator
   observations at each of 20 prior draws (target: mean <= 0.55).
2. Conjugate Gaussian models with known evidence: mu ~ N(0, tau^2), x_n ~ N(mu, 1),
   n = 1..10, model A tau = 1 and model B tau = 3. Per model one AmortizedPosterior and one
   AmortizedLikelihood; log p(x) by skabi.log_marginal_likelihood on 100 datasets (50 from
   each model) against the exact value (target: median abs error <= 0.1 nats under model
   A), and the sign of log BF_AB against the exact one (target: >= 95% agreement).
3. Speed: s/step of the likelihood's training and the time to draw 1000 synthetic datasets
   of N = 10 observations, beside the simulator's time for the same.

Usage: ``python benchmarks/likelihood.py [--seed 0] [--steps 2000]``; prints every number.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from models import likelihood, meta, prior  # noqa: E402

from skabi import (AmortizedJoint, AmortizedLikelihood, AmortizedPosterior,  # noqa: E402
                   log_bayes_factor, log_marginal_likelihood, make_simulator)
from skabi.adapters import (AsObservations, Concatenate, Constrain, Rename,  # noqa: E402
                            make_adapter)
from skabi.diagnostics import c2st  # noqa: E402
from skabi.networks import CouplingFlow  # noqa: E402

N_OBS = 10


def regression(seed, steps):
    sim = make_simulator([prior, likelihood], meta_fn=meta)
    adapter = make_adapter(AsObservations(["x", "y"]), Constrain("sigma", lower=0),
                           Concatenate(["x", "y"], into="inference_variables"),
                           Concatenate(["beta", "sigma"], into="inference_conditions"))
    epochs = max(1, steps // 100)
    lik = AmortizedLikelihood(adapter=adapter, inference_network=CouplingFlow(depth=4),
                              epochs=epochs, batches_per_epoch=100, batch_size=64,
                              random_state=seed)
    start = time.perf_counter()
    lik.fit(sim)
    train_s = time.perf_counter() - start
    s_step = float(np.median(lik.history_["seconds"])) / 100
    print(f"[regression] seed {seed}: {epochs * 100} steps, train {train_s:.1f} s, "
          f"s/step {s_step:.4f} (median epoch / 100), final loss "
          f"{lik.history_['loss'].iloc[-1]:.3f}")

    rng = np.random.default_rng(1000 + seed)
    thetas = sim.sample_given({"N": np.asarray(N_OBS)}, 20, random_state=rng)
    scores = []
    for i in range(20):
        theta = {"beta": thetas["beta"][i:i + 1], "sigma": thetas["sigma"][i:i + 1]}
        fake = lik.sample(theta, num_samples=100, n_obs=N_OBS, random_state=rng)
        given = {"beta": np.repeat(theta["beta"], 100, 0),
                 "sigma": np.repeat(theta["sigma"], 100, 0), "N": np.asarray(N_OBS)}
        real = sim.sample_given(given, 100, random_state=rng)
        a = np.stack([fake["x"].ravel(), fake["y"].ravel()], axis=1)
        b = np.stack([real["x"].ravel(), real["y"].ravel()], axis=1)
        scores.append(float(np.ravel(c2st(a, b, random_state=seed))[0]))
    print(f"[regression] C2ST at 20 prior draws (1000 vs 1000 observations each): "
          f"{', '.join(f'{s:.3f}' for s in scores)}")
    print(f"[regression] C2ST mean {np.mean(scores):.3f} (target <= 0.55), max "
          f"{np.max(scores):.3f}")

    theta = {"beta": np.zeros((1000, 2)), "sigma": np.ones((1000, 1))}
    lik.sample({k: v[:2] for k, v in theta.items()}, n_obs=N_OBS)   # warm-up
    start = time.perf_counter()
    lik.sample(theta, n_obs=N_OBS, random_state=0)
    draw_s = time.perf_counter() - start
    given = {**theta, "N": np.asarray(N_OBS)}
    start = time.perf_counter()
    sim.sample_given(given, 1000, random_state=0)
    sim_s = time.perf_counter() - start
    print(f"[regression] 1000 synthetic datasets of N={N_OBS}: surrogate {draw_s:.3f} s, "
          f"simulator {sim_s:.3f} s")


class NormalMean:
    def __init__(self, tau):
        self.tau = tau

    def sample(self, batch_size, random_state=None):
        rng = np.random.default_rng(random_state)
        mu = rng.normal(0.0, self.tau, size=(batch_size, 1))
        return {"mu": mu, "x": mu + rng.normal(size=(batch_size, N_OBS))}

    def log_evidence(self, x):
        return stats.multivariate_normal(np.zeros(N_OBS),
                                         np.eye(N_OBS) + self.tau ** 2).logpdf(x)


def fit_model(model, seed, steps, joint=False):
    """The posterior and likelihood of ``model``: two fits of ``steps`` steps each, or
    (``joint``) one :class:`~skabi.AmortizedJoint` run of ``steps`` steps training both."""
    epochs = max(1, steps // 100)
    common = dict(epochs=epochs, batches_per_epoch=100, batch_size=64, random_state=seed)
    post = AmortizedPosterior(
        adapter=make_adapter(Rename("mu", "inference_variables"),
                             Rename("x", "inference_conditions")),
        inference_network=CouplingFlow(depth=4), **common)
    lik = AmortizedLikelihood(
        adapter=make_adapter(AsObservations("x"), Rename("x", "inference_variables"),
                             Rename("mu", "inference_conditions")),
        inference_network=CouplingFlow(depth=4), **common)
    start = time.perf_counter()
    if joint:
        est = AmortizedJoint(post, lik, **common).fit(model)
        post, lik = est.posterior_, est.likelihood_
    else:
        post, lik = post.fit(model), lik.fit(model)
    print(f"[evidence] tau={model.tau}: {'one joint fit' if joint else 'two fits'} of "
          f"{steps} steps, {time.perf_counter() - start:.1f} s")
    return post, lik


def evidence(seed, steps, joint=False):
    models = {"A": NormalMean(1.0), "B": NormalMean(3.0)}
    fitted = {k: fit_model(m, seed, steps, joint) for k, m in models.items()}
    data = np.concatenate([models["A"].sample(50, random_state=2000 + seed)["x"],
                           models["B"].sample(50, random_state=3000 + seed)["x"]])
    obs = {"x": data}
    est = {}
    for k, m in models.items():
        post, lik = fitted[k]
        est[k] = log_marginal_likelihood(post, lik, obs, {"mu": stats.norm(0.0, m.tau)},
                                         num_samples=2000, random_state=seed)
        err = est[k]["log_ml"].to_numpy() - m.log_evidence(data)
        print(f"[evidence] model {k} (tau={m.tau}) seed {seed}: median |error| "
              f"{np.median(np.abs(err)):.3f} nats, mean error {err.mean():+.3f}, 90% |error| "
              f"{np.quantile(np.abs(err), 0.9):.3f}, median MC se "
              f"{est[k]['mc_se'].median():.3f}, median spread {est[k]['spread'].median():.3f}")
    bf = log_bayes_factor(est["A"], est["B"])["log_bf"].to_numpy()
    exact = models["A"].log_evidence(data) - models["B"].log_evidence(data)
    agree = np.mean(np.sign(bf) == np.sign(exact))
    print(f"[evidence] seed {seed}: log BF_AB sign agreement {agree:.1%} (target >= 95%); "
          f"median |log BF error| {np.median(np.abs(bf - exact)):.3f}; exact log BF range "
          f"{exact.min():.2f}..{exact.max():.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--only", choices=["regression", "evidence"], default=None)
    parser.add_argument("--joint", action="store_true",
                        help="evidence from one AmortizedJoint fit per model (JANA)")
    args = parser.parse_args(argv)
    if args.only in (None, "regression"):
        regression(args.seed, args.steps)
    if args.only in (None, "evidence"):
        evidence(args.seed, args.steps, args.joint)


if __name__ == "__main__":
    main()
