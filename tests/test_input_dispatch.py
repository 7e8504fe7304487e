"""What fit and sample understand of their inputs: one rule, no silent guesses."""

import warnings

import numpy as np
import pytest
import torch

from models import Gaussian, likelihood, meta, prior, regression_estimator, tiny_estimator
from skabi import AmortizedPosterior, make_adapter, make_simulator
from skabi.adapters import Rename
from skabi.exceptions import ShapeError
from skabi.networks import CouplingFlow, FlowMatching


@pytest.fixture(scope="module")
def regression():
    sim = make_simulator([prior, likelihood], meta_fn=meta)
    return regression_estimator().fit(sim), sim


def test_one_dataset_as_1d_arrays_is_refused_not_read_as_many(regression):
    est, _ = regression
    x, y = np.linspace(-1, 1, 7), np.linspace(0, 2, 7)
    with pytest.raises(ShapeError, match=r"'x' has shape \(7,\).*7 datasets.*x\[None\]"):
        est.sample({"x": x, "y": y, "N": 7}, 10)
    # the spellings that say what is meant work
    one = est.sample({"x": x[None], "y": y[None], "N": 7}, 10, return_type="numpy")
    listed = est.sample([{"x": x, "y": y, "N": 7}], 10, return_type="numpy")
    assert one["beta"].shape == listed["beta"].shape == (1, 10, 2)


def test_meta_contradicting_the_data_is_refused(regression):
    est, sim = regression
    assert est.size_links_ == {"N": [["x", 1], ["y", 1]]}
    data = sim.sample(3, random_state=1)
    n = data["x"].shape[1]
    with pytest.raises(ShapeError, match=rf"N={n + 2}.*'x' has {n} along axis 1"):
        est.sample({"x": data["x"], "y": data["y"]}, 10, meta={"N": n + 2})
    with pytest.raises(ShapeError, match="N=9.*dataset 1"):
        est.sample([{"x": np.zeros(4), "y": np.zeros(4), "N": 4},
                    {"x": np.zeros(6), "y": np.zeros(6), "N": 9}], 10)


def test_datasets_of_different_sizes_with_their_own_n(regression):
    est, _ = regression
    rng = np.random.default_rng(0)
    data = [{"x": rng.normal(size=n), "y": rng.normal(size=n), "N": n} for n in (5, 9, 14)]
    draws = est.sample(data, 20, return_type="numpy")
    assert draws["beta"].shape == (3, 20, 2) and np.all(draws["sigma"] > 0)


def test_an_adapter_that_routes_no_data_warns():
    adapter = make_adapter(Rename("theta", "inference_variables"))
    est = tiny_estimator(adapter=adapter, summary_network=None)
    with pytest.warns(UserWarning, match="routes no data.*learns the prior"):
        est.fit(Gaussian())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny_estimator().fit(Gaussian())   # a working adapter says nothing


def test_log_q_auto_asks_the_fitted_network():
    est = tiny_estimator().fit(Gaussian())
    obs = Gaussian().sample(2, random_state=1)
    est.set_params(inference_network=FlowMatching())   # not refitted: still a coupling flow
    idata = est.sample(obs, 10)
    assert "log_q" in idata.sample_stats
    fm = tiny_estimator(inference_network=FlowMatching(subnet_width=8, steps=4)).fit(Gaussian())
    fm.set_params(inference_network=CouplingFlow())
    assert not hasattr(fm.sample(obs, 10), "sample_stats")


def test_history_has_one_epoch_column_and_a_plain_index():
    est = tiny_estimator().fit(Gaussian())
    frame = est.history_.reset_index()
    assert list(est.history_["epoch"]) == [0, 1] and "epoch" in frame


def test_partial_fit_validates_parameters_on_a_fitted_estimator():
    est = tiny_estimator().partial_fit(Gaussian())
    est.set_params(batch_size=0)
    before = est.approximator_
    with pytest.raises(ValueError, match="batch_size"):
        est.partial_fit(Gaussian())
    assert est.approximator_ is before and len(est.history_) == 1


@pytest.mark.parametrize("n_threads", [1, 2])
def test_threads_are_set_for_the_call_and_restored(n_threads):
    before = torch.get_num_threads()
    seen = []
    est = tiny_estimator(n_threads=n_threads)
    est.fit(Gaussian())
    hook = est.approximator_.summary_network.register_forward_pre_hook(
        lambda *a: seen.append(torch.get_num_threads()))
    est.score(Gaussian().sample(8, random_state=0))
    hook.remove()
    assert seen and set(seen) == {n_threads}
    assert torch.get_num_threads() == before


def test_draws_chunked_on_both_axes_land_where_they_belong(monkeypatch):
    from skabi.training import chunks

    est = tiny_estimator().fit(Gaussian())
    obs = Gaussian().sample(3, random_state=2)
    monkeypatch.setattr(chunks, "CHUNK_ELEMENTS", 14)   # 7 draws of 2 dims per chunk
    idata = est.sample(obs, 30, random_state=0)
    draws = idata.posterior["theta"].values[0]                # (draw, dataset, dim)
    log_q = idata.sample_stats["log_q"].values[0]             # (draw, dataset)
    for d in (0, 2):
        own = est.log_prob({"x": np.repeat(obs["x"][d:d + 1], 30, axis=0),
                            "theta": draws[:, d]})
        np.testing.assert_allclose(log_q[:, d], own, rtol=1e-4, atol=1e-4)


def test_a_list_of_one_dataset_with_a_scalar_parameter(regression):
    est, _ = regression
    rng = np.random.default_rng(3)
    x = rng.normal(size=8)
    one = {"x": x, "y": 1.0 + 0.5 * x, "N": 8, "beta": np.array([1.0, 0.5]), "sigma": 0.3}
    log_q = est.log_prob([one])
    assert log_q.shape == (1,) and np.isfinite(log_q).all()
    same = est.log_prob({"x": x[None], "y": one["y"][None], "N": 8,
                         "beta": one["beta"][None], "sigma": np.array([[0.3]])})
    np.testing.assert_allclose(log_q, same, rtol=1e-6)


def test_one_value_of_n_per_dataset_in_a_dict(regression):
    est, sim = regression
    data = sim.sample(3, random_state=4)
    n = data["x"].shape[1]
    draws = est.sample({"x": data["x"], "y": data["y"], "N": np.full(3, n)}, 10,
                       return_type="numpy")
    assert draws["beta"].shape == (3, 10, 2)


def test_a_file_of_another_estimator_class_is_refused(tmp_path):
    from skabi.exceptions import LoadError

    class Other(AmortizedPosterior):
        pass

    path = tmp_path / "est.skabi"
    tiny_estimator().fit(Gaussian()).save(path)
    with pytest.raises(LoadError, match="holds a AmortizedPosterior, not a Other"):
        Other.load(path)
