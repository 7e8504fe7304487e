"""The estimators: one module per estimator on one documented base.

=====================  ==========================================  ======================
module                 estimator                                   learns
=====================  ==========================================  ======================
``base``               :class:`AmortizedEstimator`                 (the shared contract)
``posterior``          :class:`~skabi.AmortizedPosterior`          q(theta given x)
``likelihood``         :class:`~skabi.AmortizedLikelihood`         q(x given theta)
``point``              :class:`~skabi.AmortizedPointEstimator`     Bayes estimators
``classifier``         :class:`~skabi.AmortizedModelComparison`    p(model given x)
``multilevel``         :class:`~skabi.AmortizedMultilevelPosterior` global and local posteriors
``joint``              :class:`~skabi.AmortizedJoint`              posterior and likelihood
=====================  ==========================================  ======================

The classes are imported on first use, as from :mod:`skabi`.
"""

from importlib import import_module as _import_module

_PUBLIC = {
    "AmortizedEstimator": "skabi.estimators.base",
    "AmortizedPosterior": "skabi.estimators.posterior",
    "AmortizedLikelihood": "skabi.estimators.likelihood",
    "AmortizedPointEstimator": "skabi.estimators.point",
    "AmortizedModelComparison": "skabi.estimators.classifier",
    "AmortizedMultilevelPosterior": "skabi.estimators.multilevel",
    "AmortizedJoint": "skabi.estimators.joint",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(_import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skabi.estimators' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
