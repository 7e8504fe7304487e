"""Multilevel (hierarchical) models: the normal-normal model and eight schools.

    python examples/multilevel.py [--fast]

Trains one AmortizedMultilevelPosterior per model, then samples the posterior of new
datasets of any number of groups in one call (an ArviZ container with a ``group`` dim).
"""

import argparse

import numpy as np

from skabi import AmortizedMultilevelPosterior, make_multilevel_simulator
from skabi.adapters import (AsSet, Concatenate, Constrain, MultilevelAdapter, Rename,
                            make_adapter)
from skabi.networks import CouplingFlow, DeepSet


def hyperprior(rng):
    return dict(mu=rng.normal(0, 5), tau=abs(rng.normal(0, 5)))


def global_adapter():
    return make_adapter(Constrain("tau", lower=0),
                        Concatenate(["mu", "tau"], into="inference_variables"))


def normal_normal(steps):
    simulator = make_multilevel_simulator(
        hyperprior,
        lambda mu, tau, rng: dict(theta=rng.normal(mu, tau)),
        lambda theta, N, rng: dict(y=rng.normal(theta, 1.0, size=N)),
        meta_fn=lambda rng: dict(J=int(rng.integers(2, 21)), N=int(rng.integers(1, 21))))
    adapter = MultilevelAdapter(
        global_adapter(),
        make_adapter(AsSet("y"), Rename("y", "summary_variables"),
                     Rename("theta", "inference_variables")))
    est = AmortizedMultilevelPosterior(
        adapter=adapter, summary_network=DeepSet(summary_dim=8, pooling="mean+sum"),
        global_summary_network=DeepSet(summary_dim=16, pooling="mean+sum"),
        epochs=10, batches_per_epoch=max(1, steps // 10), random_state=0)
    est.fit(simulator)
    # three groups of 3, 1 and 12 observations: padded and masked
    rng = np.random.default_rng(1)
    observed = {"y": [rng.normal(2, 1, 3), rng.normal(-1, 1, 1), rng.normal(0.5, 1, 12)]}
    return est, est.sample(observed, num_samples=1000)


def eight_schools(steps):
    simulator = make_multilevel_simulator(
        hyperprior,
        # sigma_j, a known covariate, is drawn from the range the data need
        lambda mu, tau, rng: dict(theta=rng.normal(mu, tau), sigma=rng.uniform(5, 20)),
        lambda theta, sigma, rng: dict(y=rng.normal(theta, sigma)),
        meta_fn=lambda rng: dict(J=int(rng.integers(2, 13))))
    adapter = MultilevelAdapter(
        global_adapter(),
        make_adapter(Concatenate(["y", "sigma"], into="inference_conditions"),
                     Rename("theta", "inference_variables")))
    est = AmortizedMultilevelPosterior(
        adapter=adapter, global_summary_network=DeepSet(summary_dim=16, pooling="mean+sum"),
        epochs=10, batches_per_epoch=max(1, steps // 10), random_state=0)
    est.fit(simulator)
    schools = {"y": np.array([28, 8, -3, 7, -1, 1, 18, 12.0]),
               "sigma": np.array([15, 10, 16, 11, 9, 11, 10, 18.0])}
    return est, est.sample(schools, num_samples=2000)


if __name__ == "__main__":
    import arviz as az

    parser = argparse.ArgumentParser()
    parser.add_argument("--fast", action="store_true", help="a few steps (smoke test)")
    steps = 50 if parser.parse_args().fast else 2000
    for name, run in (("normal-normal", normal_normal), ("eight schools", eight_schools)):
        est, idata = run(steps)
        print(name)
        print(az.summary(idata.posterior.isel(dataset=0), kind="stats"))
