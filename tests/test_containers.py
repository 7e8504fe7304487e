"""The ArviZ container as users use it (issue 15): dims with coordinates, one shared
observation dim per set, scalars read like the numpy output, datasets of different sizes
padded and combinable, and test quantities that read the container's data."""

import warnings

import numpy as np
import pytest

from models import likelihood, meta, prior, regression_estimator
from skabi import concat_datasets, make_simulator
from skabi._arviz import data_from_arviz, from_arviz, to_arviz
from skabi.diagnostics import calibration_error, sbc_ranks
from skabi.exceptions import MissingKeyError


def joint_log_likelihood(data):
    """The tutorial's SBC test quantity, verbatim."""
    beta, sigma, x, y = data["beta"], data["sigma"], data["x"], data["y"]
    mean = beta[:, 0][:, None] + beta[:, 1][:, None] * x
    return np.sum(-(y - mean) ** 2 / (2 * sigma ** 2) - 0.5 * np.log(2 * np.pi) - np.log(sigma),
                  axis=-1)


def _draws(n, s, seed=0):
    rng = np.random.default_rng(seed)
    return {"beta": rng.normal(size=(n, s, 2)), "sigma": rng.gamma(2.0, size=(n, s, 1))}


def _regression_container(n_obs, n_datasets=4, seed=0):
    sim = make_simulator([prior, likelihood], meta_fn=lambda: dict(N=n_obs))
    sims = sim.sample(n_datasets, random_state=seed)
    truth = {k: sims[k] for k in ("beta", "sigma")}
    observed = {k: sims[k] for k in ("x", "y", "N")}
    return to_arviz(_draws(n_datasets, 30, seed), true_values=truth, observed=observed,
                    constant_keys=["N"]), sims


def test_shared_observation_dim_and_coordinates():
    idata, sims = _regression_container(7)
    obs = idata.observed_data
    assert obs["x"].dims == obs["y"].dims == ("dataset", "observation")
    assert (obs["x"] * obs["y"]).shape == (4, 7)          # no (4, 7, 7) broadcast
    assert obs["n_observation"].values.tolist() == [7] * 4
    assert int(idata.constant_data["N"]) == 7
    assert idata.posterior["beta"].coords["beta_dim_0"].values.tolist() == [0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = idata.to_dataframe()
    assert len(table) == 30 and ("posterior", "beta[0,1]", 0, 1) in table.columns


def test_dims_and_coords_name_the_axes():
    est_draws = _draws(2, 5)
    idata = to_arviz(est_draws, observed={"y": np.zeros((2, 3))},
                     dims={"beta": ["coefficient"], "y": ["trial"]},
                     coords={"coefficient": ["intercept", "slope"]})
    assert idata.posterior["beta"].dims[-1] == "coefficient"
    assert idata.posterior["beta"].coords["coefficient"].values.tolist() == ["intercept", "slope"]
    assert idata.observed_data["y"].dims == ("dataset", "trial")
    with pytest.raises(ValueError, match="coords\\['coefficient'\\] has 3 values"):
        to_arviz(est_draws, dims={"beta": ["coefficient"]}, coords={"coefficient": [1, 2, 3]})


def test_scalar_parameters_read_back_like_the_numpy_output():
    draws = _draws(3, 10)
    idata = to_arviz(draws, true_values={"beta": np.zeros((3, 2)), "sigma": np.ones((3, 1))})
    assert idata.posterior["sigma"].dims == ("chain", "draw", "dataset")   # az.summary: "sigma"
    estimates, targets = from_arviz(idata)
    assert estimates["sigma"].shape == draws["sigma"].shape == (3, 10, 1)
    assert targets["sigma"].shape == (3, 1)
    np.testing.assert_array_equal(estimates["beta"], draws["beta"])


def test_tutorial_test_quantity_reads_the_container_data():
    idata, sims = _regression_container(9, n_datasets=6)
    tq = {"ll": joint_log_likelihood}
    from_container = sbc_ranks(idata, test_quantities=tq, variable_keys=[])
    with_data = sbc_ranks(idata, test_quantities=tq, variable_keys=[], data=sims)
    draws, _ = from_arviz(idata)
    from_dicts = sbc_ranks(estimates=draws, targets=sims, test_quantities=tq, variable_keys=[],
                           data={k: sims[k] for k in ("x", "y")})
    np.testing.assert_array_equal(from_container.values, with_data.values)
    np.testing.assert_array_equal(from_container.values, from_dicts.values)


def test_missing_data_is_a_clear_error_not_a_bare_keyerror():
    draws = _draws(3, 10)
    targets = {"beta": np.zeros((3, 2)), "sigma": np.ones((3, 1))}
    with pytest.raises(MissingKeyError, match="reads 'x'.*data="):
        sbc_ranks(estimates=draws, targets=targets, variable_keys=[],
                  test_quantities={"ll": joint_log_likelihood})


def test_datasets_of_different_sizes_are_padded_and_combinable():
    a, sims_a = _regression_container(5, n_datasets=3, seed=1)
    b, sims_b = _regression_container(12, n_datasets=2, seed=2)
    both = concat_datasets([a, b])
    obs = both.observed_data
    assert obs["x"].shape == (5, 12)
    assert obs["n_observation"].values.tolist() == [5, 5, 5, 12, 12]
    assert np.isnan(obs["x"].values[:3, 5:]).all() and not np.isnan(obs["x"].values[3]).any()
    assert both.constant_data["N"].values.tolist() == [5, 5, 5, 12, 12]
    assert both.posterior.sizes["dataset"] == 5
    data = data_from_arviz(both)
    assert [len(v) for v in data["x"]] == [5, 5, 5, 12, 12]       # padding removed
    np.testing.assert_array_equal(data["y"][4], sims_b["y"][1])
    # the tutorial's SBC over N = 5 and 12 at once, with its data-dependent test quantity
    ranks = sbc_ranks(both, test_quantities={"ll": joint_log_likelihood})
    separate = [sbc_ranks(c, test_quantities={"ll": joint_log_likelihood}) for c in (a, b)]
    np.testing.assert_array_equal(ranks.values, np.vstack([s.values for s in separate]))
    assert calibration_error(both)["error"].notna().all()


def test_concat_refuses_different_groups():
    a, _ = _regression_container(5)
    with pytest.raises(ValueError, match="same groups"):
        concat_datasets([a, to_arviz(_draws(2, 30))])


def test_sample_from_a_list_of_datasets_of_different_sizes():
    sim = make_simulator([prior, likelihood], meta_fn=meta)
    est = regression_estimator().fit(sim)
    datasets = []
    for n, seed in ((5, 0), (11, 1)):
        one = make_simulator([prior, likelihood], meta_fn=lambda n=n: dict(N=n)).sample(
            1, random_state=seed)
        datasets.append({k: (np.asarray(v)[0] if np.ndim(v) else v) for k, v in one.items()})
    idata = est.sample(datasets, num_samples=20)
    assert idata.observed_data["y"].dims == ("dataset", "observation")
    assert idata.observed_data["n_observation"].values.tolist() == [5, 11]
    assert idata.constant_data["N"].values.tolist() == [5, 11]
    numpy = est.sample(datasets, num_samples=20, return_type="numpy")
    np.testing.assert_array_equal(from_arviz(idata)[0]["sigma"], numpy["sigma"])
