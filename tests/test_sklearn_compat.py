"""The scikit-learn contract: estimator checks that apply, GridSearchCV and cross_val_score."""

import warnings

import numpy as np
import pytest
import sklearn.utils.estimator_checks as checks
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from models import Gaussian, gaussian_adapter
from skabi import AmortizedPosterior
from skabi.bank import SimulationBank
from skabi.networks import CouplingFlow, DeepSet

# Checks that apply to an estimator fed by simulators or banks. Array-based checks run
# through fit(X, y), which builds a bank of "x" and "theta" with a default adapter.
APPLICABLE = [
    "check_estimator_cloneable", "check_estimator_repr", "check_no_attributes_set_in_init",
    "check_parameters_default_constructible", "check_get_params_invariance",
    "check_set_params", "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_tags_renamed", "check_valid_tag_types", "check_mixin_order",
    "check_param_validation", "check_fit_score_takes_y", "check_estimators_fit_returns_self",
    "check_fit_check_is_fitted", "check_estimators_pickle", "check_dont_overwrite_parameters",
    "check_estimators_overwrite_params", "check_dict_unchanged", "check_fit_idempotent",
    "check_n_features_in", "check_estimators_dtypes", "check_fit2d_1sample",
    "check_fit2d_1feature", "check_estimators_empty_data_messages", "check_estimators_nan_inf",
    "check_requires_y_none", "check_estimators_unfitted", "check_pipeline_consistency",
    "check_readonly_memmap_input", "check_f_contiguous_array_estimator", "check_fit1d",
    "check_n_features_in_after_fitting", "check_dtype_object",
]
# Skipped, with the reason:
# - classifier/regressor/transformer/outlier/cluster checks: AmortizedPosterior is none of
#   them (its output is a distribution, not a prediction; no RegressorMixin, see the docs);
# - sample-weight and sparse checks: no sample weights; simulated data are dense;
# - check_methods_subset_invariance / sample_order_invariance: they call predict-like
#   methods, and sample() draws random numbers per call.


def _tiny(kind):
    from skabi import AmortizedLikelihood, AmortizedModelComparison, AmortizedPointEstimator
    from skabi.networks import DenseHead

    small = dict(epochs=1, batches_per_epoch=2, batch_size=8, pilot_size=16, random_state=0)
    if kind == "posterior":
        return AmortizedPosterior(inference_network=CouplingFlow(depth=2, subnet_width=8),
                                  **small)
    if kind == "point":
        return AmortizedPointEstimator(head=DenseHead(width=8), **small)
    if kind == "likelihood":
        return AmortizedLikelihood(inference_network=CouplingFlow(depth=2, subnet_width=8),
                                   **small)
    if kind == "multilevel":
        from skabi import AmortizedMultilevelPosterior
        from skabi.adapters import (AsSet, Concatenate, Constrain, MultilevelAdapter, Rename,
                                    make_adapter)

        adapter = MultilevelAdapter(
            make_adapter(Constrain("tau", lower=0),
                         Concatenate(["mu", "tau"], into="inference_variables")),
            make_adapter(AsSet("y"), Rename("y", "summary_variables"),
                         Rename("theta", "inference_variables")))
        return AmortizedMultilevelPosterior(
            adapter=adapter, inference_network=CouplingFlow(depth=1, subnet_width=8),
            local_inference_network=CouplingFlow(depth=1, subnet_width=8),
            summary_network=DeepSet(summary_dim=2, width=8),
            global_summary_network=DeepSet(summary_dim=2, width=8), **small)
    if kind == "joint":
        from skabi import AmortizedJoint

        return AmortizedJoint(
            AmortizedPosterior(inference_network=CouplingFlow(depth=2, subnet_width=8)),
            AmortizedLikelihood(inference_network=CouplingFlow(depth=2, subnet_width=8)),
            **small)
    return AmortizedModelComparison(head=DenseHead(width=8), **small)


#: The checks that apply to the multilevel posterior: those that do not fit arrays. Its
#: data have levels (datasets, groups, observations) with the number of groups ``J`` per
#: batch, which ``fit(X, y)`` with a 2-D array cannot express; its fits on simulators
#: and banks are checked in tests/estimators/.
MULTILEVEL = ["check_estimator_cloneable", "check_estimator_repr",
              "check_no_attributes_set_in_init", "check_parameters_default_constructible",
              "check_get_params_invariance", "check_set_params",
              "check_do_not_raise_errors_in_init_or_set_params",
              "check_estimator_tags_renamed", "check_valid_tag_types", "check_mixin_order",
              "check_param_validation", "check_estimators_empty_data_messages",
              "check_requires_y_none", "check_estimators_unfitted", "check_fit1d"]

#: The checks of scikit-learn's regressor and classifier contracts that apply to the
#: point estimator and model comparison (trained on arrays: data X, parameters or labels y).
REGRESSOR = ["check_regressors_train", "check_regressor_data_not_an_array",
             "check_regressors_no_decision_function", "check_supervised_y_2d",
             "check_regressor_multioutput", "check_regressors_int"]
CLASSIFIER = ["check_classifiers_one_label", "check_classifiers_classes",
              "check_classifier_data_not_an_array", "check_supervised_y_no_nan",
              "check_classifiers_regression_target", "check_decision_proba_consistency"]


@pytest.mark.parametrize("kind, name", [*((k, n) for k in ("posterior", "point", "comparison",
                                                                     "likelihood", "joint")
                                           for n in APPLICABLE),
                                        *(("multilevel", n) for n in MULTILEVEL),
                                        *(("point", n) for n in REGRESSOR),
                                        *(("comparison", n) for n in CLASSIFIER)])
def test_sklearn_check(kind, name):
    if kind in ("likelihood", "joint") and name == "check_estimators_dtypes":
        pytest.skip("integer data are refused on purpose: a flow is a density of continuous "
                    "values (dequantize counts in the simulator)")
    est = _tiny(kind)
    if name == "check_regressors_train":  # it asks for R^2 > 0.5 on its data: train more
        est.set_params(epochs=30, batch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        getattr(checks, name)(type(est).__name__, est)


def _small(**kwargs):
    return AmortizedPosterior(
        adapter=gaussian_adapter(),
        inference_network=CouplingFlow(depth=2, subnet_width=16),
        summary_network=DeepSet(summary_dim=4, width=16),
        epochs=2, batch_size=64, pilot_size=64, random_state=0, **kwargs)


def test_grid_search_ranks_by_score_and_refits():
    bank = SimulationBank(Gaussian(n_obs=10).sample(384, random_state=0))
    grid = GridSearchCV(_small(), {"inference_network__depth": [1, 2],
                                   "summary_network__summary_dim": [2, 4]}, cv=3)
    grid.fit(bank)
    results = grid.cv_results_
    assert len(results["params"]) == 4
    assert np.isfinite(results["mean_test_score"]).all()
    best = int(np.argmax(results["mean_test_score"]))
    assert grid.best_params_ == results["params"][best]
    assert hasattr(grid.best_estimator_, "approximator_")
    # refit on the whole bank, a tenth held out (validation_sims="auto")
    assert grid.best_estimator_.n_simulations_ == 2 * (384 - 38)
    assert np.isfinite(grid.score(bank[:50]))


def test_cross_val_score_on_a_bank():
    bank = SimulationBank(Gaussian(n_obs=10).sample(300, random_state=1))
    scores = cross_val_score(_small(), bank, cv=KFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_bank_indexing_as_sklearn_does():
    bank = SimulationBank({"theta": np.arange(10.0), "x": np.ones((10, 4, 2)), "N": 4})
    assert bank.shape == (10,) and len(bank) == 10
    sub = bank[np.array([1, 3]), ...]
    np.testing.assert_array_equal(sub["theta"][:, 0], [1.0, 3.0])
    assert sub["N"] == 4 and sub["x"].shape == (2, 4, 2)
    assert len(bank[np.arange(10) % 2 == 0]) == 5
    with pytest.raises(KeyError, match="'thetta'.*Did you mean 'theta'"):
        bank["thetta"]
