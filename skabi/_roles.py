"""Glue between adapter output (numpy, by role) and the torch model: checks and tensors."""

import numpy as np
import torch

from ._validation import check_finite
from .exceptions import MissingKeyError, ShapeError

__all__ = ["ROLES", "role_shapes", "check_roles", "to_tensors"]

ROLES = ("inference_variables", "inference_conditions", "summary_variables")
_RANKS = {"inference_variables": 2, "inference_conditions": 2, "summary_variables": 3}


def role_shapes(roles):
    """The trailing sizes the networks are built for: ``{role: last-axis size}``."""
    shapes = {}
    for role in ROLES:
        if role in roles:
            arr = roles[role]
            if arr.ndim != _RANKS[role]:
                raise ShapeError(
                    f"The adapter produced {role!r} with shape {arr.shape}; the networks need "
                    f"rank {_RANKS[role]} ({_describe(role)})."
                )
            shapes[role] = int(arr.shape[-1])
    return shapes


def _describe(role):
    return {"inference_variables": "(batch, D)", "inference_conditions": "(batch, C)",
            "summary_variables": "(batch, N, F)"}[role]


def check_roles(roles, fitted, *, given_keys, need_theta):
    """Check adapter output against the shapes seen in training; name what is wrong."""
    wanted = [r for r in fitted if r != "inference_variables" or need_theta]
    missing = [r for r in wanted if r not in roles]
    if missing:
        hint = (" Pass the true parameters to compute log densities or scores."
                if "inference_variables" in missing else "")
        raise MissingKeyError(
            f"The adapter produced no {missing!r} from the given data (keys "
            f"{sorted(map(str, given_keys))!r}); the estimator was trained with "
            f"{sorted(fitted)!r}.{hint}"
        )
    for role in wanted:
        arr = roles[role]
        if arr.ndim != _RANKS[role] or arr.shape[-1] != fitted[role]:
            raise ShapeError(
                f"{role!r} has shape {arr.shape}, but the estimator was trained on rank "
                f"{_RANKS[role]} {_describe(role)} with last axis {fitted[role]}: check the "
                f"variables the adapter feeds into {role!r} (given keys "
                f"{sorted(map(str, given_keys))!r})."
            )
        check_finite(role, arr)
    sizes = {roles[r].shape[0] for r in wanted}
    if len(sizes) > 1:
        raise ShapeError(
            "The roles disagree on the number of datasets: "
            + ", ".join(f"{r} {roles[r].shape}" for r in wanted)
        )


def to_tensors(roles, device, dtype, index=None):
    """Adapter output (numpy) as tensors on ``device``; ``index`` selects rows."""
    out = {}
    for role in ROLES:
        if role in roles:
            arr = roles[role] if index is None else roles[role][index]
            out[role] = torch.as_tensor(np.ascontiguousarray(arr), dtype=dtype, device=device)
    return out
