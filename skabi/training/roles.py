"""Adapter output (numpy arrays by role) meets the torch model: checks and tensors.

The role names come from :mod:`skabi.adapters.roles`; this module only checks arrays
against the sizes seen in training and turns them into tensors (the padding mask too).
"""

import numpy as np
import torch

from ..adapters.roles import (ALL_ROLES, GROUP_MASK, LOCAL_MASK, MASK, MASKS, RANKS, ROLES,
                              describe)
from ..exceptions import MissingKeyError, ShapeError
from .chunks import chunk_rows

__all__ = ["ROLES", "ALL_ROLES", "MASKS", "MASK", "role_shapes", "check_roles", "to_tensors",
           "n_rows", "Prepare"]


def role_shapes(roles):
    """The trailing sizes the networks are built for: ``{role: last-axis size}``."""
    shapes = {}
    for role in ALL_ROLES:
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
    thetas = ("inference_variables", "local_inference_variables")
    wanted = [r for r in fitted if r not in thetas or need_theta]
    missing = [r for r in wanted if r not in roles]
    if missing:
        hint = (" Pass the true parameters to compute log densities or scores."
                if set(thetas) & set(missing) else "")
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
    for sets, mask, lead in (("summary_variables", MASK, 1), ("local_summary_variables",
                                                              LOCAL_MASK, 2)):
        if sets not in wanted:
            continue
        _check_not_empty(roles, sets, mask, lead)
        if mask in roles:
            want = roles[sets].shape[:lead + 1]
            if roles[mask].shape != want:
                raise ShapeError(f"{mask!r} has shape {roles[mask].shape}; expected {want} "
                                 f"{describe(mask)} of {sets!r}.")
    for mask, sets in ((MASK, "summary_variables"), (LOCAL_MASK, "local_summary_variables")):
        if mask in roles and sets not in roles:
            raise ShapeError(f"{mask!r} has shape {roles[mask].shape} but there is no "
                             f"{sets!r} it could mask.")
    sizes = {roles[r].shape[0] for r in wanted}
    if len(sizes) > 1:
        raise ShapeError(
            "The roles disagree on the number of datasets: "
            + ", ".join(f"{r} {roles[r].shape}" for r in wanted)
        )


def _check_not_empty(roles, sets, mask, lead):
    """Every (real) set holds at least one element."""
    arr = roles[sets]
    counts = roles[mask].sum(axis=-1) if mask in roles else np.full(arr.shape[:lead],
                                                                     arr.shape[lead])
    counts = np.asarray(counts)
    if lead == 2 and GROUP_MASK in roles:
        counts = np.where(roles[GROUP_MASK], counts, 1)   # padded groups are not read
    empty = np.argwhere(counts == 0)
    if empty.size:
        what = "dataset(s)" if lead == 1 else "(dataset, group) pair(s)"
        raise ShapeError(
            f"The set of {what} {empty[:10].squeeze(-1).tolist() if lead == 1 else empty[:10].tolist()} "
            "is empty (no observations); the summary network needs at least one element "
            "per set.")


def n_rows(roles):
    """The number of datasets (rows) of a batch of roles (read off the data first)."""
    order = ("summary_variables", "inference_conditions", MASK, "local_summary_variables",
             "local_inference_conditions", GROUP_MASK, "inference_variables",
             "local_inference_variables")
    return next(roles[r].shape[0] for r in order if r in roles)


def to_tensors(roles, device, dtype, index=None):
    """Adapter output (numpy) as tensors on ``device``; ``index`` selects rows.

    The masks, where there are any, become bool tensors under the same keys.
    """
    out = {}
    for role in (*ALL_ROLES, *MASKS):
        if role in roles:
            arr = roles[role] if index is None else roles[role][index]
            out[role] = torch.as_tensor(np.ascontiguousarray(arr),
                                        dtype=torch.bool if role in MASKS else dtype,
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

    def batches(self, sims):
        """``sims`` (a dict of simulations) as tensors in batches of a bounded size
        (validation): the rows are cut by :func:`~skabi.training.chunks.chunk_rows`."""
        roles = self.adapter.transform(sims)
        check_roles(roles, self.shapes, given_keys=sims.keys(), need_theta=True)
        n, step = n_rows(roles), chunk_rows(roles)
        return [to_tensors(roles, self.device, self.dtype, slice(i, i + step))
                for i in range(0, n, step)]
