"""A posterior that keeps a box prior's bounds by rejection (``Constrain(method="reject")``):
every draw inside, the density of the accepted draws normalised, the draws distributed by
it, the choice kept by save/load, and a clear stop where almost nothing is accepted. And
the choice between the map and rejection: by a grid search, or by the fit itself
(``method="select"``), by densities on the user's scale."""

import numpy as np
import pytest

from sklearn.base import clone

from skabi import AmortizedPointEstimator, AmortizedPosterior
from skabi.adapters import Constrain, Rename, make_adapter
from skabi.exceptions import SupportError
from skabi.networks import CouplingFlow
from skabi.training import fitting, inference

SELECT_EPOCHS = 12
GRID = np.linspace(0.0005, 0.9995, 1000)          # midpoints of 1000 cells of [0, 1]
X_OBS = {"x": np.array([[-0.2], [0.5], [1.1]])}  # two near a bound, one in the middle


def _bank(n, rng):
    """theta ~ U(0, 1), x = theta + N(0, 0.3^2): posteriors pile up at the bounds."""
    theta = rng.uniform(size=(n, 1))
    return {"theta": theta, "x": theta + 0.3 * rng.normal(size=(n, 1))}


def _estimator(method, **kwargs):
    """A small spline flow on :func:`_bank`, its bounds kept by ``method``."""
    adapter = make_adapter(Constrain("theta", lower=0, upper=1, method=method),
                           Rename("theta", "inference_variables"),
                           Rename("x", "inference_conditions"))
    return AmortizedPosterior(adapter=adapter,
                              inference_network=CouplingFlow(transform="spline", depth=2,
                                                             subnet_width=32),
                              random_state=0, **kwargs)


@pytest.fixture(scope="module")
def fitted():
    return _estimator("reject", epochs=15).fit(_bank(2000, np.random.default_rng(0)))


def _density_on_grid(est, i):
    x = np.full((GRID.size, 1), X_OBS["x"][i, 0])
    return np.exp(est.log_prob({"theta": GRID[:, None], "x": x}))


def test_the_network_puts_mass_outside_so_rejection_is_at_work(fitted):
    share = inference.acceptance(fitted._fit_state(), fitted.adapter_.transform(X_OBS),
                                 4000, np.random.default_rng(0))
    assert share[0] < 0.95 and share[2] < 0.95, share


def test_every_draw_lies_inside_and_each_dataset_gets_all_its_draws(fitted):
    draws = fitted.sample(X_OBS, 700, return_type="numpy", random_state=1)["theta"]
    assert draws.shape == (3, 700, 1)
    assert np.all((draws >= 0) & (draws <= 1))


def test_the_density_of_the_accepted_draws_integrates_to_one(fitted):
    for i in range(3):
        assert abs(_density_on_grid(fitted, i).mean() - 1) < 0.03, i


def test_the_draws_follow_that_density(fitted):
    draws = fitted.sample(X_OBS, 3000, return_type="numpy", random_state=2)["theta"][..., 0]
    for i in range(3):
        dens = _density_on_grid(fitted, i)
        cdf = np.cumsum(dens) / dens.sum()
        edges = np.searchsorted(np.sort(draws[i]), GRID + 0.0005, side="right") / draws.shape[1]
        assert np.max(np.abs(edges - cdf)) < 0.04, i      # KS distance (n=3000: 0.025 at 5%)


def test_log_q_of_the_draws_is_their_normalised_log_density(fitted):
    idata = fitted.sample(X_OBS, 200, random_state=3)
    theta = idata.posterior["theta"].values[0]            # (draw, dataset, 1)
    log_q = idata.sample_stats["log_q"].values[0]         # (draw, dataset)
    assert np.all(np.isfinite(log_q))
    for i in range(3):
        lp = fitted.log_prob({"theta": theta[:, i], "x": np.full((200, 1), X_OBS["x"][i, 0])})
        # each side divides by its own estimate of the share inside (1000 draws, se about
        # 0.015 in log); leaving the division out on either side would shift the median
        # by the log share, 0.1-0.3 for the datasets near a bound
        diff = log_q[:, i] - lp
        assert abs(np.median(diff)) < 0.03 and np.max(np.abs(diff)) < 0.1, (i, diff)


def test_draws_repeat_with_the_seed(fitted):
    a = fitted.sample(X_OBS, 50, return_type="numpy", random_state=4)["theta"]
    b = fitted.sample(X_OBS, 50, return_type="numpy", random_state=4)["theta"]
    np.testing.assert_array_equal(a, b)


def test_save_and_load_keep_the_rejection(fitted, tmp_path):
    fitted.save(tmp_path / "reject")
    loaded = AmortizedPosterior.load(tmp_path / "reject")
    assert loaded.adapter_.rejects_draws
    np.testing.assert_array_equal(
        loaded.sample(X_OBS, 100, return_type="numpy", random_state=5)["theta"],
        fitted.sample(X_OBS, 100, return_type="numpy", random_state=5)["theta"])


def test_almost_nothing_accepted_stops_with_an_error_naming_the_datasets(fitted, monkeypatch):
    monkeypatch.setattr(inference, "MIN_ACCEPTANCE", 0.945)   # shares 0.92-0.96
    with pytest.raises(SupportError, match=r"inside the bounds of \['constrain'\].*datasets "
                                           r"\[0, 2\]"):
        fitted.sample(X_OBS, 1000, return_type="numpy", random_state=6)


def _exact_mean_log_posterior(bank):
    """Mean log p(theta | x) of :func:`_bank`'s exact posterior: the Gaussian likelihood
    normalised over the box [0, 1]."""
    from scipy.stats import norm

    theta, x = bank["theta"][:, 0], bank["x"][:, 0]
    mass = norm.cdf((1 - x) / 0.3) - norm.cdf(-x / 0.3)
    return float(np.mean(norm.logpdf(x, theta, 0.3) - np.log(mass)))


def test_a_grid_search_chooses_map_or_reject_by_densities_on_the_users_scale():
    """The adapter page's advice, ``GridSearchCV`` over the method: both candidates are
    scored by ``log q(theta | x)`` of the user's theta, so their scores are comparable.
    Scored on the network's scale, the map's would be off by the mean log-det of the
    logit, about -2 nats here."""
    from sklearn.model_selection import GridSearchCV, KFold

    from skabi.bank import Batch

    bank = _bank(2400, np.random.default_rng(7))
    est = _estimator("map", epochs=15)
    search = GridSearchCV(est, {"adapter__constrain__method": ["map", "reject"]},
                          cv=KFold(2, shuffle=True, random_state=0)).fit(Batch(bank))
    scores = search.cv_results_["mean_test_score"]
    exact = _exact_mean_log_posterior(bank)       # the best any q can do, in expectation
    assert np.all(scores < exact + 0.1) and np.all(scores > exact - 0.3), (scores, exact)
    assert search.best_estimator_.adapter_.rejects_draws == (scores[1] > scores[0])


# ---------------------------------------------------------------- method="select"
def _kept(est):
    return est.adapter_.named_steps["constrain"].method


@pytest.fixture(scope="module")
def fits():
    """The three fits of one bank, what the fit with ``"select"`` trained: (method,
    subnet depth) in order, and the user-scale validation density of each it compared."""
    bank = _bank(1500, np.random.default_rng(3))
    trained, compared = [], {}
    initial, density = fitting.initial_state, fitting.user_log_density

    def initial_state(settings, source, **spec):
        trained.append((spec["adapter"].named_steps["constrain"].method,
                        spec["networks"]["inference_network"].subnet_depth))
        return initial(settings, source, **spec)

    def user_log_density(state, validation):
        compared[state.adapter.named_steps["constrain"].method] = density(state, validation)
        return compared[state.adapter.named_steps["constrain"].method]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fitting, "initial_state", initial_state)
        patch.setattr(fitting, "user_log_density", user_log_density)
        select = _estimator("select", epochs=SELECT_EPOCHS).fit(bank)
    est = {m: _estimator(m, epochs=SELECT_EPOCHS).fit(bank) for m in ("map", "reject")}
    return {"select": select, **est}, trained, compared


def test_select_chooses_the_method_at_the_first_depth_then_the_depth(fits):
    """Three trainings, not four: the map and rejection with two hidden layers, compared
    by the density of the validation simulations on the user's scale; then four hidden
    layers with the method kept, compared with its first by the validation loss."""
    est, trained, compared = fits
    assert len(compared) == 2 and abs(compared["map"] - compared["reject"]) > 1e-3, compared
    kept = max(compared, key=compared.get)
    assert trained == [("map", 2), ("reject", 2), (kept, 4)]
    assert _kept(est["select"]) == kept
    # the result is the fit of that method alone (which chose its depth the same way),
    # from the same seed
    assert (est["select"].networks_["inference_network"].subnet_depth
            == est[kept].networks_["inference_network"].subnet_depth)
    x = {"x": np.array([[0.1], [0.9]])}
    np.testing.assert_array_equal(
        est["select"].sample(x, 50, return_type="numpy", random_state=1)["theta"],
        est[kept].sample(x, 50, return_type="numpy", random_state=1)["theta"])


def test_candidates_record_what_was_compared_and_survive_save_and_load(fits, tmp_path):
    """``candidates_`` says what each training set, what it was compared by and which
    was kept, and a saved fit loads with it."""
    import pandas as pd

    est, trained, compared = fits
    rows = est["select"].candidates_
    assert list(rows["choice"]) == [
        f"adapter__constrain__method={m!r}, inference_network__subnet_depth={d}"
        for m, d in trained]
    np.testing.assert_allclose(rows["val_log_density"][:2], [compared[m] for m, _ in trained[:2]])
    assert np.isnan(rows["val_log_density"][2])     # compared by its loss, same scale
    assert rows["kept"].sum() == 1 and (rows["epochs"] > 0).all()
    depth = est["select"].networks_["inference_network"].subnet_depth
    assert rows.loc[rows["kept"], "choice"].item().endswith(f"subnet_depth={depth}")
    # a fit of one method chose its depth only
    assert list(est["map"].candidates_["choice"]) == [
        "inference_network__subnet_depth=2", "inference_network__subnet_depth=4"]
    assert est["map"].candidates_["val_log_density"].isna().all()
    est["select"].save(tmp_path / "select")
    pd.testing.assert_frame_equal(AmortizedPosterior.load(tmp_path / "select").candidates_,
                                  rows)


def test_the_parameter_is_left_as_given_and_a_clone_chooses_again(fits):
    est = fits[0]
    assert est["select"].adapter.named_steps["constrain"].method == "select"
    assert clone(est["select"]).adapter.named_steps["constrain"].method == "select"
    assert est["select"].adapter_.rejects_draws == (_kept(est["select"]) == "reject")


def test_the_user_scale_density_accounts_for_the_map_and_the_share_inside(fits):
    """The user-scale density of one fit is its ``score``: ``log_prob`` with the logit's
    log-det (map) or divided by the share inside (reject)."""
    est = fits[0]
    test = _bank(300, np.random.default_rng(9))
    for method in ("map", "reject"):
        assert np.isclose(fitting.user_log_density(est[method]._fit_state(), test),
                          est[method].score(test), rtol=0, atol=1e-9), method


def test_auto_leaves_a_box_to_the_fit_and_maps_one_bound():
    """The default: ``"auto"`` is ``"select"`` for a box and ``"map"`` for one bound."""
    box = make_adapter(Constrain("theta", lower=0, upper=1), Rename("theta", "a"))
    assert box.named_steps["constrain"].method == "auto"
    assert [a.named_steps["constrain"].method for a in box._method_candidates()] == [
        "map", "reject"]
    one = make_adapter(Constrain("theta", lower=0), Rename("theta", "a"))
    assert one._method_candidates() == [one]


def test_where_the_fit_cannot_choose_select_is_the_map():
    bank = _bank(400, np.random.default_rng(4))
    # no early stopping: no validation loss to stop by, so no choice
    est = _estimator("select", epochs=SELECT_EPOCHS, early_stopping=False,
                     validation_sims=None).fit(bank)
    assert _kept(est) == "map" and est.candidates_.empty   # one training: no rows
    # partial_fit goes on with one training
    assert _kept(_estimator("select", epochs=SELECT_EPOCHS).partial_fit(bank)) == "map"
    # a point estimator has no density to compare
    point = AmortizedPointEstimator(adapter=_estimator("select").adapter, epochs=2,
                                    random_state=0).fit(bank)
    assert point.adapter_.named_steps["constrain"].method == "map"
