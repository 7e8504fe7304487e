"""The two documented ways to sufficient summaries (doc/networks.rst): moment pooling in the
DeepSet, and a hand-made statistic routed to the conditions beside learned summaries."""

import numpy as np
import pytest
from models import likelihood, meta, prior

from skabi import AmortizedPosterior, make_adapter, make_simulator
from skabi.adapters import AsSet, Broadcast, Concatenate, Constrain, Rename, Sqrt
from skabi.networks import CouplingFlow, DeepSet


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def likelihood_with_statistic(beta, sigma, N, rng):
    """The documented hybrid: the log residual sd of a least-squares fit beside the data."""
    out = likelihood(beta, sigma, N, rng)
    design = np.column_stack([np.ones(N), out["x"]])
    resid = out["y"] - design @ np.linalg.lstsq(design, out["y"], rcond=None)[0]
    return {**out, "log_resid_sd": np.log(np.sqrt(resid @ resid / (N - 2)))}


def _adapter(conditions):
    return make_adapter(
        Broadcast("N", to="x"), AsSet(["x", "y"]), Constrain("sigma", lower=0), Sqrt("N"),
        Concatenate(["beta", "sigma"], into="inference_variables"),
        Concatenate(["x", "y"], into="summary_variables"),
        Concatenate(conditions, into="inference_conditions") if len(conditions) > 1
        else Rename(conditions[0], "inference_conditions"))


def _tiny(adapter, summary):
    return AmortizedPosterior(adapter=adapter, inference_network=CouplingFlow(depth=2,
                              subnet_width=16), summary_network=summary, epochs=2,
                              batches_per_epoch=5, batch_size=32, random_state=0)


def test_moment_pooling_estimator_saves_and_loads(tmp_path):
    sim = make_simulator([prior, likelihood], meta_fn=meta)
    est = _tiny(_adapter(["N"]), DeepSet(summary_dim=4, width=16, moment_dim=3)).fit(sim)
    assert est.summary_network_.moments is not None
    data = sim.sample_given({"N": 9}, 3, random_state=0)
    before = est.log_prob(data)
    est.save(tmp_path / "m.skabi")
    loaded = AmortizedPosterior.load(tmp_path / "m.skabi")
    assert loaded.summary_network.moment_dim == 3
    np.testing.assert_allclose(loaded.log_prob(data), before, rtol=1e-5, atol=1e-5)


def test_hand_made_statistic_reaches_the_conditions_for_observed_data():
    """Trained with the statistic in inference_conditions; an observed dataset passes it as
    one value per dataset in the dict form, and the posterior depends on it."""
    sim = make_simulator([prior, likelihood_with_statistic], meta_fn=meta)
    est = _tiny(_adapter(["N", "log_resid_sd"]), DeepSet(summary_dim=4, width=16)).fit(sim)
    rng = np.random.default_rng(0)
    x = rng.normal(size=8)
    y = 1.0 + 2.0 * x + 0.1 * rng.normal(size=8)
    draws = [est.sample({"x": x[None], "y": y[None], "log_resid_sd": np.array([s]), "N": 8},
                        num_samples=50, random_state=0, return_type="numpy")["sigma"]
             for s in (-2.3, 0.5)]
    assert draws[0].shape == (1, 50, 1)
    assert not np.allclose(draws[0], draws[1])
