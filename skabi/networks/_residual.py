"""A residual MLP that reads its context in every block: the ``backbone="residual"`` of the
ODE-based inference networks (flow matching, diffusion) and of a coupling flow's subnets.

The plain conditional MLP sees the time and the condition once, in its first layer, and
must carry them through every later layer. Here each residual block adds its own linear
projection of the context to its hidden pre-activation (as the time and class embeddings of
diffusion U-Nets and transformers enter every block), and the blocks start as the identity
(their last layer at zero), so depth adds capacity without making the start harder.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._layers import make_activation

__all__ = ["ResidualConditionalMLP"]


class ResidualConditionalMLP(nn.Module):
    """``depth`` residual blocks on ``x``, each reading the context; a linear output.

    ``h = W x + b + P_0 c``; per block ``h <- h + L2(act(L1(act(h)) + P_k c))``; output
    ``L(act(h))``. The context projections ``P_0 .. P_depth`` form one matrix,
    :attr:`context_weight` ``((depth + 1) width, context_dim)``, so that a caller may
    project a fixed part of the context once (``context @ context_weight[:, cols].T``) and
    pass the sum of such terms to :meth:`forward`, as with
    :class:`~skabi.networks._layers.ConditionalMLP`. With ``zero_last`` the output layer
    starts at zero (a coupling then starts as the identity). ``in_dim`` may be 0 (a
    coupling of one coordinate): the first layer is then a learned constant.

    Examples
    --------
    >>> import torch
    >>> from skabi.networks._residual import ResidualConditionalMLP
    >>> net = ResidualConditionalMLP(2, 3, 2, width=8, depth=2)
    >>> c = torch.randn(5, 3)
    >>> net(torch.randn(5, 2), c @ net.context_weight.T).shape
    torch.Size([5, 2])
    """

    def __init__(self, in_dim: int, context_dim: int, out_dim: int, width: int, depth: int,
                 activation: str = "silu", dropout: float = 0.0, zero_last: bool = False):
        super().__init__()
        self.in_dim, self.context_dim, self.width = in_dim, context_dim, width
        self.first = nn.Linear(in_dim, width) if in_dim else None
        self.bias = None if in_dim else nn.Parameter(torch.zeros(width))
        self.context_weight = nn.Parameter(torch.empty((depth + 1) * width, context_dim))
        bound = 1.0 / math.sqrt(max(1, in_dim + context_dim))
        nn.init.uniform_(self.context_weight, -bound, bound)
        self.inner = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.outer = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        for layer in self.outer:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.act = make_activation(activation)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.last = nn.Linear(width, out_dim)
        if zero_last:
            nn.init.zeros_(self.last.weight)
            nn.init.zeros_(self.last.bias)

    def project_context(self, context: Tensor | None) -> Tensor | None:
        """The context's terms of every block, ``(..., (depth + 1) width)`` (None without
        context)."""
        if self.context_dim == 0 or context is None:
            return None
        return context @ self.context_weight.T

    def forward_with_context(self, x: Tensor, context: Tensor | None) -> Tensor:
        """The network on ``x`` given ``context`` (which broadcasts against ``x``)."""
        return self.forward(x, self.project_context(context))

    def forward(self, x: Tensor, context_term: Tensor | None = None) -> Tensor:
        """The network on ``x`` (..., in_dim) with ``context_term`` (..., (depth + 1) width),
        the context's projection by :attr:`context_weight` (broadcast against ``x``)."""
        terms = ([None] * (len(self.inner) + 1) if context_term is None
                 else context_term.split(self.width, dim=-1))
        h = (self.first(x) if self.first is not None
             else self.bias.expand(x.shape[:-1] + (self.width,)))
        if terms[0] is not None:
            h = h + terms[0]
        for inner, outer, term in zip(self.inner, self.outer, terms[1:]):
            u = inner(self.act(h))
            if term is not None:
                u = u + term
            h = h + outer(self.drop(self.act(u)))
        return self.last(self.act(h))
