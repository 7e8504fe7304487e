"""What the ODE-based inference networks (flow matching, diffusion) share: their backbone,
the hyperparameters that choose it, and the exact divergence of a vector field."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import StrOptions
from torch import Tensor, nn

from .._validation import NumberInterval
from ._layers import ACTIVATIONS, ConditionalMLP
from ._residual import ResidualConditionalMLP

__all__ = ["BACKBONES", "BACKBONE_CONSTRAINTS", "build_backbone", "field_and_divergence",
           "add_scaled"]

BACKBONES = ("mlp", "residual")

#: scikit-learn constraints of the hyperparameters every ODE network has
BACKBONE_CONSTRAINTS: dict = {
    "subnet_width": [NumberInterval(Integral, 1, None, closed="left")],
    "subnet_depth": [NumberInterval(Integral, 1, None, closed="left")],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "dropout": [NumberInterval(Real, 0, 1, closed="left")],
    "time_embedding_dim": [NumberInterval(Integral, 1, None, closed="left")],
    "steps": [NumberInterval(Integral, 1, None, closed="left")],
    "backbone": [StrOptions(set(BACKBONES))],
}


def build_backbone(backbone: str, dim: int, context_dim: int, width: int, depth: int,
                   activation: str, dropout: float) -> nn.Module:
    """The network ``(x, context term) -> (dim,)`` of an ODE network.

    ``"mlp"``: a :class:`~skabi.networks._layers.ConditionalMLP` (the context enters the
    first layer); ``"residual"``: a
    :class:`~skabi.networks._residual.ResidualConditionalMLP` (the context enters every
    block). Both expose ``context_weight`` and take the context's projection by it.
    """
    if backbone == "residual":
        return ResidualConditionalMLP(dim, context_dim, dim, width, depth, activation, dropout)
    return ConditionalMLP(dim, context_dim, dim, width, depth, activation, dropout,
                          zero_last=False)


def add_scaled(state, step, c):
    """``state + c * step`` for an ODE state that is a tensor or a tuple of tensors (the
    point and its accumulated log-determinant).

    Examples
    --------
    >>> import torch
    >>> add_scaled((torch.ones(2), torch.zeros(2)), (torch.ones(2), torch.ones(2)), 0.5)
    (tensor([1.5000, 1.5000]), tensor([0.5000, 0.5000]))
    """
    if isinstance(state, tuple):
        return tuple(a + c * b for a, b in zip(state, step))
    return state + c * step


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
