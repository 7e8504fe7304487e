"""Deprecated import path, kept for one release: :mod:`skabi.estimators.base`.

What every estimator shares is now the base class
:class:`~skabi.estimators.base.AmortizedEstimator` (issue 30): the functions over an
estimator that lived here (``fit``, ``commit``, ``fit_state``, ``header``,
``observations``, ``roles``, ``load``) are its methods. This module re-exports the
constants and the functions that stay functions, and will be removed after one release.
"""

from ._moved import moved_attribute

#: The names that moved, and where to.
_MOVED = dict.fromkeys(["NOT_RESTORED", "TRAINING_CONSTRAINTS", "WEIGHT_AVERAGING",
                        "check_n_features", "check_saved_params", "n_features",
                        "training_tags"],
                       "skabi.estimators.base")


def __getattr__(name):
    return moved_attribute(__name__, name, _MOVED)


__all__ = ["TRAINING_CONSTRAINTS", "WEIGHT_AVERAGING", "NOT_RESTORED", "n_features",
           "check_n_features", "check_saved_params", "training_tags"]
