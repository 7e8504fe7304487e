"""Model comparison's names: :class:`~skabi.AmortizedModelComparison` and the labelled
simulations it trains on (:class:`ModelMixture`, :func:`simulate_models`).

The estimator moved to :mod:`skabi.estimators.classifier` (issue 30); importing it from
here is deprecated and will stop working after one release (import it from
:mod:`skabi`). ``ModelMixture`` and ``simulate_models`` live in :mod:`skabi.model_mixture`
and stay importable from here. Files saved before the move load as before: a saved file
names its class, not its module.
"""

from ._moved import moved_attribute
from .model_mixture import ModelMixture, simulate_models

#: The names that moved, and where to.
_MOVED = dict.fromkeys(["AmortizedModelComparison"], "skabi.estimators.classifier")


def __getattr__(name):
    return moved_attribute(__name__, name, _MOVED)


__all__ = ["ModelMixture", "simulate_models"]
