"""Deprecated import path, kept for one release: import from :mod:`skabi` (or
``skabi.estimators.point``).

The estimators moved to the package :mod:`skabi.estimators` (issue 30). This module only
re-exports ``AmortizedPointEstimator`` and will be removed after one release. Files
saved before the move load as before: a saved file names its class, not its module.
"""

from ._moved import moved_attribute

#: The names that moved, and where to.
_MOVED = dict.fromkeys(["AmortizedPointEstimator"], "skabi.estimators.point")


def __getattr__(name):
    return moved_attribute(__name__, name, _MOVED)


__all__ = ["AmortizedPointEstimator"]
