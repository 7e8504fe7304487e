"""Datasets of different sizes: padded by AsSet / AsTimeSeries with a mask, end to end."""

import numpy as np
import pytest
import torch

from models import Gaussian
from skabi import AmortizedPosterior, make_adapter
from skabi.adapters import AsSet, AsTimeSeries, Rename
from skabi.bank import SimulationBank
from skabi.exceptions import ShapeError
from skabi.networks import CouplingFlow, DeepSet, SetTransformer, TimeSeriesNetwork

SUMMARIES = {
    "deepset": (AsSet, DeepSet(summary_dim=4, width=16, pooling="mean+max")),
    "settransformer": (AsSet, SetTransformer(summary_dim=4, embed_dim=8, num_heads=2)),
    "timeseries": (AsTimeSeries, TimeSeriesNetwork(summary_dim=4, filters=8, hidden_size=8)),
}


def _estimator(step, summary):
    adapter = make_adapter(step("x"), Rename("theta", "inference_variables"),
                           Rename("x", "summary_variables"))
    return AmortizedPosterior(adapter=adapter,
                              inference_network=CouplingFlow(depth=2, subnet_width=16),
                              summary_network=summary, epochs=1, batches_per_epoch=5,
                              batch_size=32, pilot_size=64, random_state=0)


@pytest.fixture(scope="module", params=sorted(SUMMARIES))
def fitted(request):
    step, summary = SUMMARIES[request.param]
    return _estimator(step, summary).fit(Gaussian(n_obs=12))


def test_padded_dataset_gets_the_draws_and_density_it_gets_alone(fitted):
    rng = np.random.default_rng(1)
    short, full = rng.normal(size=(5, 2)), rng.normal(size=(12, 2))
    theta = rng.normal(size=(2, 2))
    # the short dataset first: its draws use the first noise of the generator either way
    both = fitted.sample([{"x": short}, {"x": full}], 200, random_state=3, return_type="numpy")
    alone = fitted.sample([{"x": short}], 200, random_state=3, return_type="numpy")
    assert both["theta"].shape == (2, 200, 2)
    np.testing.assert_allclose(both["theta"][0], alone["theta"][0], atol=1e-4)
    joint = fitted.log_prob([{"x": short, "theta": theta[0]}, {"x": full, "theta": theta[1]}])
    single = [fitted.log_prob({"x": short[None], "theta": theta[:1]})[0],
              fitted.log_prob({"x": full[None], "theta": theta[1:]})[0]]
    np.testing.assert_allclose(joint, single, rtol=1e-5, atol=1e-5)


def test_padding_changes_nothing_but_the_padding(fitted):
    # the same summaries whatever the longest dataset of the batch is
    rng = np.random.default_rng(2)
    data = [rng.normal(size=(n, 2)) for n in (3, 7, 12)]
    roles = fitted.adapter_.transform({"x": data})
    assert roles["summary_variables"].shape == (3, 12, 2)
    assert roles["summary_mask"].sum(axis=1).tolist() == [3, 7, 12]
    assert np.all(roles["summary_variables"][0, 3:] == 0)


def test_fit_on_a_bank_of_datasets_of_different_sizes():
    rng = np.random.default_rng(0)
    sims = []
    for _ in range(96):
        theta = rng.normal(size=2)
        sims.append({"theta": theta, "x": theta + rng.normal(size=(int(rng.integers(3, 15)), 2))})
    bank = SimulationBank({"theta": np.stack([s["theta"] for s in sims]),
                           "x": [s["x"] for s in sims]})
    assert len(bank[:10]) == 10 and isinstance(bank[:10].to_dict()["x"], list)
    est = _estimator(AsSet, DeepSet(summary_dim=4, width=16)).fit(sims)
    assert np.isfinite(est.history_["loss"]).all() and est.n_simulations_ == 96 - 10  # a tenth held out
    # the standardization of the set features saw real elements only, not the padding
    real = np.concatenate([s["x"] for s in sims])
    model = est.approximator_
    np.testing.assert_allclose(model.feat_mean.numpy(), real.mean(0), atol=0.35)
    assert np.all(np.abs(model.feat_mean.numpy()) < 1.0)
    assert np.isfinite(est.score(bank))


def test_sets_of_different_sizes_in_one_set_must_agree():
    step = AsSet(["x", "y"])
    with pytest.raises(ShapeError, match="other sizes"):
        step.fit_transform({"x": [np.ones(3), np.ones(4)], "y": [np.ones(4), np.ones(4)]})


def test_other_steps_name_the_ragged_variable():
    from skabi.adapters import Standardize

    with pytest.raises(ShapeError, match="'x'.*different sizes.*AsSet"):
        Standardize("x").fit({"x": [np.ones(3), np.ones(4)]})


def test_mask_reaches_the_summary_network(fitted):
    seen = []
    net = fitted.approximator_.summary_network
    handle = net.register_forward_hook(lambda mod, args, out: seen.append(args))
    try:
        fitted.sample([{"x": np.zeros((4, 2))}, {"x": np.zeros((6, 2))}], 5,
                      return_type="numpy")
    finally:
        handle.remove()
    x, mask = seen[0]
    assert mask.dtype == torch.bool and mask.sum(1).tolist() == [4, 6]


def test_elementwise_steps_take_ragged_data_and_standardize_skips_padding():
    from skabi.adapters import Log, Standardize

    adapter = make_adapter(Log("x"), AsSet("x"), Standardize("x"),
                           Rename("x", "summary_variables"), Rename("theta", "inference_variables"))
    batch = {"x": [np.full(3, 5.0), np.full(5, 5.0)], "theta": np.zeros((2, 1))}
    out = adapter.fit_transform(batch)
    np.testing.assert_allclose(adapter.named_steps["standardize"].mean_["x"], [np.log(5.0)])
    assert out["summary_mask"].sum(axis=1).tolist() == [3, 5]
    np.testing.assert_allclose(out["summary_variables"][out["summary_mask"]], 0.0, atol=1e-6)


def test_a_ragged_role_without_padding_says_to_pad():
    adapter = make_adapter(Rename("x", "summary_variables"), Rename("theta", "inference_variables"))
    with pytest.raises(ShapeError, match="'summary_variables' holds datasets of different sizes"
                                         ".*AsSet"):
        adapter.fit({"x": [np.ones((2, 1)), np.ones((3, 1))], "theta": np.zeros((2, 1))})


def test_lists_of_arrays_of_one_shape_are_stacked():
    est = _estimator(AsSet, DeepSet(summary_dim=4, width=16))
    sims = Gaussian(n_obs=6).sample(64, random_state=0)
    est.fit({"x": list(sims["x"]), "theta": sims["theta"]})
    assert est.role_shapes_["summary_variables"] == 2 and np.isfinite(est.history_["loss"]).all()
