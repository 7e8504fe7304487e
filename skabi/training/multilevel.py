"""The torch model of a two-level posterior and its draws (Habermann et al. 2024,
"Amortized Bayesian multilevel models").

The joint posterior factorises as ``p(global | data) prod_j p(local_j | global, data)``.
A group summary network reads each group's observations; a global summary network (a
set network over groups) reads the set of group summaries (with each group's known
covariates); a global inference network learns ``q(global | global summary)`` and one
local inference network, shared by all groups, ``q(local_j | global, group summary_j,
covariates_j, global summary)``. Training conditions the local network on the true
global parameters; sampling draws the global parameters first and then every group's
given each global draw.

Tensors only: the layout of the role tensors is :mod:`skabi.adapters.roles`'s
(``local_*`` roles ``(B, J, ...)``, ``group_mask`` (B, J)).
"""

import numpy as np
import torch
from torch import nn

from ..exceptions import ShapeError
from . import chunks
from .chunks import chunk_rows
from .inference import outputs
from .model import _stats
from .roles import GROUP_MASK, LOCAL_MASK, n_rows, to_tensors

__all__ = ["MultilevelApproximator", "build_multilevel", "check_multilevel_networks",
           "level_names", "draw_multilevel", "log_prob_multilevel"]


def level_names(adapter, dim):
    """The user's variables of both levels, global first (``adapter``: a fitted
    multilevel adapter, with ``parameter_names()``)."""
    glob, local = adapter.parameter_names()
    return glob + local

_BUFFERS = (("theta", "inference_variables"), ("cond", "inference_conditions"),
            ("local_theta", "local_inference_variables"),
            ("local_cond", "local_inference_conditions"), ("feat", "local_summary_variables"))


class MultilevelApproximator(nn.Module):
    """Global and local inference networks, group and global summary networks, and the
    standardization of every role, as one module.

    Parameters
    ----------
    inference_network, local_inference_network : torch.nn.Module
    summary_network : torch.nn.Module or None
        Reads a group's observations (B * J, N, F).
    global_summary_network : torch.nn.Module
        Reads the groups (B, J, group summary + local conditions), masked over padding.
    sizes : dict of str to int
        Last-axis size of each role (0 where absent).
    """

    #: Extra loss terms (none for this model); the engine sets the attribute.
    loss_terms = ()

    def __init__(self, inference_network, local_inference_network, summary_network,
                 global_summary_network, sizes):
        super().__init__()
        self.inference_network = inference_network
        self.local_inference_network = local_inference_network
        self.summary_network = summary_network
        self.global_summary_network = global_summary_network
        for name, role in _BUFFERS:
            size = int(sizes.get(role, 0))
            self.register_buffer(f"{name}_mean", torch.zeros(size))
            self.register_buffer(f"{name}_std", torch.ones(size))

    @property
    def cheap_log_prob(self):
        return bool(getattr(self.inference_network, "cheap_log_prob", True))

    @torch.no_grad()
    def set_standardization(self, batch):
        """Mean and sd of each role from rows of its last axis (padding left out)."""
        for name, role in _BUFFERS:
            value = batch.get(role)
            if value is None or value.numel() == 0:
                continue
            flat = value.reshape(-1, value.shape[-1]).double()
            mean, std = _stats(flat.mean(0), flat.std(0) if flat.shape[0] > 1 else flat.std(0) * 0)
            getattr(self, f"{name}_mean").copy_(mean)
            getattr(self, f"{name}_std").copy_(std)

    def _scaled(self, batch, role, name):
        value = batch.get(role)
        if value is None or value.shape[-1] == 0:
            return None
        return (value - getattr(self, f"{name}_mean")) / getattr(self, f"{name}_std")

    def groups(self, batch):
        """Per-group features (B, J, group summary + local conditions), the global
        condition (B, C) and the group mask (B, J) or None."""
        parts = []
        if self.summary_network is not None:
            x = self._scaled(batch, "local_summary_variables", "feat")
            b, j = x.shape[:2]
            mask = batch.get(LOCAL_MASK)
            flat = x.reshape(b * j, *x.shape[2:])
            s = self.summary_network(flat) if mask is None else \
                self.summary_network(flat, mask.reshape(b * j, -1))
            parts.append(s.reshape(b, j, -1))
        cond = self._scaled(batch, "local_inference_conditions", "local_cond")
        if cond is not None:
            parts.append(cond)
        feats = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        group_mask = batch.get(GROUP_MASK)
        pooled = self.global_summary_network(feats) if group_mask is None else \
            self.global_summary_network(feats, group_mask)
        glob = self._scaled(batch, "inference_conditions", "cond")
        if glob is not None:
            pooled = torch.cat([pooled, glob], dim=-1)
        return feats, pooled, group_mask

    @staticmethod
    def local_conditions(z_global, feats, pooled):
        """Conditions of the local network: ``z_global`` (B, S, Dg) standardized global
        draws, ``feats`` (B, J, G), ``pooled`` (B, C) -> (B, S, J, Dg + G + C)."""
        b, s, _ = z_global.shape
        j = feats.shape[1]
        return torch.cat([z_global[:, :, None].expand(b, s, j, z_global.shape[-1]),
                          feats[:, None].expand(b, s, j, feats.shape[-1]),
                          pooled[:, None, None].expand(b, s, j, pooled.shape[-1])], dim=-1)

    def loss(self, batch):
        """``-log q(global)`` averaged over datasets plus ``-log q(local_j | ...)``
        averaged over the real groups of the batch."""
        feats, pooled, group_mask = self.groups(batch)
        z_global = self._scaled(batch, "inference_variables", "theta")
        loss = self.inference_network.loss(z_global, pooled)
        cond = self.local_conditions(z_global[:, None], feats, pooled)[:, 0]
        z_local = self._scaled(batch, "local_inference_variables", "local_theta")
        if group_mask is None:
            cond, z_local = cond.reshape(-1, cond.shape[-1]), z_local.reshape(-1, z_local.shape[-1])
        else:
            cond, z_local = cond[group_mask], z_local[group_mask]
        return loss + self.local_inference_network.loss(z_local, cond)

    def forward(self, batch):
        return self.loss(batch)

    def log_prob(self, batch):
        """``(log q(global), log q(local_j | global))``: (B,) and (B, J), on the scale of
        the roles; padded groups 0."""
        feats, pooled, group_mask = self.groups(batch)
        z_global = self._scaled(batch, "inference_variables", "theta")
        lg = self.inference_network.log_prob(z_global, pooled) - torch.log(self.theta_std).sum()
        cond = self.local_conditions(z_global[:, None], feats, pooled)[:, 0]
        z_local = self._scaled(batch, "local_inference_variables", "local_theta")
        b, j = z_local.shape[:2]
        ll = self.local_inference_network.log_prob(
            z_local.reshape(b * j, -1), cond.reshape(b * j, -1)).reshape(b, j)
        ll = ll - torch.log(self.local_theta_std).sum()
        if group_mask is not None:
            ll = ll * group_mask
        return lg, ll

    def sample(self, batch, num_samples, generator=None):
        """Draws ``(global (B, S, Dg), local (B, S, J, Dl))`` on the scale of the roles."""
        feats, pooled, _ = self.groups(batch)
        z_global = self.inference_network.sample(num_samples, pooled, generator=generator)
        b, s, _ = z_global.shape
        cond = self.local_conditions(z_global, feats, pooled)
        j = cond.shape[2]
        z_local = self.local_inference_network.sample(1, cond.reshape(b * s * j, -1),
                                                      generator=generator)
        theta = z_global * self.theta_std + self.theta_mean
        local = z_local.reshape(b, s, j, -1) * self.local_theta_std + self.local_theta_mean
        return theta, local


def check_multilevel_networks(networks, shapes, roles):
    """The adapter's output must suit the networks; name the mismatch before building."""
    for role in ("inference_variables", "local_inference_variables"):
        if role not in shapes:
            raise ShapeError(f"The adapter produced no {role!r} (it produced "
                             f"{sorted(roles)!r}).")
    has_sets = "local_summary_variables" in shapes
    if has_sets and networks.get("summary_network") is None:
        raise ValueError("The local adapter produces 'summary_variables' (each group's "
                         "observations) but summary_network is None; pass one such as "
                         "DeepSet().")
    if not has_sets and networks.get("summary_network") is not None:
        raise ValueError("summary_network is set but the local adapter produces no "
                         "'summary_variables'.")
    if not has_sets and "local_inference_conditions" not in shapes:
        raise ValueError("The local adapter routes no group data into the networks: it "
                         "needs 'summary_variables' (a set per group) or "
                         "'inference_conditions' (e.g. a group's single observation).")


def build_multilevel(networks, shapes, params=None):
    """The :class:`MultilevelApproximator` of the hyperparameter holders ``networks``
    (``inference_network``, ``local_inference_network``, ``summary_network``,
    ``global_summary_network``) for the role sizes ``shapes``."""
    group_dim = 0
    summary = None
    if networks.get("summary_network") is not None:
        summary = networks["summary_network"].build(shapes["local_summary_variables"])
        group_dim = int(summary.summary_dim)
    group_dim += shapes.get("local_inference_conditions", 0)
    pooling = networks["global_summary_network"].build(group_dim)
    pooled = int(pooling.summary_dim) + shapes.get("inference_conditions", 0)
    dim, local_dim = shapes["inference_variables"], shapes["local_inference_variables"]
    inference = networks["inference_network"].build(dim, pooled)
    local = networks["local_inference_network"].build(local_dim, dim + group_dim + pooled)
    return MultilevelApproximator(inference, local, summary, pooling, shapes)


def draw_multilevel(state, roles, num_samples, rng):
    """``num_samples`` joint draws per dataset on the user's scale.

    Returns
    -------
    dict of str to ndarray
        Global variables ``(datasets, num_samples, ...)``, local ones ``(datasets,
        num_samples, J, ...)`` (NaN for the padded groups of datasets with fewer groups).
    """
    model, device, adapter = state.model, state.device, state.adapter
    n = n_rows(roles)
    j = next(roles[r].shape[1] for r in ("local_summary_variables", "local_inference_conditions",
                                          GROUP_MASK, "local_inference_variables") if r in roles)
    width = state.shapes["inference_variables"] + state.shapes["local_inference_variables"] * j
    from .._validation import check_result_size

    check_result_size("num_samples", num_samples, n * num_samples * width,
                      what=f"{n} datasets x {num_samples} draws x {width} values")
    # the local network's conditions dominate: S * J rows per dataset
    per_draw = j * (state.shapes["inference_variables"] + 64) + width
    draws_per = min(num_samples, max(1, chunks.CHUNK_ELEMENTS // per_draw))
    rows_per = max(1, chunks.CHUNK_ELEMENTS // (per_draw * num_samples)) if draws_per == num_samples \
        else 1
    rows_per = min(rows_per, chunk_rows(roles))
    gen = torch.Generator(device=device)
    gen.manual_seed(int(rng.integers(2**62)))
    dtype = next(model.parameters()).dtype
    group_mask = roles.get(GROUP_MASK)
    out = None
    model.eval()
    with torch.no_grad():
        for i in range(0, n, rows_per):
            rows = min(rows_per, n - i)
            batch = to_tensors(roles, device, dtype, slice(i, i + rows))
            for s in range(0, num_samples, draws_per):
                k = min(draws_per, num_samples - s)
                theta, local = model.sample(batch, k, generator=gen)
                user = adapter.inverse_transform({
                    "inference_variables": theta.to("cpu", torch.float64).numpy(),
                    "local_inference_variables": local.to("cpu", torch.float64).numpy()})
                if out is None:
                    out = {name: np.empty((n, num_samples, *v.shape[2:]),
                                          dtype=np.result_type(v.dtype, np.float32))
                           for name, v in user.items()}
                for name, v in user.items():
                    out[name][i:i + rows, s:s + k] = v
    if group_mask is not None:
        local_names = adapter.local_adapter.inference_variables_
        padded = ~group_mask[:, None, :]
        for name in local_names:
            arr = out[name]
            arr[np.broadcast_to(padded, arr.shape[:3])] = np.nan
    return out


def log_prob_multilevel(state, roles):
    """``(log q(global) (B,), log q(local_j | global) (B, J))`` of the parameters in
    ``roles``, on the scale of the roles (padded groups 0), in chunks."""
    def levels(model, batch):
        lq_global, lq_local = model.log_prob(batch)
        return torch.cat([lq_global[:, None], lq_local], dim=1)

    both = outputs(state, roles, levels)
    return both[:, 0], both[:, 1:]
