"""AmortizedModelComparison: posterior model probabilities against the exact ones, the
classifier contract (predict_proba, classes_, cross_val_score, GridSearchCV),
persistence, calibration diagnostics and clear errors."""

import numpy as np
import pytest
from scipy.special import expit

from skabi import AmortizedModelComparison, make_simulator
from skabi.adapters import AsSet, Broadcast, Rename, Sqrt, make_adapter
from skabi.diagnostics import expected_calibration_error
from skabi.model_comparison import ModelMixture, simulate_models
from skabi.networks import DeepSet, DenseHead


def _meta(rng):
    return dict(N=int(rng.integers(5, 21)))


def _zero(N, rng):
    return dict(x=rng.normal(size=(N, 1)))


def _mu(rng):
    return dict(mu=rng.normal())


def _free(mu, N, rng):
    return dict(x=mu + rng.normal(size=(N, 1)))


MODELS = {"M0": make_simulator(_zero, meta_fn=_meta),
          "M1": make_simulator([_mu, _free], meta_fn=_meta)}


def exact_p1(x):
    """P(M1 | x) for mu = 0 against mu ~ N(0, 1), x_i ~ N(mu, 1), equal prior odds."""
    x = np.ravel(x)
    n, s = len(x), x.sum()
    return expit(-0.5 * np.log1p(n) + s ** 2 / (2 * (n + 1)))


def _adapter():
    return make_adapter(Broadcast("N", to="x"), AsSet("x"), Rename("x", "summary_variables"),
                        Sqrt("N"), Rename("N", "inference_conditions"))


def _classifier(**kwargs):
    params = dict(adapter=_adapter(), summary_network=DeepSet(summary_dim=4, width=32),
                  head=DenseHead(width=32), epochs=8, batches_per_epoch=100, random_state=0)
    params.update(kwargs)
    return AmortizedModelComparison(**params)


@pytest.fixture(scope="module")
def fitted():
    return _classifier().fit(MODELS)


@pytest.fixture(scope="module")
def test_set():
    return simulate_models(MODELS, 1000, random_state=1, chunk_size=1)


@pytest.mark.slow
def test_probabilities_match_the_exact_posterior_model_probabilities(fitted, test_set):
    X, y = test_set
    proba = fitted.predict_proba(X)
    exact = np.array([exact_p1(x) for x in X["x"]])
    assert np.mean(np.abs(proba[:, 1] - exact)) < 0.06     # 0.04-0.05 at 4 epochs, seeds 0-2
    assert expected_calibration_error(y, proba, classes=fitted.classes_) < 0.05
    assert fitted.score(X, y) > 0.75                         # the exact rule: 0.80


def test_classifier_contract(fitted, test_set):
    X, y = test_set
    assert fitted.classes_.tolist() == ["M0", "M1"]
    np.testing.assert_allclose(fitted.class_prior_, [0.5, 0.5])
    proba = fitted.predict_proba(X)
    assert proba.shape == (1000, 2) and np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_allclose(np.exp(fitted.predict_log_proba(X)), proba, rtol=1e-6)
    assert set(fitted.predict(X)) <= {"M0", "M1"}
    frame = fitted.predict_proba(X, as_frame=True)
    assert list(frame.columns) == ["M0", "M1"]


def test_another_model_prior_and_bayes_factors_follow_bayes_rule(fitted, test_set):
    X, _ = test_set
    p = fitted.predict_proba(X)
    q = fitted.predict_proba(X, model_prior={"M0": 0.8, "M1": 0.2})
    np.testing.assert_allclose(np.log(q[:, 1] / q[:, 0]),
                               np.log(p[:, 1] / p[:, 0]) + np.log(0.2 / 0.8), atol=1e-6)
    bf = fitted.log_bayes_factors(X)
    np.testing.assert_allclose(bf["M0"], 0)
    np.testing.assert_allclose(bf["M1"], np.log(p[:, 1] / p[:, 0]), atol=1e-6)
    np.testing.assert_allclose(fitted.log_bayes_factors(X, reference="M1")["M0"], -bf["M1"])
    with pytest.raises(ValueError, match="'M2' is not one of the models"):
        fitted.log_bayes_factors(X, reference="M2")


def test_offline_training_and_cross_validation_with_log_loss():
    from sklearn.model_selection import GridSearchCV, cross_val_score

    X, y = simulate_models(MODELS, 1000, random_state=2, chunk_size=50)
    clf = _classifier(epochs=15, batch_size=32, summary_network=DeepSet(summary_dim=4, width=16),
                      head=DenseHead(width=16))
    scores = cross_val_score(clf, X, y, cv=2, scoring="neg_log_loss")
    # a coin: -0.69; the exact probabilities: -0.43; this budget: -0.55 and -0.57
    assert np.all(np.isfinite(scores)) and np.all(scores > -0.65)
    search = GridSearchCV(clf, {"head__width": [4, 16]}, cv=2, scoring="neg_log_loss")
    search.fit(X, y)
    assert set(search.cv_results_["param_head__width"]) == {4, 16}
    np.testing.assert_allclose(search.best_estimator_.class_prior_,
                               np.bincount(y == "M1") / len(y))


def test_arrays_and_numeric_labels():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=300)
    X = rng.normal(size=(300, 4)) + labels[:, None]
    clf = AmortizedModelComparison(head=DenseHead(width=8), epochs=20, batch_size=32,
                                   random_state=0).fit(X, labels)
    assert clf.classes_.tolist() == [0, 1, 2]
    assert clf.predict_proba(X[:5]).shape == (5, 3)
    assert clf.score(X, labels) > 0.7


def test_save_and_load_round_trip(fitted, test_set, tmp_path):
    X, _ = test_set
    fitted.save(tmp_path / "models.skabi")
    loaded = AmortizedModelComparison.load(tmp_path / "models.skabi")
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    assert loaded.classes_.tolist() == ["M0", "M1"]
    np.testing.assert_array_equal(loaded.class_prior_, fitted.class_prior_)


def test_mixture_keeps_the_shared_variables_and_draws_models_from_the_prior():
    mixture = ModelMixture(MODELS, model_prior={"M0": 0.9, "M1": 0.1})
    batch = mixture.sample(2000, random_state=0)
    assert sorted(batch) == ["N", "model_index", "x"]   # mu is M1's alone
    share = np.mean(np.ravel(batch["model_index"]) == 0)
    assert 0.87 < share < 0.93
    again = mixture.sample(2000, random_state=0)
    assert all(np.array_equal(a, b) for a, b in zip(batch["x"], again["x"]))


@pytest.mark.parametrize("models, prior, match", [
    ({"M0": MODELS["M0"]}, None, "at least two models"),
    ({"M0": MODELS["M0"], "M1": lambda: None}, None, r"\['M1'\] are not simulators"),
    (MODELS, {"M0": 0.5}, "a probability to each model"),
    (MODELS, [0.5, 0.6], "summing to 1"),
    (MODELS, [1.0, 0.0], "positive probabilities"),
])
def test_bad_models_and_priors_are_refused_before_training(models, prior, match):
    clf = _classifier(model_prior=prior, epochs=1, batches_per_epoch=1)
    with pytest.raises((ValueError, TypeError), match=match):
        clf.fit(models)
    assert not hasattr(clf, "approximator_")


def test_bad_banks_are_refused_before_training():
    X, y = simulate_models(MODELS, 40, random_state=0)
    clf = _classifier(epochs=1)
    with pytest.raises(ValueError, match="X holds 40 simulations but y 39 labels"):
        clf.fit(X, y[:39])
    with pytest.raises(ValueError, match="one class"):
        clf.fit(X, np.full(40, "M0"))
    with pytest.raises(ValueError, match="for a bank of simulations pass the model"):
        clf.fit(X)
    with pytest.raises(ValueError, match="variable 'model_index'"):
        clf.fit({**X, "model_index": np.zeros(40)}, y)
    clash = make_simulator(lambda rng: dict(x=rng.normal(size=3), model_index=1.0))
    with pytest.raises(ValueError, match="named 'model_index'"):
        clf.fit({"a": clash, "b": clash})


def test_partial_fit_on_other_models_is_refused(fitted):
    import copy

    clf = copy.deepcopy(fitted).set_params(epochs=1, batches_per_epoch=1)
    with pytest.raises(ValueError, match=r"partial_fit got models \['A', 'B'\]"):
        clf.partial_fit({"A": MODELS["M0"], "B": MODELS["M1"]})
    clf.partial_fit(MODELS)
    assert len(clf.history_) == len(fitted.history_) + 1


def test_calibration_error_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    from skabi.diagnostics.plots import model_calibration

    rng = np.random.default_rng(0)
    p1 = rng.uniform(size=4000)
    y = np.where(rng.uniform(size=4000) < p1, "b", "a")
    assert expected_calibration_error(y, np.c_[1 - p1, p1]) < 0.03
    flipped = np.c_[p1, 1 - p1]
    assert expected_calibration_error(y, flipped) > 0.3
    with pytest.raises(ValueError, match="3 columns but there are 2 models"):
        expected_calibration_error(y, np.c_[p1, p1, p1])
    fig = model_calibration(y, np.c_[1 - p1, p1])
    assert "ECE" in fig.axes[0].get_title()


def test_validation_simulations_as_a_number_a_share_or_labelled_data():
    X, y = simulate_models(MODELS, 300, random_state=3, chunk_size=50)
    small = dict(epochs=2, batch_size=32, summary_network=DeepSet(summary_dim=4, width=8),
                 head=DenseHead(width=8))
    clf = _classifier(validation_sims=0.2, **small).fit(X, y)
    assert clf.history_["val_loss"].notna().all() and clf.n_simulations_ == 2 * 240
    X_val, y_val = simulate_models(MODELS, 64, random_state=4, chunk_size=64)
    clf = _classifier(validation_sims=(X_val, y_val), **small).fit(X, y)
    assert clf.history_["val_loss"].notna().all()
    online = _classifier(validation_sims=64, batches_per_epoch=3, **small).fit(MODELS)
    assert online.history_["val_loss"].notna().all()
    with pytest.raises(ValueError, match=r"models \['M2'\] that are not among"):
        _classifier(validation_sims=(X_val, np.where(y_val == "M0", "M2", y_val)),
                    **small).fit(X, y)
