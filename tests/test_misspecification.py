"""Misspecification detection in summary space (issue 15; Schmitt et al. 2023)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from models import Gaussian, tiny_estimator  # noqa: E402
from skabi.diagnostics import mmd, summary_mmd_test  # noqa: E402
from skabi.diagnostics import plots  # noqa: E402


def test_mmd_test_is_calibrated_and_has_power_on_known_summaries():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(400, 2))
    p_null = [summary_mmd_test(rng.normal(size=(3, 2)), reference, n_null=200,
                               random_state=i).p_value for i in range(200)]
    rate = np.mean(np.array(p_null) <= 0.05)
    assert 0.01 <= rate <= 0.10, rate
    p_shift = [summary_mmd_test(rng.normal(size=(3, 2)) + 2.5, reference, n_null=200,
                                random_state=i).p_value for i in range(50)]
    assert np.mean(np.array(p_shift) <= 0.05) >= 0.9


def test_mmd_test_errors_name_the_problem():
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="same d"):
        summary_mmd_test(rng.normal(size=(3, 2)), rng.normal(size=(100, 3)))
    with pytest.raises(ValueError, match="needs at least 40"):
        summary_mmd_test(rng.normal(size=(10, 2)), rng.normal(size=(30, 2)))
    with pytest.raises(ValueError, match="NaN"):
        summary_mmd_test(np.full((1, 2), np.nan), rng.normal(size=(100, 2)))
    assert mmd(np.zeros((3, 2)), np.zeros((4, 2))) == 0.0


TRAIN = dict(epochs=4, batches_per_epoch=50, learning_rate=5e-3)


@pytest.fixture(scope="module")
def penalised():
    return tiny_estimator(summary_mmd_weight=1.0, **TRAIN).fit(Gaussian())


@pytest.mark.slow
def test_penalty_pulls_summaries_toward_a_unit_gaussian(penalised):
    plain = tiny_estimator(**TRAIN).fit(Gaussian())
    sims = Gaussian().sample(500, random_state=7)
    normal = np.random.default_rng(0).normal(size=(500, 4))
    assert mmd(penalised.summaries(sims), normal) < 0.7 * mmd(plain.summaries(sims), normal)


@pytest.mark.slow
def test_misspecification_test_accepts_the_model_and_rejects_shifted_data(penalised):
    sim = Gaussian()
    ok = penalised.misspecification_test(sim.sample(5, random_state=11), sim,
                                         num_reference=1000, n_null=200, random_state=0)
    assert not ok.reject(0.05)
    bad_data = sim.sample(5, random_state=12)
    bad_data["x"] = bad_data["x"] + 8.0                # far beyond the prior's reach
    bad = penalised.misspecification_test(bad_data, sim, num_reference=1000, n_null=200,
                                          random_state=0)
    assert bad.reject(0.05) and bad.statistic > ok.statistic
    for fig in (plots.mmd_hypothesis_test(bad), plots.summary_space(bad)):
        assert len(fig.axes) == 1
    plt.close("all")
    with pytest.raises(ValueError, match="Pass the simulator"):
        penalised.misspecification_test(bad_data)


def test_penalty_needs_a_summary_network():
    from skabi import AmortizedPosterior, make_adapter
    from skabi.adapters import Rename
    from skabi.networks import CouplingFlow

    def prior(rng):
        return dict(theta=rng.normal(size=1))

    def lik(theta, rng):
        return dict(y=theta + rng.normal(size=1))

    from skabi import make_simulator

    est = AmortizedPosterior(adapter=make_adapter(Rename("theta", "inference_variables"),
                                                  Rename("y", "inference_conditions")),
                             inference_network=CouplingFlow(depth=1, subnet_width=8),
                             summary_mmd_weight=1.0, epochs=1, batches_per_epoch=2,
                             pilot_size=16, batch_size=8, random_state=0)
    with pytest.raises(ValueError, match="no summary network"):
        est.fit(make_simulator([prior, lik]))


def test_save_load_keeps_the_penalty_and_the_summaries(tmp_path):
    from skabi import AmortizedPosterior

    est = tiny_estimator(summary_mmd_weight=0.5, epochs=1, batches_per_epoch=3).fit(Gaussian())
    est.save(tmp_path / "penalised.skabi")
    loaded = AmortizedPosterior.load(tmp_path / "penalised.skabi")
    assert loaded.get_params()["summary_mmd_weight"] == 0.5
    sims = Gaussian().sample(64, random_state=3)
    np.testing.assert_allclose(loaded.summaries(sims), est.summaries(sims), rtol=1e-6)
    observed = {k: v[:2] for k, v in Gaussian().sample(2, random_state=4).items()}
    a = est.misspecification_test(observed, reference=sims, n_null=50, random_state=0)
    b = loaded.misspecification_test(observed, reference=sims, n_null=50, random_state=0)
    assert a.statistic == pytest.approx(b.statistic) and a.p_value == b.p_value
