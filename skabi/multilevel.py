"""Deprecated import path, kept for one release: import from :mod:`skabi` (or
``skabi.estimators.multilevel``).

The estimators moved to the package :mod:`skabi.estimators` (issue 30). This module only
re-exports ``AmortizedMultilevelPosterior`` and will be removed after one release. Files
saved before the move load as before: a saved file names its class, not its module.
"""

from .estimators.multilevel import AmortizedMultilevelPosterior

__all__ = ["AmortizedMultilevelPosterior"]
