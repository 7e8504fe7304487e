"""Adapter output (numpy arrays by role) meets the torch model: checks and tensors.

The role names come from :mod:`skabi.adapters.roles`; this module only checks arrays
against the sizes seen in training and turns them into tensors (the padding mask too).
"""

import numpy as np
import torch

from ..adapters.roles import MASK, RANKS, ROLES, describe
from ..exceptions import MissingKeyError, ShapeError

__all__ = ["ROLES", "MASK", "role_shapes", "check_roles", "to_tensors", "n_rows", "Prepare"]


def role_shapes(roles):
    """The trailing sizes the networks are built for: ``{role: last-axis size}``."""
    shapes = {}
    for role in ROLES:
        if role in roles:
            arr = roles[role]
            if arr.ndim != RANKS[role]:
                raise ShapeError(
                    f"The adapter produced {role!r} with shape {arr.shape}; the networks need "
                    f"rank {RANKS[role]} {describe(role)}."
                )
            shapes[role] = int(arr.shape[-1])
    return shapes


def check_roles(roles, fitted, *, given_keys, need_theta):
    """Check adapter output against the shapes seen in training; name what is wrong.

    Keys and shapes only, cheap enough for every training batch: the adapter already
    checked every value finite when it cast the roles.
    """
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
        if arr.ndim != RANKS[role] or arr.shape[-1] != fitted[role]:
            raise ShapeError(
                f"{role!r} has shape {arr.shape}, but the estimator was trained on rank "
                f"{RANKS[role]} {describe(role)} with last axis {fitted[role]}: check the "
                f"variables the adapter feeds into {role!r} (given keys "
                f"{sorted(map(str, given_keys))!r})."
            )
    if "summary_variables" in wanted:
        sets = roles["summary_variables"]
        counts = roles[MASK].sum(axis=1) if MASK in roles else np.full(sets.shape[0],
                                                                        sets.shape[1])
        empty = np.flatnonzero(np.asarray(counts) == 0)
        if empty.size:
            raise ShapeError(
                f"The set of dataset(s) {empty[:10].tolist()} is empty (no observations); "
                "the summary network needs at least one element per set.")
    if MASK in roles:
        want = roles["summary_variables"].shape[:2] if "summary_variables" in roles else None
        if want is None or roles[MASK].shape != want:
            raise ShapeError(f"{MASK!r} has shape {roles[MASK].shape}; expected {want} "
                             "(batch, N) of 'summary_variables'.")
    sizes = {roles[r].shape[0] for r in wanted}
    if len(sizes) > 1:
        raise ShapeError(
            "The roles disagree on the number of datasets: "
            + ", ".join(f"{r} {roles[r].shape}" for r in wanted)
        )


def n_rows(roles):
    """The number of datasets (rows) of a batch of roles (read off the data first)."""
    order = ("summary_variables", "inference_conditions", MASK, "inference_variables")
    return next(roles[r].shape[0] for r in order if r in roles)


def to_tensors(roles, device, dtype, index=None):
    """Adapter output (numpy) as tensors on ``device``; ``index`` selects rows.

    The mask, where there is one, becomes a bool tensor under the same key.
    """
    out = {}
    for role in (*ROLES, MASK):
        if role in roles:
            arr = roles[role] if index is None else roles[role][index]
            out[role] = torch.as_tensor(np.ascontiguousarray(arr),
                                        dtype=torch.bool if role == MASK else dtype,
                                        device=device)
    return out


class Prepare:
    """Turns a raw batch into training tensors: adapter transform, checks, tensors.

    Parameters
    ----------
    adapter : Adapter
        Fitted.
    shapes : dict
        ``{role: last-axis size}`` the model was built for.
    device, dtype
        Where the tensors go.

    Keys, shapes and empty sets are checked for every batch (and the adapter checks the
    values finite), so a simulator that changes a shape after the pilot is named, not a
    raw torch error.
    """

    def __init__(self, adapter, shapes, device, dtype):
        self.adapter, self.shapes, self.device, self.dtype = adapter, shapes, device, dtype

    def __call__(self, batch):
        roles = self.adapter.transform(batch)
        check_roles(roles, self.shapes, given_keys=batch.keys(), need_theta=True)
        return to_tensors(roles, self.device, self.dtype)
