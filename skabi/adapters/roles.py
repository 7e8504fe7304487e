"""The network inputs an adapter produces: their names, ranks and the padding mask.

Defined once here, at the adapter (which produces them); the training engine reads them
from here. Imports nothing.
"""

__all__ = ["ROLES", "MASK", "RANKS", "describe", "LOCAL_ROLES", "LOCAL_MASK", "GROUP_MASK",
           "ALL_ROLES", "MASKS", "local_role"]

#: The network inputs an adapter produces, by name.
ROLES = ("inference_variables", "inference_conditions", "summary_variables")

#: Boolean ``(B, N)``: True for the real elements of padded ``summary_variables``. Added by
#: :class:`~skabi.adapters.AsSet` / :class:`~skabi.adapters.AsTimeSeries` when the
#: datasets of a batch have different sizes.
MASK = "summary_mask"

#: The roles of the group level of a multilevel model
#: (:class:`~skabi.adapters.MultilevelAdapter`): the local adapter's roles, one row per
#: group, laid out as ``(batch, J, ...)``.
LOCAL_ROLES = ("local_inference_variables", "local_inference_conditions",
               "local_summary_variables")

#: Boolean ``(B, J, N)``: the padding mask of ``local_summary_variables``.
LOCAL_MASK = "local_summary_mask"

#: Boolean ``(B, J)``: True for the real groups of datasets padded to a common J.
GROUP_MASK = "group_mask"

#: Every network input, and every mask.
ALL_ROLES = ROLES + LOCAL_ROLES
MASKS = (MASK, LOCAL_MASK, GROUP_MASK)

#: The rank each role has (batch axis included).
RANKS = {"inference_variables": 2, "inference_conditions": 2, "summary_variables": 3,
         MASK: 2, "local_inference_variables": 3, "local_inference_conditions": 3,
         "local_summary_variables": 4, LOCAL_MASK: 3, GROUP_MASK: 2}

_SHAPES = {"inference_variables": "(batch, D)", "inference_conditions": "(batch, C)",
           "summary_variables": "(batch, N, F)", MASK: "(batch, N)",
           "local_inference_variables": "(batch, J, D)",
           "local_inference_conditions": "(batch, J, C)",
           "local_summary_variables": "(batch, J, N, F)", LOCAL_MASK: "(batch, J, N)",
           GROUP_MASK: "(batch, J)"}


def local_role(role):
    """The group-level name of a role or mask: ``"local_" + role``."""
    return f"local_{role}"


def describe(role):
    """The expected shape of ``role`` in words, e.g. ``"(batch, N, F)"``."""
    return _SHAPES[role]
