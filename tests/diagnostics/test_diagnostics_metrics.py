"""Coverage, contraction, z-score, RMSE and C2ST against hand-computed values."""

import numpy as np
import pandas as pd
import pytest

from skabi.diagnostics import (
    c2st,
    expected_coverage,
    posterior_contraction,
    posterior_z_score,
    root_mean_squared_error,
)


@pytest.fixture
def constructed():
    """Two datasets, one scalar and one 2-vector parameter, values easy to check by hand."""
    a = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 0.0, 2.0, 2.0, 1.0]])  # (2, 5)
    estimates = {"a": a, "b": np.stack([a, 2 * a], axis=-1)}  # b: (2, 5, 2)
    targets = {"a": np.array([1.0, 3.0]), "b": np.array([[1.0, 0.0], [3.0, 4.0]])}
    return estimates, targets


def test_z_score_by_hand(constructed):
    estimates, targets = constructed
    z = posterior_z_score(estimates=estimates, targets=targets)
    # dataset 0: mean 3, sd sqrt(2.5); dataset 1: mean 1, sd 1
    np.testing.assert_allclose(z["a"], [(3 - 1) / np.sqrt(2.5), (1 - 3) / 1.0])
    np.testing.assert_allclose(z["b[1]"], [(6 - 0) / (2 * np.sqrt(2.5)), (2 - 4) / 2.0])
    assert list(z.columns) == ["a", "b[0]", "b[1]"]
    summary = posterior_z_score(estimates=estimates, targets=targets, summary=True)
    np.testing.assert_allclose(summary["a"], np.median(np.abs(z["a"])))


def test_contraction_by_hand(constructed):
    estimates, targets = constructed
    c = posterior_contraction(estimates=estimates, targets=targets)
    prior_var_a = np.var([1.0, 3.0], ddof=1)  # 2
    np.testing.assert_allclose(c["a"], [1 - 2.5 / prior_var_a, 1 - 1.0 / prior_var_a])
    explicit = posterior_contraction(estimates=estimates, prior_variance=10.0)
    np.testing.assert_allclose(explicit["a"], [1 - 2.5 / 10, 1 - 1.0 / 10])
    by_var = posterior_contraction(
        estimates=estimates, prior_variance={"a": 10.0, "b": [10.0, 40.0]}
    )
    np.testing.assert_allclose(by_var["b[1]"], [1 - 10 / 40, 1 - 4 / 40])
    with pytest.raises(ValueError, match="prior_variance has shape"):
        posterior_contraction(estimates=estimates, prior_variance=[1.0, 2.0])


def test_exact_gaussian_contraction_and_z(exact_gaussian):
    draws, theta, _ = exact_gaussian
    c = posterior_contraction(estimates={"t": draws}, prior_variance=1.0, summary=True)
    assert c["t"] == pytest.approx(1 - 1 / 11, abs=0.02)
    z = posterior_z_score(estimates={"t": draws}, targets={"t": theta})
    assert z["t"].std() == pytest.approx(1.0, abs=0.1)
    assert z["t"].abs().median() == pytest.approx(0.674, abs=0.08)


def test_coverage_of_exact_draws_is_nominal(exact_gaussian, gaussian):
    draws, theta, _ = exact_gaussian
    cov = expected_coverage(estimates={"t": draws}, targets={"t": theta})
    levels = cov.columns.to_numpy()
    np.testing.assert_allclose(levels, [0.5, 0.8, 0.9, 0.95])
    se = np.sqrt(levels * (1 - levels) / 500)
    assert np.all(np.abs(cov.loc["t"].to_numpy() - levels) < 3.5 * se)
    over, theta_o, _ = gaussian(500, 200, seed=1, scale=0.5)
    low = expected_coverage(estimates={"t": over}, targets={"t": theta_o}, levels=[0.9])
    assert low.loc["t", 0.9] < 0.7
    with pytest.raises(ValueError, match="levels"):
        expected_coverage(estimates={"t": draws}, targets={"t": theta}, levels=[1.5])


def test_rmse_normalisations(constructed):
    estimates, targets = constructed
    err = np.array([3 - 1, 1 - 3])  # posterior mean minus truth for "a"
    raw = root_mean_squared_error(estimates=estimates, targets=targets, normalize=None)
    np.testing.assert_allclose(raw["a"], np.sqrt(np.mean(err**2)))
    by_range = root_mean_squared_error(estimates=estimates, targets=targets)
    np.testing.assert_allclose(by_range["a"], 2.0 / 2.0)
    by_sd = root_mean_squared_error(estimates=estimates, targets=targets, normalize="sd")
    np.testing.assert_allclose(by_sd["a"], 2.0 / np.std([1.0, 3.0], ddof=1))
    assert isinstance(by_sd, pd.Series) and by_range.name == "nrmse_range"


def test_c2st_same_distribution_is_chance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(1, 500, 2))
    b = rng.normal(size=(1, 500, 2))
    acc = c2st(estimates={"t": a}, references={"t": b})
    assert acc.index.name == "dataset"
    assert 0.4 <= acc[0] <= 0.6


def test_c2st_different_distributions_are_separated():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(500, 2))
    b = rng.normal(loc=3.0, size=(500, 2))
    assert c2st(a, b)[0] > 0.9


def test_c2st_accepts_containers_and_custom_classifiers(regression_inputs):
    from sklearn.ensemble import RandomForestClassifier

    from skabi._arviz import to_arviz

    estimates, _ = regression_inputs
    rng = np.random.default_rng(2)
    shifted = {k: v + 5 + 0.01 * rng.normal(size=v.shape) for k, v in estimates.items()}
    acc = c2st(to_arviz(estimates), to_arviz(shifted), datasets=[0, 3],
               classifier=RandomForestClassifier(n_estimators=20, random_state=0), cv=3)
    assert list(acc.index) == [0, 3]
    assert (acc > 0.9).all()
