import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from models import (Gaussian, likelihood, meta, prior, regression_estimator, tiny_estimator,
                    tutorial_adapter)
from skabi import AmortizedPosterior, make_adapter, make_simulator
from skabi.adapters import Rename
from skabi.exceptions import MissingKeyError, NonFiniteError, ShapeError, TrainingError
from skabi.networks import CouplingFlow, DeepSet


tiny = tiny_estimator
regression_adapter = tutorial_adapter


@pytest.fixture(scope="module")
def fitted():
    return tiny().fit(Gaussian())


@pytest.fixture(scope="module")
def regression():
    sim = make_simulator([prior, likelihood], meta_fn=meta)
    est = regression_estimator(inference_network=CouplingFlow(depth=2, subnet_width=32),
                               summary_network=DeepSet(summary_dim=6, width=32), epochs=2,
                               batches_per_epoch=20, batch_size=64, pilot_size=128,
                               random_state=1).fit(sim)
    return est, sim


def test_fit_sets_fitted_attributes(fitted):
    assert isinstance(fitted.inference_network_, torch.nn.Module)
    assert isinstance(fitted.summary_network_, torch.nn.Module)
    assert list(fitted.history_.columns) == ["epoch", "loss", "val_loss", "lr", "seconds"]
    assert len(fitted.history_) == 2
    assert fitted.n_simulations_ == 2 * 5 * 32
    assert fitted.parameter_names_ == ["theta"]
    assert fitted.role_shapes_ == {"inference_variables": 2, "summary_variables": 2}


def test_sample_numpy_and_arviz_shapes(fitted):
    data = Gaussian().sample(3, random_state=5)
    draws = fitted.sample(data, num_samples=50, return_type="numpy")
    assert draws["theta"].shape == (3, 50, 2)
    idata = fitted.sample(data, num_samples=50)
    post = idata.posterior["theta"]
    assert post.dims == ("chain", "draw", "dataset", "theta_dim_0")
    assert post.shape == (1, 50, 3, 2)
    assert idata.sample_stats["log_q"].shape == (1, 50, 3)
    np.testing.assert_allclose(idata.true_values["theta"].values[0, 0], data["theta"])
    assert idata.observed_data["x"].shape == (3, 20, 2)


def test_same_seed_same_draws_and_refit_reproducible(fitted):
    data = Gaussian().sample(2, random_state=1)
    a = fitted.sample(data, num_samples=20, return_type="numpy")["theta"]
    b = fitted.sample(data, num_samples=20, return_type="numpy")["theta"]
    np.testing.assert_array_equal(a, b)
    c = fitted.sample(data, num_samples=20, random_state=99, return_type="numpy")["theta"]
    assert not np.array_equal(a, c)
    again = tiny().fit(Gaussian()).sample(data, num_samples=20, return_type="numpy")["theta"]
    np.testing.assert_array_equal(a, again)


def test_log_q_matches_log_prob_of_draws(fitted):
    data = Gaussian().sample(2, random_state=2)
    idata = fitted.sample(data, num_samples=5)
    draws = idata.posterior["theta"].values[0]          # (draw, dataset, 2)
    for k in range(2):
        sims = {"theta": draws[:, k], "x": np.repeat(data["x"][k:k + 1], 5, axis=0)}
        np.testing.assert_allclose(fitted.log_prob(sims),
                                   idata.sample_stats["log_q"].values[0, :, k], rtol=1e-4,
                                   atol=1e-4)


def test_score_is_mean_log_prob(fitted):
    data = Gaussian().sample(30, random_state=3)
    assert fitted.log_prob(data).shape == (30,)
    assert fitted.score(data) == pytest.approx(fitted.log_prob(data).mean())


def test_clone_get_set_params_round_trip():
    est = tiny()
    params = est.get_params(deep=True)
    assert "inference_network__depth" in params and "summary_network__summary_dim" in params
    assert any(k.startswith("adapter__") for k in params)
    est.set_params(inference_network__depth=3, summary_network__summary_dim=5)
    cloned = clone(est)
    assert cloned.inference_network.depth == 3 and cloned.summary_network.summary_dim == 5
    assert cloned.inference_network is not est.inference_network
    assert not hasattr(cloned, "approximator_")


def test_regression_sigma_positive_and_dataframe_form(regression):
    est, sim = regression
    val = sim.sample(20, random_state=4)
    draws = est.sample(val, num_samples=500, return_type="numpy")
    assert draws["beta"].shape == (20, 500, 2) and draws["sigma"].shape == (20, 500, 1)
    assert (draws["sigma"] > 0).all()
    df = pd.DataFrame({"x": val["x"][0], "y": val["y"][0]})
    idata = est.sample(df, meta={"N": len(df)}, num_samples=100)
    assert idata.posterior["sigma"].shape == (1, 100, 1)
    assert "true_values" not in idata.groups()


def test_score_includes_adapter_jacobian(regression):
    """log q on the user's scale = log q of the network inputs + log|d z / d theta|."""
    est, sim = regression
    val = sim.sample(10, random_state=6)
    roles, ldj = est.adapter_.transform(val, log_det_jac=True)
    t = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in roles.items()}
    with torch.no_grad():
        net = est.approximator_.log_prob(t).double().numpy()
    # sigma = softplus(z): log|dz/dsigma| = -log(1 - exp(-sigma))
    expected_ldj = -np.log(-np.expm1(-val["sigma"][:, 0]))
    np.testing.assert_allclose(ldj, expected_ldj, rtol=1e-5)
    np.testing.assert_allclose(est.log_prob(val), net + expected_ldj, rtol=1e-4, atol=1e-4)


def test_save_load_round_trip(tmp_path, regression):
    est, sim = regression
    val = sim.sample(5, random_state=8)
    path = tmp_path / "model.skabi"
    est.save(path)
    loaded = AmortizedPosterior.load(path)
    a = est.sample(val, num_samples=50, random_state=3, return_type="numpy")
    b = loaded.sample(val, num_samples=50, random_state=3, return_type="numpy")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_allclose(est.log_prob(val), loaded.log_prob(val), rtol=1e-6)
    pd.testing.assert_frame_equal(est.history_, loaded.history_, check_dtype=False)
    assert loaded.get_params()["inference_network"].depth == 2


def test_load_corrupt_and_foreign_files(tmp_path):
    from skabi.exceptions import LoadError

    bad = tmp_path / "bad.skabi"
    bad.write_bytes(b"not a zip")
    with pytest.raises(LoadError, match="not a readable skabi file"):
        AmortizedPosterior.load(bad)
    import zipfile

    with zipfile.ZipFile(tmp_path / "other.skabi", "w") as zf:
        zf.writestr("config.json", '{"format": "something-else"}')
        zf.writestr("weights.pt", b"")
    with pytest.raises(LoadError, match="not a skabi estimator file"):
        AmortizedPosterior.load(tmp_path / "other.skabi")


def test_pickle_round_trip(fitted):
    data = Gaussian().sample(2, random_state=1)
    copy = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(
        fitted.sample(data, num_samples=10, return_type="numpy")["theta"],
        copy.sample(data, num_samples=10, return_type="numpy")["theta"])


def test_offline_bank_and_arrays():
    bank = Gaussian().sample(256, random_state=0)
    est = tiny(epochs=2).fit(bank)
    # validation_sims="auto": a tenth of the bank (26 simulations) is held out, not trained on
    assert est.n_simulations_ == 2 * (256 - 26)
    assert est.history_["val_loss"].notna().all()
    assert est.sample(Gaussian().sample(2), num_samples=7, return_type="numpy")["theta"].shape == (2, 7, 2)
    flat = tiny(adapter=None, summary_network=None).fit(bank["x"].reshape(256, -1), bank["theta"])
    assert flat.role_shapes_ == {"inference_variables": 2, "inference_conditions": 40}
    assert flat.sample(bank["x"][:3].reshape(3, -1), num_samples=4,
                       return_type="numpy")["theta"].shape == (3, 4, 2)
    assert np.isfinite(flat.score(bank["x"].reshape(256, -1), bank["theta"]))


def test_partial_fit_and_warm_start_continue_history():
    est = tiny(epochs=1)
    est.partial_fit(Gaussian())
    est.partial_fit(Gaussian())
    assert list(est.history_["epoch"]) == [0, 1]
    est.set_params(warm_start=True).fit(Gaussian())
    assert list(est.history_["epoch"]) == [0, 1, 2]


def test_validation_loss_recorded_and_early_stopping_needs_it():
    est = tiny(epochs=3, validation_sims=64).fit(Gaussian())
    assert est.history_["val_loss"].notna().all() and len(est.history_) == 3
    with pytest.raises(ValueError, match="early_stopping=True needs validation_sims"):
        tiny(early_stopping=True).fit(Gaussian())


def test_validation_sims_drawn_in_batches_so_meta_varies(monkeypatch):
    # one batch of 200 would share one N; training sees N vary per batch, so must validation
    sim = make_simulator([prior, likelihood], meta_fn=meta)
    seen = []
    est = AmortizedPosterior(adapter=regression_adapter(),
                             inference_network=CouplingFlow(depth=1, subnet_width=8),
                             summary_network=DeepSet(summary_dim=2, width=8), epochs=1,
                             batches_per_epoch=2, batch_size=32, pilot_size=64,
                             validation_sims=200, random_state=0)
    from skabi.training import fitting

    original = fitting.validation_batches

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        seen.extend(out)
        return out

    monkeypatch.setattr(fitting, "validation_batches", spy)
    est.fit(sim)
    sizes = [b["inference_variables"].shape[0] for b in seen]
    assert sum(sizes) == 200 and max(sizes) == 32
    assert len({b["summary_variables"].shape[1] for b in seen}) > 1   # several N
    assert np.isfinite(est.history_["val_loss"]).all()


def test_fit_and_score_a_flat_dataframe_bank():
    from skabi.adapters import Concatenate

    rng = np.random.default_rng(0)
    theta = rng.normal(size=400)
    df = pd.DataFrame({"theta": theta, "x1": theta + rng.normal(size=400),
                       "x2": theta + rng.normal(size=400)})
    est = tiny(adapter=make_adapter(Rename("theta", "inference_variables"),
                                    Concatenate(["x1", "x2"], into="inference_conditions")),
               summary_network=None).fit(df)
    assert est.n_simulations_ == 2 * 360   # a tenth held out (validation_sims="auto")
    assert est.role_shapes_ == {"inference_variables": 1, "inference_conditions": 2}
    assert np.isfinite(est.score(df))
    assert est.log_prob(df).shape == (400,)
    one_d = {"theta": theta, "x1": df["x1"].to_numpy(), "x2": df["x2"].to_numpy()}
    np.testing.assert_allclose(est.score(one_d), est.score(df))


def test_offline_pilot_is_a_random_draw_of_the_bank():
    from skabi.adapters import Standardize

    bank = Gaussian(n_obs=5).sample(2000, random_state=0)
    order = np.argsort(bank["theta"][:, 0])                  # a bank sorted by parameter
    bank = {k: v[order] for k, v in bank.items()}
    est = tiny(adapter=make_adapter(Standardize("theta"), Rename("theta", "inference_variables"),
                                    Rename("x", "summary_variables")),
               pilot_size=200, epochs=1).fit(bank)
    mean = est.adapter_.named_steps["standardize"].mean_["theta"]
    assert np.all(np.abs(mean) < 0.3), mean                  # the first 200 rows average -1.8


def test_save_after_set_params_and_warm_start_loads(tmp_path):
    est = tiny(warm_start=True).fit(Gaussian())
    est.set_params(inference_network__depth=3)
    est.fit(Gaussian())                                       # warm start keeps the depth-2 model
    est.save(tmp_path / "m.skabi")
    loaded = AmortizedPosterior.load(tmp_path / "m.skabi")
    data = Gaussian().sample(2, random_state=0)
    np.testing.assert_allclose(loaded.log_prob(data), est.log_prob(data), rtol=1e-6)
    assert loaded.get_params()["inference_network"].depth == 2


def test_missing_meta_variable_at_sample_time_is_named(regression):
    est, sim = regression
    val = sim.sample(3, random_state=1)
    with pytest.raises(MissingKeyError, match=r"lack \['N'\].*meta="):
        est.sample({"x": val["x"], "y": val["y"]})


def test_load_restores_default_adapter_param_and_n_features(tmp_path):
    bank = Gaussian().sample(128, random_state=0)
    est = tiny(adapter=None, summary_network=None).fit(bank["x"].reshape(128, -1), bank["theta"])
    est.save(tmp_path / "flat.skabi")
    loaded = AmortizedPosterior.load(tmp_path / "flat.skabi")
    assert loaded.get_params()["adapter"] is None and loaded.n_features_in_ == 40


def test_sample_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError):
        tiny().sample(Gaussian().sample(2))


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_num_samples_must_be_positive(fitted, bad):
    with pytest.raises(ValueError, match="num_samples must be a positive int"):
        fitted.sample(Gaussian().sample(2), num_samples=bad)


def test_missing_key_in_simulator_output_names_it():
    est = tiny(adapter=make_adapter(Rename("theta", "inference_variables"),
                                    Rename("data", "summary_variables")))
    with pytest.raises(MissingKeyError, match="'data'"):
        est.fit(Gaussian())


def test_observations_with_wrong_feature_count_or_rank(fitted):
    data = Gaussian().sample(2)
    with pytest.raises(ShapeError, match="summary_variables.*last axis 2"):
        fitted.sample({"x": np.zeros((2, 20, 3))})
    with pytest.raises(ShapeError, match="summary_variables"):
        fitted.sample({"x": np.zeros((2, 20))})
    bad = dict(data, x=data["x"].copy())
    bad["x"][1, 3, 0] = np.nan
    with pytest.raises(NonFiniteError, match="'x'"):
        fitted.sample(bad)


def test_observations_lacking_the_data(fitted):
    with pytest.raises(MissingKeyError, match="summary_variables"):
        fitted.sample({"y": np.zeros((2, 3))})


def test_failed_refit_leaves_fitted_estimator_unchanged(fitted):
    est = clone(fitted).fit(Gaussian())
    before = {k: v.clone() for k, v in est.approximator_.state_dict().items()}
    history = est.history_.copy()

    class Exploding(Gaussian):
        def simulate(self, batch_size, rng):
            out = super().simulate(batch_size, rng)
            out["x"] = out["x"] * 1e30
            return out

    est.set_params(learning_rate=1e3, clip_grad_norm=None, standardize=False)
    with pytest.raises(TrainingError):
        est.fit(Exploding())
    after = est.approximator_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    pd.testing.assert_frame_equal(history, est.history_)


def test_invalid_parameters_are_reported_in_fit():
    with pytest.raises(ValueError, match="epochs"):
        tiny(epochs=0).fit(Gaussian())
    with pytest.raises(ValueError, match="lr_schedule"):
        tiny(lr_schedule="linear").fit(Gaussian())


def test_default_diagnostics(regression):
    est, sim = regression
    val = sim.sample(40, random_state=11)
    table = est.compute_default_diagnostics(val, num_samples=200)
    assert list(table.columns) == ["beta[0]", "beta[1]", "sigma"]
    assert list(table.index) == ["nrmse", "contraction", "median_abs_z", "calibration_error",
                                 "calibration_band", "coverage_90"]
    assert table.notna().all().all()
    assert (table.loc["contraction"] < 1).all() and (table.loc["coverage_90"] <= 1).all()


def test_default_diagnostic_plots(regression, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    est, sim = regression
    figs = est.plot_default_diagnostics(sim.sample(30, random_state=12), num_samples=100)
    assert set(figs) == {"losses", "recovery", "calibration_ecdf", "z_score_contraction",
                         "tarp", "latent_space"}
    for name, fig in figs.items():
        fig.savefig(tmp_path / f"{name}.png")
        assert all(ax.get_xlabel() or ax.get_ylabel() or not ax.has_data() for ax in fig.axes)
        plt.close(fig)


def test_arviz_tools_work_on_one_dataset(regression):
    import warnings

    import arviz as az

    est, sim = regression
    idata = est.sample(sim.sample(3, random_state=13), num_samples=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # arviz warns that one chain has no R-hat
        summary = az.summary(idata.sel(dataset=1), kind="stats")
    assert list(summary.index) == ["beta[0]", "beta[1]", "sigma"]
    post = idata.posterior.sel(dataset=1)
    np.testing.assert_allclose(summary.loc["sigma", "mean"], float(post["sigma"].mean()), atol=1e-3)
    assert set(idata.groups()) == {"posterior", "sample_stats", "observed_data", "constant_data",
                                   "true_values"}
