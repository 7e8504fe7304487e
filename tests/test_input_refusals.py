"""Inputs and outputs that used to fail with raw errors or give silent wrong answers
(issue 29, "Inputs and outputs"): each is now a named refusal, a warning or a correct
answer. Tiny networks, a few steps, fitted once per module."""

import warnings

import numpy as np
import pytest
from models import NormalMean
from scipy import stats

from skabi import (AmortizedLikelihood, AmortizedModelComparison, AmortizedMultilevelPosterior,
                   AmortizedPointEstimator, AmortizedPosterior, add_log_likelihood,
                   importance_sample, log_marginal_likelihood, make_multilevel_simulator,
                   make_simulator)
from skabi.adapters import (AsObservations, AsSet, Broadcast, Concatenate, Constrain,
                            MultilevelAdapter, Rename, Sqrt, make_adapter)
from skabi.exceptions import ShapeError
from skabi.networks import CouplingFlow, DeepSet, DenseHead

TINY = dict(epochs=1, batches_per_epoch=3, batch_size=16, pilot_size=32, random_state=0)
N_OBS = 8
PRIOR = {"mu": stats.norm(0, 1)}


def _model_meta(rng):
    return dict(N=int(rng.integers(5, 21)))


MODELS = {"M0": make_simulator(lambda N, rng: dict(x=rng.normal(size=(N, 1))),
                               meta_fn=_model_meta),
          "M1": make_simulator([lambda rng: dict(mu=rng.normal()),
                                lambda mu, N, rng: dict(x=mu + rng.normal(size=(N, 1)))],
                               meta_fn=_model_meta)}


def log_lik(draws, observed):
    """The exact pointwise log likelihood of NormalMean: (S, N)."""
    return stats.norm.logpdf(observed["x"][None, :], draws["mu"], 1.0)


@pytest.fixture(scope="module")
def fitted():
    """Every estimator of the family fitted once, tiny."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NormalMean(n_obs=N_OBS)
        posterior = AmortizedPosterior(
            adapter=make_adapter(AsSet("x"), Rename("x", "summary_variables"),
                                 Rename("mu", "inference_variables")),
            inference_network=CouplingFlow(depth=1, subnet_width=8),
            summary_network=DeepSet(summary_dim=2, width=8), **TINY).fit(model)
        likelihood = AmortizedLikelihood(
            adapter=make_adapter(AsObservations("x"), Rename("x", "inference_variables"),
                                 Rename("mu", "inference_conditions")),
            inference_network=CouplingFlow(depth=1, subnet_width=8), **TINY).fit(model)
        classifier = AmortizedModelComparison(
            adapter=make_adapter(Broadcast("N", to="x"), AsSet("x"),
                                 Rename("x", "summary_variables"), Sqrt("N"),
                                 Rename("N", "inference_conditions")),
            summary_network=DeepSet(summary_dim=2, width=8), head=DenseHead(width=8),
            **TINY).fit(MODELS)
        point = AmortizedPointEstimator(
            adapter=make_adapter(Rename("mu", "inference_variables"), AsSet("x"),
                                 Rename("x", "summary_variables")),
            estimands=("mean", 0.5, 0.1), summary_network=DeepSet(summary_dim=2, width=8),
            head=DenseHead(width=8), **TINY).fit(model)
        multilevel = AmortizedMultilevelPosterior(
            adapter=MultilevelAdapter(
                make_adapter(Constrain("tau", lower=0),
                             Concatenate(["mu", "tau"], into="inference_variables")),
                make_adapter(AsSet("y"), Rename("y", "summary_variables"),
                             Rename("theta", "inference_variables"))),
            inference_network=CouplingFlow(depth=1, subnet_width=8),
            local_inference_network=CouplingFlow(depth=1, subnet_width=8),
            summary_network=DeepSet(summary_dim=2, width=8),
            global_summary_network=DeepSet(summary_dim=2, width=8),
            **{**TINY, "batch_size": 8, "pilot_size": 16}).fit(_normal_normal())
    return dict(model=model, posterior=posterior, likelihood=likelihood,
                classifier=classifier, point=point, multilevel=multilevel)


def _normal_normal():
    return make_multilevel_simulator(
        lambda rng: dict(mu=rng.normal(0, 5), tau=abs(rng.normal(0, 5))),
        lambda mu, tau, rng: dict(theta=rng.normal(mu, tau)),
        lambda theta, N, rng: dict(y=rng.normal(theta, 1, size=N)),
        meta_fn=lambda rng: dict(J=int(rng.integers(2, 4)), N=int(rng.integers(1, 4))))


@pytest.fixture(scope="module")
def observed(fitted):
    return fitted["model"].sample(3, random_state=1)


# ------------------------------------------------------------------ 0 datasets
def test_zero_datasets_are_refused_by_every_method(fitted):
    post, lik = fitted["posterior"], fitted["likelihood"]
    clf, point, ml = fitted["classifier"], fitted["point"], fitted["multilevel"]
    empty = {"x": np.zeros((0, N_OBS))}
    with_mu = {**empty, "mu": np.zeros((0, 1))}
    calls = {
        "sample": lambda: post.sample(empty, 5),
        "sample(list)": lambda: post.sample([], 5),
        "log_prob": lambda: post.log_prob(with_mu),
        "likelihood.log_prob": lambda: lik.log_prob(with_mu),
        "likelihood.sample": lambda: lik.sample({"mu": np.zeros((0, 1))}, 2, n_obs=3),
        "predict": lambda: clf.predict({"x": np.zeros((0, N_OBS, 1)), "N": N_OBS}),
        "predict_proba": lambda: clf.predict_proba({"x": np.zeros((0, N_OBS, 1)),
                                                    "N": N_OBS}),
        "point.predict": lambda: point.predict(empty),
        "importance_sample": lambda: importance_sample(post, log_lik, empty, PRIOR, 50),
        "log_marginal_likelihood": lambda: log_marginal_likelihood(post, log_lik, empty, PRIOR,
                                                                   num_samples=50),
        "multilevel.sample": lambda: ml.sample([], 5),
        "multilevel.log_prob": lambda: ml.log_prob({"mu": np.zeros((0, 1)),
                                                    "tau": np.ones((0, 1)),
                                                    "theta": np.zeros((0, 2, 1)),
                                                    "y": np.zeros((0, 2, 3)), "J": 2, "N": 3}),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=r"X (holds 0 datasets|is an empty list: 0 "
                                             r"datasets).*at least 1 dataset"):
            call()


# ------------------------------------------------------------------ likelihood
def test_a_likelihood_refuses_datasets_without_observations(fitted):
    lik = fitted["likelihood"]
    with pytest.raises(ValueError, match=r"Dataset\(s\) \[0, 1\] of 2 hold 0 observations "
                                         r"of \['x'\].*at least one observation"):
        lik.log_prob({"x": np.zeros((2, 0)), "mu": np.array([[0.0], [3.0]])})
    with pytest.raises(ValueError, match=r"Dataset\(s\) \[0\] of 2 hold 0 observations"):
        lik.log_prob([{"x": np.zeros(0), "mu": np.array([0.0])},
                      {"x": np.zeros(3), "mu": np.array([3.0])}])


# ------------------------------------------------------------------ classifier inputs
def test_the_classifier_holds_n_to_the_data_as_sample_does(fitted):
    clf = fitted["classifier"]
    assert clf.size_links_ == {"N": [["x", 1]]}   # learned from N per dataset
    x = np.random.default_rng(0).normal(size=(1, N_OBS, 1))
    with pytest.raises(ShapeError, match=rf"N=12 but 'x' has {N_OBS} along axis 1"):
        clf.predict_proba({"x": x, "N": 12})
    assert clf.predict_proba({"x": x, "N": N_OBS}).shape == (1, 2)


def test_one_dataset_without_its_leading_axis_is_refused_not_read_as_many(fitted):
    clf = fitted["classifier"]
    x = np.random.default_rng(0).normal(size=(N_OBS, 1))
    with pytest.raises(ShapeError, match=r"'x' has shape \(8, 1\).*8 datasets.*"
                                         r"\(batch, N, 1\).*x\[None\]"):
        clf.predict_proba({"x": x, "N": N_OBS})
    one = clf.predict_proba({"x": x[None], "N": N_OBS})
    listed = clf.predict_proba([{"x": x, "N": N_OBS}])
    np.testing.assert_allclose(one, listed)


# ------------------------------------------------------------------ overflow
def test_inputs_that_overflow_the_network_are_named(fitted, observed):
    post = fitted["posterior"]
    x = observed["x"] * np.array([[1.0], [1e38], [1.0]])   # float32, overflows
    with pytest.warns(UserWarning, match=r"log_q is NaN or infinite for 1 of 3 datasets "
                                         r"\(datasets \[1\]\)"):
        post.sample({"x": x}, 5)
    with pytest.warns(UserWarning, match=r"datasets \[1\]"):
        post.log_prob({"x": x, "mu": observed["mu"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        post.sample({"x": observed["x"]}, 5)    # ordinary data: nothing to say


# ------------------------------------------------------------------ likelihood callables
def test_callables_of_the_wrong_shape_or_dtype_are_refused(fitted, observed):
    post = fitted["posterior"]
    x = {"x": observed["x"]}
    idata = post.sample(x, 20)

    def three(draws, obs):
        return log_lik(draws, obs)[:, :3]

    def complex_lik(draws, obs):
        return log_lik(draws, obs) + 1j

    shape = r"three\(draws, observed\) returned shape \(50, 3\).*expected \(50, 8\)"
    with pytest.raises(ShapeError, match=shape):
        log_marginal_likelihood(post, three, x, PRIOR, num_samples=50)
    with pytest.raises(ShapeError, match=r"returned shape \(200, 3\).*expected \(200, 8\)"):
        importance_sample(post, three, x, PRIOR, 50)
    with pytest.raises(ShapeError, match=r"returned shape \(20, 3\).*expected \(20, 8\)"):
        add_log_likelihood(idata, three)
    dtype = r"complex_lik\(draws, observed\) returned values of dtype complex128"
    with pytest.raises(TypeError, match=dtype):
        log_marginal_likelihood(post, complex_lik, x, PRIOR, num_samples=50)
    with pytest.raises(TypeError, match=dtype):
        add_log_likelihood(idata, complex_lik)
    with pytest.raises(TypeError, match=r"prior <lambda>\(draws\) returned values of dtype "
                                        r"complex128"):
        log_marginal_likelihood(post, log_lik, x, lambda d: np.zeros(d["mu"].shape[:2]) + 0j,
                                num_samples=50)


def test_a_prior_of_another_dimension_is_refused(fitted, observed):
    post, x = fitted["posterior"], {"x": observed["x"]}
    with pytest.raises(ShapeError, match=r"prior\['mu'\].logpdf returned shape \(3, 50, 3\) "
                                         r"for draws of 'mu' of shape \(3, 50, 1\)"):
        log_marginal_likelihood(post, log_lik, x, {"mu": stats.norm(np.zeros(3), 1)},
                                num_samples=50)
    with pytest.raises(ShapeError, match=r"prior\['mu'\] is a 3-dimensional distribution"):
        log_marginal_likelihood(post, log_lik, x,
                                {"mu": stats.multivariate_normal(np.zeros(3))}, num_samples=50)


def test_a_standard_error_needs_two_draws(fitted, observed):
    with pytest.raises(ValueError, match="num_samples must be at least 2.*got 1.*mc_se"):
        log_marginal_likelihood(fitted["posterior"], log_lik, {"x": observed["x"]}, PRIOR,
                                num_samples=1)


# ------------------------------------------------------------------ spellings
def test_uniform_model_prior_is_the_equal_prior(fitted):
    clf = fitted["classifier"]
    x = {"x": np.random.default_rng(0).normal(size=(2, N_OBS, 1)), "N": N_OBS}
    np.testing.assert_allclose(clf.predict_proba(x, model_prior="uniform"),
                               clf.predict_proba(x, model_prior=[0.5, 0.5]))
    with pytest.raises(ValueError, match=r"model_prior='flat' is not a prior over models; "
                                         r"expected 'uniform'"):
        clf.predict_proba(x, model_prior="flat")
    from skabi.model_mixture import prior_probabilities

    np.testing.assert_allclose(prior_probabilities("uniform", ["a", "b", "c"]), [1 / 3] * 3)
    clf.set_params(model_prior="uniform")
    try:
        clf._validate_params()     # accepted as a parameter too
    finally:
        clf.set_params(model_prior=None)


def test_median_is_the_quantile_level_one_half(fitted, observed):
    point = fitted["point"]
    np.testing.assert_allclose(point.predict_quantiles(observed, "median"),
                               point.predict_quantiles(observed, 0.5))
    assert point.predict_quantiles(observed, ["median", 0.1]).shape == (3, 2, 1)
    with pytest.raises(ValueError, match=r"q='mode' is not a quantile level; expected "
                                         r"'median' or numbers in \[0, 1\]"):
        point.predict_quantiles(observed, "mode")


# ------------------------------------------------------------------ sizes
def test_num_samples_beyond_memory_is_refused_before_allocating(fitted, observed):
    post, lik = fitted["posterior"], fitted["likelihood"]
    huge = 10 ** 12
    with pytest.raises(ValueError, match=r"num_samples=1000000000000 makes 3 datasets x "
                                         r"1000000000000 draws.*TiB as float64.*memory"):
        post.sample(observed, huge)
    with pytest.raises(ValueError, match=r"num_samples=1000000000000 makes 10 observations"):
        lik.sample({"mu": np.zeros((2, 1))}, huge, n_obs=5)
    with pytest.raises(ValueError, match=r"num_samples=1000000000000 makes 3 datasets x 4 "
                                         r"proposals"):
        importance_sample(post, log_lik, {"x": observed["x"]}, PRIOR, huge)   # x 4 proposals
    with pytest.raises(ValueError, match=r"num_samples must be a positive int; got 1000000000000\.0"):
        post.sample(observed, 1e12)
    from skabi import sample_predictive

    idata = post.sample({"x": observed["x"]}, 5)
    with pytest.raises(ValueError, match=r"num_samples=1000000000000 makes 3 datasets"):
        sample_predictive(idata, make_simulator([lambda rng: dict(mu=rng.normal(size=1)),
                                                 lambda mu, rng: dict(x=rng.normal(size=8))]),
                          num_samples=huge, groups=["prior"])


# ------------------------------------------------------------------ predictive NaN
def test_a_simulator_returning_nan_is_refused_in_predictive_draws(fitted, observed):
    from skabi import sample_predictive
    from skabi.exceptions import NonFiniteError

    def likelihood(mu, rng):
        x = mu + rng.normal(size=N_OBS)
        return dict(x=np.where(mu > 0.5, np.nan, x))   # fails for large mu

    simulator = make_simulator([lambda rng: dict(mu=rng.normal(size=1)), likelihood])
    idata = fitted["posterior"].sample({"x": observed["x"]}, 50)
    with pytest.raises(NonFiniteError, match=r"returned \d+ NaN or infinite value\(s\) of "
                                             r"'x' \(prior predictive, dataset 0: \d+ of 50 "
                                             r"simulations"):
        sample_predictive(idata, simulator, num_samples=50, random_state=0)


# ------------------------------------------------------------------ resume
def test_resuming_with_fewer_epochs_than_the_checkpoint_warns(tmp_path):
    from models import Gaussian, tiny_estimator

    path = tmp_path / "run.skabi"
    tiny_estimator(checkpoint_path=path, epochs=2, batches_per_epoch=2).fit(Gaussian())
    est = tiny_estimator(checkpoint_path=path, epochs=1, batches_per_epoch=2)
    with pytest.warns(UserWarning, match=r"epochs=1, but the checkpoint .* already ran 2 "
                                         r"epochs"):
        est.fit(Gaussian(), resume=True)
    assert len(est.history_) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny_estimator(checkpoint_path=path, epochs=2,
                       batches_per_epoch=2).fit(Gaussian(), resume=True)   # equal: silent
