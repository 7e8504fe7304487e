"""AmortizedPointEstimator: Bayes estimators against the exact posterior, the regressor
contract (predict, score, GridSearchCV), persistence and clear errors."""

import numpy as np
import pytest
from models import Gaussian, gaussian_adapter, tutorial_adapter

from skabi import AmortizedPointEstimator, AmortizedPosterior, make_simulator
from skabi.exceptions import LoadError
from skabi.networks import DeepSet, DenseHead


def _estimator(**kwargs):
    params = dict(adapter=gaussian_adapter(), estimands=("mean", 0.05, 0.95),
                  summary_network=DeepSet(summary_dim=4, width=32), head=DenseHead(width=32),
                  epochs=6, batches_per_epoch=100, batch_size=64, random_state=0)
    params.update(kwargs)
    return AmortizedPointEstimator(**params)


@pytest.fixture(scope="module")
def fitted():
    return _estimator().fit(Gaussian(n_obs=20, dim=2))


@pytest.fixture(scope="module")
def test_set():
    return Gaussian(n_obs=20, dim=2).sample(2000, random_state=123)


@pytest.mark.slow
def test_mean_and_quantiles_match_the_exact_posterior(fitted, test_set):
    mean, sd = Gaussian(n_obs=20, dim=2).posterior(test_set["x"])
    rmse = np.sqrt(np.mean((fitted.predict(test_set) - mean) ** 2, axis=0)) / sd
    assert np.all(rmse < 0.2), rmse        # 0.10-0.13 on seeds 0-2
    q = fitted.predict_quantiles(test_set, [0.05, 0.95])
    cover = np.mean((test_set["theta"] > q[:, 0]) & (test_set["theta"] < q[:, 1]), axis=0)
    assert np.all((cover > 0.86) & (cover < 0.94)), cover   # 0.89-0.91 on seeds 0-2
    exact_q95 = mean + 1.6449 * sd
    assert np.sqrt(np.mean((q[:, 1] - exact_q95) ** 2)) < 0.3 * sd
    assert fitted.score(test_set) > 0.9


def test_outputs_shapes_and_names(fitted, test_set):
    data = {"x": test_set["x"][:5]}
    assert fitted.predict(data).shape == (5, 2)
    assert fitted.predict_quantiles(data, [0.05, 0.95]).shape == (5, 2, 2)
    assert fitted.predict_quantiles(data, 0.95).shape == (5, 2)
    assert fitted.target_names_ == ["theta[0]", "theta[1]"]
    assert fitted.estimand_labels_ == ["mean", "q0.05", "q0.95"]
    frame = fitted.predict_frame(data)
    assert frame.shape == (5, 6) and list(frame.columns.names) == ["estimand", "target"]
    np.testing.assert_allclose(frame["mean"].to_numpy(), fitted.predict(data))


def test_quantiles_never_cross_whatever_the_order_of_the_estimands():
    est = _estimator(estimands=(0.9, "median", 0.1), epochs=1, batches_per_epoch=3)
    est.fit(Gaussian(n_obs=5))
    q = est.predict_quantiles(Gaussian(n_obs=5).sample(200, random_state=1), [0.1, 0.5, 0.9])
    assert np.all(np.diff(q, axis=1) >= 0)   # barely trained, still ordered
    assert est.estimand_labels_ == ["q0.9", "median", "q0.1"]


def test_quantiles_follow_a_monotone_transform_of_the_adapter(regression_functions):
    prior, likelihood, meta = regression_functions
    est = AmortizedPointEstimator(adapter=tutorial_adapter(), estimands=(0.1, 0.5, 0.9),
                                  summary_network=DeepSet(summary_dim=4, width=16),
                                  head=DenseHead(width=16), epochs=1, batches_per_epoch=5,
                                  random_state=0)
    simulator = make_simulator([prior, likelihood], meta_fn=meta)
    est.fit(simulator)
    data = simulator.sample(20, random_state=3)
    assert est.target_names_ == ["beta[0]", "beta[1]", "sigma"]
    q = est.predict_quantiles(data, [0.1, 0.5, 0.9])
    assert q.shape == (20, 3, 3) and np.all(q[..., 2] > 0)   # sigma through Constrain


def test_an_untrained_quantile_is_refused_naming_the_trained_ones(fitted, test_set):
    with pytest.raises(ValueError, match=r"\[0.25\] were not trained.*\[0.05, 0.95\]"):
        fitted.predict_quantiles(test_set, 0.25)


@pytest.mark.parametrize("estimands, match", [
    (("mode",), "'mode' is neither"), ((1.5,), "1.5 is neither"), ((), "non-empty"),
    (("median", 0.5), "twice"), (("mean", "mean"), "twice"), ((True,), "True is neither")])
def test_bad_estimands_are_refused_before_training(estimands, match):
    est = _estimator(estimands=estimands, epochs=1, batches_per_epoch=1)
    with pytest.raises(ValueError, match=match):
        est.fit(Gaussian(n_obs=5))
    assert not hasattr(est, "approximator_")


def test_a_failed_refit_leaves_the_fitted_estimator_as_it_was(fitted, test_set):
    import copy

    est = copy.deepcopy(fitted)
    before = est.predict({"x": test_set["x"][:10]})
    est.set_params(estimands=("mode",))
    with pytest.raises(ValueError):
        est.fit(Gaussian(n_obs=20, dim=2))
    np.testing.assert_array_equal(est.predict({"x": test_set["x"][:10]}), before)


def test_an_adapter_that_routes_no_data_is_an_error():
    from skabi.adapters import Rename, make_adapter

    est = _estimator(adapter=make_adapter(Rename("theta", "inference_variables")),
                     summary_network=None, epochs=1, batches_per_epoch=1)
    with pytest.raises(ValueError, match="routes no data into the networks"):
        est.fit(Gaussian(n_obs=5))


def test_save_and_load_round_trip(fitted, test_set, tmp_path):
    path = tmp_path / "point.skabi"
    fitted.save(path)
    loaded = AmortizedPointEstimator.load(path)
    data = {"x": test_set["x"][:50]}
    np.testing.assert_array_equal(loaded.predict_frame(data).to_numpy(),
                                  fitted.predict_frame(data).to_numpy())
    assert list(loaded.estimands) == ["mean", 0.05, 0.95]
    assert loaded.target_names_ == fitted.target_names_
    with pytest.raises(LoadError, match="AmortizedPointEstimator, not a AmortizedPosterior"):
        AmortizedPosterior.load(path)


def test_arrays_grid_search_and_r2_score():
    from sklearn.model_selection import GridSearchCV

    bank = Gaussian(n_obs=1, dim=1).sample(600, random_state=0)
    X, y = bank["x"][:, 0, :], bank["theta"][:, 0]
    est = AmortizedPointEstimator(head=DenseHead(width=8), epochs=10, batch_size=32,
                                  random_state=0)
    search = GridSearchCV(est, {"head__width": [4, 16]}, cv=2).fit(X, y)
    assert set(search.cv_results_["param_head__width"]) == {4, 16}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    best = search.best_estimator_
    assert best.predict(X[:7]).shape == (7,)      # as y: 1-D
    # R^2 against the exact posterior mean x / 2: the best a regressor can do is 0.5
    assert 0.3 < best.score(X, y) < 0.6
