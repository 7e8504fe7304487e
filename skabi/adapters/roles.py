"""The network inputs an adapter produces: their names, ranks and the padding mask.

Defined once here, at the adapter (which produces them); the training engine reads them
from here. Imports nothing.
"""

__all__ = ["ROLES", "MASK", "RANKS", "describe"]

#: The network inputs an adapter produces, by name.
ROLES = ("inference_variables", "inference_conditions", "summary_variables")

#: Boolean ``(B, N)``: True for the real elements of padded ``summary_variables``. Added by
#: :class:`~skabi.adapters.AsSet` / :class:`~skabi.adapters.AsTimeSeries` when the
#: datasets of a batch have different sizes.
MASK = "summary_mask"

#: The rank each role has (batch axis included).
RANKS = {"inference_variables": 2, "inference_conditions": 2, "summary_variables": 3,
         MASK: 2}

_SHAPES = {"inference_variables": "(batch, D)", "inference_conditions": "(batch, C)",
           "summary_variables": "(batch, N, F)", MASK: "(batch, N)"}


def describe(role):
    """The expected shape of ``role`` in words, e.g. ``"(batch, N, F)"``."""
    return _SHAPES[role]
