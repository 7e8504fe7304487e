"""Prior and posterior predictive groups (issue 15): ArviZ's PPC plots from the container
skabi returns, with no reshaping, also for datasets of different sizes."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from models import Gaussian, likelihood, meta, prior, regression_estimator  # noqa: E402
from skabi import make_simulator, sample_predictive  # noqa: E402
from skabi._arviz import to_arviz  # noqa: E402
from skabi.exceptions import MissingKeyError, SimulatorError  # noqa: E402


def _datasets(sizes):
    out = []
    for n, seed in zip(sizes, range(len(sizes))):
        one = make_simulator([prior, likelihood], meta_fn=lambda n=n: dict(N=n)).sample(
            1, random_state=seed)
        out.append({k: (np.asarray(v)[0] if np.ndim(v) else v) for k, v in one.items()})
    return out


@pytest.fixture(scope="module")
def tutorial():
    simulator = make_simulator([prior, likelihood], meta_fn=meta)
    return regression_estimator().fit(simulator), simulator


def test_plot_ppc_renders_from_the_container_for_ragged_datasets(tutorial):
    import arviz as az

    est, simulator = tutorial
    idata = est.sample(_datasets([5, 12, 9]), num_samples=100)
    idata = sample_predictive(idata, simulator, num_samples=50, random_state=0)
    pp, obs = idata.posterior_predictive, idata.observed_data
    assert pp["y"].dims == ("chain", "draw", "dataset", "observation")
    assert pp["y"].shape == (1, 50, 3, 12)
    assert idata.prior["beta"].dims == idata.posterior["beta"].dims
    assert idata.prior_predictive["x"].dims == pp["x"].dims
    # padding sits where the observed data are padded, and only there
    np.testing.assert_array_equal(np.isnan(pp["y"].values[0, 0]), np.isnan(obs["y"].values))
    assert pp["n_observation"].values.tolist() == [5, 12, 9]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for group in ("posterior", "prior"):
            axes = az.plot_ppc(idata, group=group, num_pp_samples=20)
            assert np.size(axes) == 2       # x and y
            plt.close("all")


def test_posterior_predictive_runs_the_simulator_at_the_posterior_draws():
    def likelihood_given_x(beta, sigma, N, rng, x=None):
        x = rng.normal(size=N) if x is None else x
        return dict(x=x, y=rng.normal(beta[0] + beta[1] * x, sigma))

    simulator = make_simulator([prior, likelihood_given_x], meta_fn=lambda: dict(N=6))
    obs = simulator.sample(2, random_state=3)
    beta = np.broadcast_to(np.array([[[1.0, -2.0]], [[5.0, 0.5]]]), (2, 40, 2))
    draws = {"beta": beta, "sigma": np.full((2, 40, 1), 1e-3)}
    idata = to_arviz(draws, observed={"x": obs["x"], "y": obs["y"], "N": 6})
    idata = sample_predictive(idata, simulator, num_samples=30, given=["x"], groups="posterior",
                              random_state=1)
    pp = idata.posterior_predictive
    np.testing.assert_array_equal(pp["x"].values[0, 7], obs["x"])     # held at observed x
    expected = beta[:, 0, :1] + beta[:, 0, 1:] * obs["x"]
    np.testing.assert_allclose(pp["y"].values[0].mean(axis=0), expected, atol=2e-3)
    assert "prior" not in idata.groups()


def test_same_seed_same_groups_and_errors():
    simulator = make_simulator([prior, likelihood], meta_fn=lambda: dict(N=4))
    obs = simulator.sample(2, random_state=0)
    draws = {"beta": np.zeros((2, 20, 2)), "sigma": np.ones((2, 20, 1))}
    idata = to_arviz(draws, observed={"x": obs["x"], "y": obs["y"], "N": 4})
    a = sample_predictive(idata, simulator, num_samples=10, random_state=5)
    b = sample_predictive(idata, simulator, num_samples=10, random_state=5)
    c = sample_predictive(idata, simulator, num_samples=10, random_state=6)
    np.testing.assert_array_equal(a.prior_predictive["y"], b.prior_predictive["y"])
    np.testing.assert_array_equal(a.posterior_predictive["y"], b.posterior_predictive["y"])
    assert not np.array_equal(a.posterior_predictive["y"], c.posterior_predictive["y"])
    with pytest.raises(ValueError, match="num_samples=30 but the posterior holds 20"):
        sample_predictive(idata, simulator, num_samples=30)
    with pytest.raises(ValueError, match="no 'observed_data'"):
        sample_predictive(to_arviz(draws), simulator)
    with pytest.raises(MissingKeyError, match="did not return \\['z'\\]"):
        sample_predictive(to_arviz(draws, observed={"z": obs["x"]}), simulator, num_samples=5)
    with pytest.raises(MissingKeyError, match="given names \\['w'\\]"):
        sample_predictive(idata, simulator, given=["w"])
    gauss = Gaussian(n_obs=3)
    g_obs = gauss.sample(2, random_state=0)
    g_idata = to_arviz({"theta": np.zeros((2, 10, 2))}, observed={"x": g_obs["x"]})
    with pytest.raises(SimulatorError, match="must take them as arguments"):
        sample_predictive(g_idata, gauss, num_samples=5, groups="posterior")
    assert sample_predictive(g_idata, gauss, num_samples=5, groups="prior").prior[
        "theta"].shape == (1, 5, 2, 2)
