"""``Constrain(method="select")``: a fit on a bank trains with the logit map and with
rejection, and keeps whichever gives its validation simulations the higher log density on
the user's scale; where the fit cannot choose it is the map."""

import numpy as np
import pytest
from sklearn.base import clone

from skabi import AmortizedPointEstimator, AmortizedPosterior
from skabi.adapters import Constrain, Rename, make_adapter
from skabi.networks import CouplingFlow
from skabi.training import fitting

EPOCHS = 12


def _bank(n, rng):
    """theta ~ U(0, 1), x = theta + N(0, 0.3^2): posteriors pile up at the bounds."""
    theta = rng.uniform(size=(n, 1))
    return {"theta": theta, "x": theta + 0.3 * rng.normal(size=(n, 1))}


def _estimator(method, **kwargs):
    adapter = make_adapter(Constrain("theta", lower=0, upper=1, method=method),
                           Rename("theta", "inference_variables"),
                           Rename("x", "inference_conditions"))
    return AmortizedPosterior(adapter=adapter,
                              inference_network=CouplingFlow(transform="spline", depth=2,
                                                             subnet_width=32),
                              epochs=EPOCHS, random_state=0, **kwargs)


def _kept(est):
    return est.adapter_.named_steps["constrain"].method


@pytest.fixture(scope="module")
def fits():
    bank = _bank(1500, np.random.default_rng(3))
    return bank, {m: _estimator(m).fit(bank) for m in ("select", "map", "reject")}


def test_select_keeps_the_candidate_with_the_higher_validation_density(fits):
    bank, est = fits
    settings, _ = fitting.settings_and_source(est["select"].get_params(deep=False), bank)
    score = {m: fitting.user_log_density(est[m]._fit_state(), settings.validation_sims)
             for m in ("map", "reject")}
    # the two candidates are far apart here, so the test says which was kept and why
    assert abs(score["map"] - score["reject"]) > 1e-3, score
    assert _kept(est["select"]) == max(score, key=score.get)
    # the kept candidate is the fit of that method alone, from the same seed
    x = {"x": np.array([[0.1], [0.9]])}
    np.testing.assert_array_equal(
        est["select"].sample(x, 50, return_type="numpy", random_state=1)["theta"],
        est[_kept(est["select"])].sample(x, 50, return_type="numpy", random_state=1)["theta"])


def test_the_parameter_is_left_as_given_and_a_clone_chooses_again(fits):
    _, est = fits
    assert est["select"].adapter.named_steps["constrain"].method == "select"
    assert clone(est["select"]).adapter.named_steps["constrain"].method == "select"
    assert est["select"].adapter_.rejects_draws == (_kept(est["select"]) == "reject")


def test_the_user_scale_density_accounts_for_the_map_and_the_share_inside(fits):
    """The user-scale density of one fit is its ``score``: ``log_prob`` with the logit's
    log-det (map) or divided by the share inside (reject)."""
    bank, est = fits
    test = _bank(300, np.random.default_rng(9))
    for method in ("map", "reject"):
        assert np.isclose(fitting.user_log_density(est[method]._fit_state(), test),
                          est[method].score(test), rtol=0, atol=1e-9), method


def test_where_the_fit_cannot_choose_select_is_the_map():
    bank = _bank(400, np.random.default_rng(4))
    # no early stopping: no validation loss to stop by, so no choice
    est = _estimator("select", early_stopping=False, validation_sims=None).fit(bank)
    assert _kept(est) == "map"
    # partial_fit goes on with one training
    assert _kept(_estimator("select").partial_fit(bank)) == "map"
    # a point estimator has no density to compare
    adapter = make_adapter(Constrain("theta", lower=0, upper=1, method="select"),
                           Rename("theta", "inference_variables"),
                           Rename("x", "inference_conditions"))
    point = AmortizedPointEstimator(adapter=adapter, epochs=2, random_state=0).fit(bank)
    assert point.adapter_.named_steps["constrain"].method == "map"
