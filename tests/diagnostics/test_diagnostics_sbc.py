"""SBC: PIT values, simultaneous ECDF bands and the calibration error."""

import numpy as np
import pytest

from skabi.diagnostics import calibration_error, ecdf_band, pit_values, sbc_ranks
from skabi.diagnostics.sbc import compute_pit, ecdf_test


def _check(draws, theta):
    return calibration_error(estimates={"theta": draws}, targets={"theta": theta})


def test_exact_posterior_is_inside_band(exact_gaussian):
    draws, theta, _ = exact_gaussian
    result = _check(draws, theta)
    row = result.loc["theta"]
    assert bool(row["inside"])
    assert row["error"] <= row["band"]
    assert row["p_value"] > 0.05


@pytest.mark.parametrize(
    "scale, shift", [(0.5, 0.0), (1.0, 0.5), (2.0, 0.0)],
    ids=["overconfident", "biased", "underconfident"],
)
def test_miscalibrated_posteriors_are_flagged(scale, shift, gaussian):
    draws, theta, _ = gaussian(500, 200, seed=1, scale=scale, shift=shift)
    row = _check(draws, theta).loc["theta"]
    assert not bool(row["inside"])
    assert row["error"] > row["band"]
    assert row["p_value"] < 0.01


def test_distance_ranks_flag_overconfidence(exact_gaussian, gaussian):
    draws, theta, _ = exact_gaussian
    ok = calibration_error(estimates={"t": draws}, targets={"t": theta}, rank_type="distance")
    assert bool(ok.loc["t", "inside"])
    bad, theta2, _ = gaussian(500, 200, seed=1, scale=0.5)
    flagged = calibration_error(estimates={"t": bad}, targets={"t": theta2},
                                rank_type="distance")
    assert not bool(flagged.loc["t", "inside"])


def test_band_covers_uniform_ecdf_about_95_percent():
    rng = np.random.default_rng(2024)
    for n in (100, 500):
        pit = rng.uniform(size=(n, 400))
        result = ecdf_test(pit, prob=0.95)
        assert 0.92 <= result["inside"].mean() <= 0.98, n
        assert 0.92 <= (result["error"] <= result["band"]).mean() <= 0.98, n
        # PIT values from discrete ranks, many or few draws (points on the rank grid)
        for n_draws in (1000, 9):
            ranks = rng.integers(0, n_draws + 1, size=(n, 400))
            result = ecdf_test((ranks + 0.5) / (n_draws + 1), prob=0.95, n_draws=n_draws)
            assert 0.92 <= result["inside"].mean() <= 0.98, (n, n_draws)
            assert 0.92 <= (result["error"] <= result["band"]).mean() <= 0.98, (n, n_draws)


def test_family_wise_verdict_keeps_false_alarms_at_five_percent():
    # 300 runs of an exactly calibrated 4-element posterior (uniform truths and draws):
    # per element, some element leaves its band in 1 - 0.95**4 = 19% of runs; family-wise
    # (Bonferroni) in at most 5%.
    rng = np.random.default_rng(7)
    per_element, family = [], []
    for _ in range(300):
        draws, truths = rng.uniform(size=(100, 99, 4)), rng.uniform(size=(100, 4))
        one = calibration_error({"t": draws}, {"t": truths})
        fw = calibration_error({"t": draws}, {"t": truths}, family_wise=True)
        per_element.append(not one["inside"].all())
        family.append(not fw["inside"].all())
        assert np.all(fw["band"] > one["band"])
        np.testing.assert_allclose(fw["p_value"], np.minimum(1, 4 * one["p_value"]))
        # an element outside its widened band has an adjusted p-value of at most 0.05
        assert np.all(fw["inside"] | (fw["p_value"] <= 0.05 + 1e-12))
    assert 0.13 <= np.mean(per_element) <= 0.26
    assert 0.01 <= np.mean(family) <= 0.08
    with pytest.raises(TypeError, match="family_wise"):
        calibration_error({"t": draws}, {"t": truths}, family_wise="yes")


@pytest.mark.slow
def test_family_wise_level_holds_for_many_elements():
    # 100 elements: the widened band is a 1 - 0.05 / 100 quantile, which 5000 simulated
    # ECDFs cannot place (10% of runs failed with them); 100,000 can.
    rng = np.random.default_rng(3)
    fails = 0
    for _ in range(300):
        draws, truths = rng.uniform(size=(100, 99, 100)), rng.uniform(size=(100, 100))
        fails += not calibration_error({"t": draws}, {"t": truths},
                                       family_wise=True)["inside"].all()
    assert 0.02 <= fails / 300 <= 0.08


def test_family_wise_warns_when_the_simulation_budget_is_capped(monkeypatch):
    import skabi.diagnostics.sbc as sbc

    monkeypatch.setattr(sbc, "_MAX_SIMULATIONS", 6000)
    rng = np.random.default_rng(0)
    draws, truths = rng.uniform(size=(50, 19, 10)), rng.uniform(size=(50, 10))
    with pytest.warns(UserWarning, match="10 elements.*approximate"):
        calibration_error({"t": draws}, {"t": truths}, family_wise=True)


def test_band_is_deterministic_and_sensible():
    z, lo, hi = ecdf_band(200)
    z2, lo2, hi2 = ecdf_band(200)
    np.testing.assert_array_equal(lo, lo2)
    assert z.shape == lo.shape == hi.shape == (99,)
    assert np.all(lo <= z) and np.all(z <= hi)
    assert np.all(np.diff(lo) >= 0) and np.all(np.diff(hi) >= 0)
    # simultaneous bands are wider than pointwise 95% bands
    from scipy import stats

    point_lo = stats.binom.ppf(0.025, 200, z) / 200
    assert np.all(lo <= point_lo)
    with pytest.raises(ValueError, match="at least 2"):
        ecdf_band(1)
    z_grid, _, _ = ecdf_band(200, n_draws=9)
    np.testing.assert_allclose(z_grid, np.arange(1, 10) / 10)


def test_pit_offset_and_ties():
    draws = np.array([[[0.0], [1.0], [2.0], [3.0]]])  # (1, 4, 1)
    truths = np.array([[1.0]])
    # one below, one equal -> rank 1.5 -> (1.5 + 0.5) / 5
    np.testing.assert_allclose(compute_pit(draws, truths), [[2.0 / 5]])
    np.testing.assert_allclose(compute_pit(draws, np.array([[-5.0]])), [[0.5 / 5]])
    np.testing.assert_allclose(compute_pit(draws, np.array([[9.0]])), [[4.5 / 5]])
    rand = compute_pit(draws, truths, randomize=True, random_state=0)
    assert 1 / 5 <= rand[0, 0] <= 3 / 5
    with pytest.raises(ValueError, match="rank_type"):
        compute_pit(draws, truths, rank_type="nope")


def test_ranks_and_pit_frames(exact_gaussian):
    draws, theta, _ = exact_gaussian
    ranks = sbc_ranks(estimates={"theta": draws}, targets={"theta": theta})
    pit = pit_values(estimates={"theta": draws}, targets={"theta": theta})
    assert ranks.shape == pit.shape == (500, 1)
    assert ranks.index.name == "dataset"
    np.testing.assert_allclose(pit["theta"], (ranks["theta"] + 0.5) / 201)
    assert 0 < pit.to_numpy().min() and pit.to_numpy().max() < 1


def test_randomized_pit_is_uniform_for_exact_draws(exact_gaussian):
    draws, theta, _ = exact_gaussian
    pit = pit_values(estimates={"theta": draws}, targets={"theta": theta},
                     randomize=True, random_state=0)
    from scipy import stats

    assert stats.kstest(pit["theta"], "uniform").pvalue > 0.01


def test_joint_log_likelihood_test_quantity(exact_gaussian, gaussian):
    """Data-dependent test quantity, as in the BayesFlow tutorial."""
    draws, theta, x = exact_gaussian

    def loglik(params, data):
        return -0.5 * np.sum((data["x"] - params["theta"][:, None]) ** 2, axis=-1)

    tq = {"log p(x | theta)": loglik}
    result = calibration_error(estimates={"theta": draws}, targets={"theta": theta},
                               test_quantities=tq, data={"x": x})
    assert list(result.index) == ["theta", "log p(x | theta)"]
    assert result["inside"].all()
    bad, theta_b, x_b = gaussian(500, 200, seed=1, scale=0.5)
    flagged = calibration_error(estimates={"theta": bad}, targets={"theta": theta_b},
                                test_quantities=tq, data={"x": x_b}, variable_keys=[])
    assert list(flagged.index) == ["log p(x | theta)"]
    assert not flagged["inside"].any()
