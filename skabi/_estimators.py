"""Deprecated import path, kept for one release: :mod:`skabi.estimators.base`.

What every estimator shares is now the base class
:class:`~skabi.estimators.base.AmortizedEstimator` (issue 30): the functions over an
estimator that lived here (``fit``, ``commit``, ``fit_state``, ``header``,
``observations``, ``roles``, ``load``) are its methods. This module re-exports the
constants and the functions that stay functions, and will be removed after one release.
"""

from .estimators.base import (NOT_RESTORED, TRAINING_CONSTRAINTS, WEIGHT_AVERAGING,
                              check_n_features, check_saved_params, n_features,
                              training_tags)

__all__ = ["TRAINING_CONSTRAINTS", "WEIGHT_AVERAGING", "NOT_RESTORED", "n_features",
           "check_n_features", "check_saved_params", "training_tags"]
