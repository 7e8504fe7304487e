"""The estimators: one module per estimator on one documented base.

- ``base``: :class:`~skabi.estimators.base.AmortizedEstimator`, the shared contract;
- ``posterior``: :class:`~skabi.AmortizedPosterior`, q(theta given x);
- ``likelihood``: :class:`~skabi.AmortizedLikelihood`, q(x given theta);
- ``point``: :class:`~skabi.AmortizedPointEstimator`, Bayes estimators;
- ``classifier``: :class:`~skabi.AmortizedModelComparison`, p(model given x);
- ``multilevel``: :class:`~skabi.AmortizedMultilevelPosterior`, global and local
  posteriors;
- ``joint``: :class:`~skabi.AmortizedJoint`, a posterior and a likelihood in one run.

Import the estimators from :mod:`skabi`.
"""

from .base import AmortizedEstimator
from .classifier import AmortizedModelComparison
from .joint import AmortizedJoint
from .likelihood import AmortizedLikelihood
from .multilevel import AmortizedMultilevelPosterior
from .point import AmortizedPointEstimator
from .posterior import AmortizedPosterior

__all__ = ["AmortizedEstimator", "AmortizedPosterior", "AmortizedLikelihood",
           "AmortizedPointEstimator", "AmortizedModelComparison",
           "AmortizedMultilevelPosterior", "AmortizedJoint"]
