"""What the ODE-based inference networks share: the exact divergence of a vector field."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["field_and_divergence"]


def field_and_divergence(field: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """The field ``field(x)`` (B, D) and its exact divergence (B,), both detached.

    One backward pass per dimension: exact, and cheap for the few dimensions of a
    posterior. Used by the instantaneous change of variables of flow matching and of the
    diffusion model's probability-flow ODE.

    Examples
    --------
    >>> import torch
    >>> v, div = field_and_divergence(lambda x: 3.0 * x, torch.randn(4, 2))
    >>> div
    tensor([6., 6., 6., 6.])
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        v = field(x)
        div = torch.zeros_like(v[..., 0])
        dim = x.shape[-1]
        for i in range(dim):
            g, = torch.autograd.grad(v[..., i].sum(), x, retain_graph=i < dim - 1)
            div = div + g[..., i]
    return v.detach(), div.detach()
