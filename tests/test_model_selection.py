"""Grid search and cross-validation on what users have: a simulator, a dict of
simulations, datasets of different sizes (issue 14)."""

import pickle

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from models import Gaussian, gaussian_adapter, likelihood, meta, prior, regression_estimator
from skabi import AmortizedPosterior, make_simulator
from skabi.bank import Batch
from skabi.model_selection import HeldOutSimulations
from skabi.networks import CouplingFlow, DeepSet

GRID = {"summary_network__summary_dim": [2, 4]}


@pytest.fixture
def simulator():
    return make_simulator([prior, likelihood], meta_fn=meta)


def test_a_batch_is_a_dict_that_splits_by_rows():
    batch = Gaussian(n_obs=5).sample(10, random_state=0)
    assert isinstance(batch, Batch) and isinstance(batch, dict) and batch.shape == (10,)
    sub = batch[np.array([1, 4]), ...]
    np.testing.assert_array_equal(sub["theta"], batch["theta"][[1, 4]])
    assert batch[np.arange(10) < 3].shape == (3,) and batch[2:5]["x"].shape == (3, 5, 2)
    assert pickle.loads(pickle.dumps(sub)).shape == (2,)


def test_sample_in_chunks_gives_datasets_of_different_sizes(simulator):
    bank = simulator.sample(100, chunk_size=16, random_state=0)
    sizes = [len(x) for x in bank["x"]]
    assert bank.shape == (100,) and len(set(sizes)) > 1
    np.testing.assert_array_equal(bank["N"].ravel(), sizes)
    rows = bank[np.array([0, 99])]
    assert [len(x) for x in rows["x"]] == [sizes[0], sizes[99]]
    again = simulator.sample(100, chunk_size=16, random_state=0)
    assert all(np.array_equal(a, b) for a, b in zip(bank["y"], again["y"]))


def test_grid_search_with_a_simulator_trains_online_and_scores_one_held_out_set(simulator):
    cv = HeldOutSimulations(128, chunk_size=32, random_state=1)
    search = GridSearchCV(regression_estimator(), GRID, cv=cv)
    search.fit(simulator)
    results = search.cv_results_
    assert np.isfinite(results["mean_test_score"]).all() and len(results["params"]) == 2
    held_out = simulator[[1]]
    assert held_out.shape == (128,) and len({len(x) for x in held_out["x"]}) > 1
    for params, score in zip(results["params"], results["mean_test_score"]):
        again = regression_estimator().set_params(**params).fit(simulator)
        assert again.score(held_out) == pytest.approx(score, rel=1e-6)   # the same set
    assert search.best_estimator_.n_simulations_ == 5 * 32      # refit online
    assert np.isfinite(search.score(held_out))


def test_grid_search_with_a_simulator_in_worker_processes(simulator):
    cv = HeldOutSimulations(64, random_state=0)
    search = GridSearchCV(regression_estimator(), GRID, cv=cv, n_jobs=2).fit(simulator)
    serial = GridSearchCV(regression_estimator(), GRID, cv=cv).fit(simulator)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"], rtol=1e-5)


def test_other_splitters_cannot_split_a_simulator_and_say_why(simulator):
    with pytest.raises(ValueError, match="HeldOutSimulations"):
        GridSearchCV(regression_estimator(), GRID, cv=2, error_score="raise").fit(simulator)
    with pytest.raises(TypeError, match="splits a simulator"):
        next(HeldOutSimulations().split(simulator.sample(10)))
    with pytest.raises(TypeError, match="not a simulator.*simulator.sample"):
        regression_estimator().fit(simulator).score(simulator)


def test_grid_search_and_cross_validation_on_a_dict_bank_with_varying_n(simulator):
    bank = simulator.sample(384, chunk_size=32, random_state=0)   # what sample returns
    search = GridSearchCV(regression_estimator(), GRID, cv=KFold(3, shuffle=True,
                                                                  random_state=0))
    search.fit(bank)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # refit on the whole bank, a tenth of it held out for validation (validation_sims="auto")
    assert search.best_estimator_.n_simulations_ == 384 - 38
    scores = cross_val_score(regression_estimator(), bank, cv=3)
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_a_bank_of_one_n_from_sample_splits_too():
    bank = Gaussian(n_obs=8).sample(192, random_state=0)
    est = AmortizedPosterior(adapter=gaussian_adapter(),
                             inference_network=CouplingFlow(depth=1, subnet_width=8),
                             summary_network=DeepSet(summary_dim=2, width=8), epochs=1,
                             pilot_size=64, random_state=0)
    scores = cross_val_score(est, bank, cv=3)
    assert np.isfinite(scores).all()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_search_on_task_g_picks_the_summary_that_holds_the_sufficient_statistic(seed):
    # theta in R^4, x_n ~ N(theta, I): the sufficient statistic (the mean) has 4 dimensions,
    # so a 1-dimensional summary must lose to an 8-dimensional one
    est = AmortizedPosterior(adapter=gaussian_adapter(),
                             inference_network=CouplingFlow(depth=4, subnet_width=64),
                             summary_network=DeepSet(width=32), epochs=3,
                             batches_per_epoch=100, batch_size=64, random_state=seed)
    search = GridSearchCV(est, {"summary_network__summary_dim": [1, 8]},
                          cv=HeldOutSimulations(500, random_state=seed))
    search.fit(Gaussian(n_obs=50, dim=4))
    low, high = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"summary_network__summary_dim": 8}
    assert high - low > 1.0, (low, high)   # nats per dataset: not a near tie


def test_halving_and_randomized_searches_with_a_simulator(simulator):
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV, RandomizedSearchCV

    cv = HeldOutSimulations(64, random_state=0)
    halving = HalvingGridSearchCV(regression_estimator(), GRID, cv=cv, resource="epochs",
                                  min_resources=1, max_resources=2, factor=2,
                                  return_train_score=False)
    halving.fit(simulator)
    assert list(halving.n_resources_) == [1, 2] and halving.best_estimator_.epochs == 2
    randomized = RandomizedSearchCV(regression_estimator(), GRID, n_iter=2, cv=cv,
                                    random_state=0).fit(simulator)
    assert np.isfinite(randomized.cv_results_["mean_test_score"]).all()


def test_batch_index_edge_cases():
    batch = Batch(theta=np.zeros((4, 2)), N=3)
    with pytest.raises(IndexError, match=r"needs shape \(4,\)"):
        batch[np.array([True, False])]
    assert batch[[]].shape == (0,) and batch[np.int64(-1)].shape == (1,)
    assert isinstance(batch.copy(), Batch) and batch.copy().shape == (4,)


def test_concatenate_batches_of_ragged_regular_and_meta_values():
    from skabi.bank import concatenate_batches
    from skabi.exceptions import MissingKeyError

    a = {"x": [np.zeros(2), np.zeros(3)], "s": np.ones(2), "N": 4}
    b = {"x": np.ones((2, 3)), "s": np.ones((2, 1)), "N": np.array([[5], [6]])}
    both = concatenate_batches([a, b])
    assert [len(x) for x in both["x"]] == [2, 3, 3, 3] and both["s"].shape == (4, 1)
    assert both["N"].ravel().tolist() == [4, 4, 5, 6]
    with pytest.raises(MissingKeyError, match="Batch 1 has variables"):
        concatenate_batches([a, {"x": np.ones((2, 3))}])
    with pytest.raises(ValueError, match="no array with a leading axis"):
        concatenate_batches([{"N": 3}])


def test_a_plain_dict_splits_once_wrapped_in_a_batch():
    plain = dict(Gaussian(n_obs=6).sample(96, random_state=0))
    est = regression_estimator(adapter=gaussian_adapter(), epochs=1)
    scores = cross_val_score(est, Batch(plain), cv=3)
    assert np.isfinite(scores).all()


def test_held_out_simulations_are_not_the_training_simulations(simulator):
    cv = HeldOutSimulations(64, random_state=0)
    next(cv.split(simulator))
    pilot = simulator.sample(64, random_state=np.random.default_rng(0))
    assert not np.isin(simulator[[1]]["sigma"], pilot["sigma"]).any()


def test_a_simulator_subclass_may_have_its_own_shape():
    class Images(Gaussian):
        def __init__(self):
            super().__init__()
            self.shape = (28, 28)

    assert Images().shape == (28, 28) and Images().sample(2, random_state=0).shape == (2,)
