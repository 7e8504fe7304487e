"""Building blocks: MLPs, a Fourier time embedding, masked pooling and attention blocks."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = [
    "ACTIVATIONS",
    "make_activation",
    "MLP",
    "ConditionalMLP",
    "FourierTimeEmbedding",
    "masked_pool",
    "POOLINGS",
    "MultiheadAttention",
    "MAB",
    "SAB",
    "ISAB",
    "PMA",
]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
    "mish": nn.Mish,
}

POOLINGS = ("mean", "max", "sum", "min")


def make_activation(name: str) -> nn.Module:
    """Return a new activation module for ``name`` (a key of :data:`ACTIVATIONS`)."""
    return ACTIVATIONS[name]()


def _hidden_stack(width: int, n_layers: int, activation: str, dropout: float) -> list:
    layers: list = []
    for _ in range(n_layers):
        layers.append(nn.Linear(width, width))
        layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return layers


class MLP(nn.Sequential):
    """``depth`` hidden layers of size ``width``, then a linear output layer.

    ``depth=0`` is a single linear map. With ``zero_last`` the output layer starts at zero.
    With ``out_dim=None`` there is no output layer: the last hidden activation is returned
    (``depth`` linear layers, each followed by the activation).
    """

    def __init__(self, in_dim: int, out_dim: int | None, width: int, depth: int,
                 activation: str = "gelu", dropout: float = 0.0, zero_last: bool = False):
        layers: list = []
        if depth > 0:
            layers += [nn.Linear(in_dim, width), make_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers += _hidden_stack(width, depth - 1, activation, dropout)
        if out_dim is not None:
            last = nn.Linear(width if depth > 0 else in_dim, out_dim)
            if zero_last:
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)
            layers.append(last)
        super().__init__(*layers)


class ConditionalMLP(nn.Module):
    """MLP on ``concat(x, context)``, with the first layer split for broadcasting.

    The first layer is one ``Linear(in_dim + context_dim, width)``. When ``x`` and the
    context have the same leading shape it runs as one fused matmul; otherwise the caller
    may pass a precomputed ``context_term = project_context(c)`` that broadcasts (e.g. one
    condition row for many draws, ``(B, 1, width)`` against ``x`` of shape
    ``(B, S, in_dim)``). ``in_dim`` may be 0 (the output then depends on the context only).
    With ``zero_last`` the output layer starts at zero.
    """

    def __init__(self, in_dim: int, context_dim: int, out_dim: int, width: int, depth: int,
                 activation: str = "gelu", dropout: float = 0.0, zero_last: bool = True):
        super().__init__()
        self.in_dim, self.context_dim, self.width = in_dim, context_dim, width
        if in_dim + context_dim > 0:
            self.first = nn.Linear(in_dim + context_dim, width)
        else:  # nothing to read: a learned constant
            self.first = None
            self.bias = nn.Parameter(torch.zeros(width))
        layers: list = [make_activation(activation)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += _hidden_stack(width, depth - 1, activation, dropout)
        last = nn.Linear(width, out_dim)
        if zero_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        self.body = nn.Sequential(*layers)

    @property
    def context_weight(self) -> Tensor:
        """The columns of the first layer that read the context: (width, context_dim)."""
        return self.first.weight[:, self.in_dim:]

    def project_context(self, context: Tensor | None) -> Tensor | None:
        """The context's contribution to the first hidden layer (None without context)."""
        if self.context_dim == 0 or context is None:
            return None
        return context @ self.context_weight.T

    def forward_with_context(self, x: Tensor, context: Tensor | None) -> Tensor:
        """The MLP on ``concat(x, context)``; ``context`` broadcasts against ``x``."""
        if self.context_dim == 0 or context is None:
            return self.forward(x)
        if self.in_dim > 0 and context.shape[:-1] == x.shape[:-1]:
            return self.body(self.first(torch.cat([x, context], dim=-1)))
        return self.forward(x, self.project_context(context))

    def forward(self, x: Tensor, context_term: Tensor | None = None) -> Tensor:
        """The MLP on ``x`` plus ``context_term`` added to the first pre-activation."""
        if self.first is None:
            h = self.bias.expand(x.shape[:-1] + (self.width,))
        elif self.in_dim > 0:
            w = self.first.weight if self.context_dim == 0 else self.first.weight[:, :self.in_dim]
            h = nn.functional.linear(x, w, self.first.bias)
            if context_term is not None:
                h = h + context_term
        else:
            h = self.first.bias if context_term is None else context_term + self.first.bias
            h = h.expand(x.shape[:-1] + (self.width,))
        return self.body(h)


class FourierTimeEmbedding(nn.Module):
    """Embed a time ``t`` in [0, 1] as ``[t, sin(2 pi f t), cos(2 pi f t)]``.

    Frequencies ``f`` are fixed, geometrically spaced from 1 to ``max_freq``. The output has
    ``dim`` features (``dim >= 1``; the first is ``t`` itself).
    """

    def __init__(self, dim: int, max_freq: float = 16.0):
        super().__init__()
        self.dim = dim
        n_freq = (dim - 1) // 2
        if n_freq > 0:
            freqs = torch.logspace(0.0, math.log10(max_freq), n_freq) * 2.0 * math.pi
        else:
            freqs = torch.zeros(0)
        self.register_buffer("freqs", freqs, persistent=False)
        self.pad = dim - 1 - 2 * n_freq

    def forward(self, t: Tensor) -> Tensor:
        """``t`` of shape (...,) -> (..., dim)."""
        t = t[..., None]
        arg = t * self.freqs.to(t.dtype)
        parts = [t, torch.sin(arg), torch.cos(arg)]
        if self.pad:
            parts.append(t.square())
        return torch.cat(parts, dim=-1)


def masked_pool(h: Tensor, mask: Tensor | None, methods: tuple[str, ...]) -> Tensor:
    """Pool ``h`` (B, N, D) over N ignoring masked elements; concat methods -> (B, D * k).

    ``mask`` (B, N) is True for real elements. An all-padding set pools to zeros.
    """
    outs = []
    if mask is None:
        for m in methods:
            if m == "mean":
                outs.append(h.mean(1))
            elif m == "sum":
                outs.append(h.sum(1))
            elif m == "max":
                outs.append(h.amax(1))
            else:
                outs.append(h.amin(1))
    else:
        m_f = mask.unsqueeze(-1).to(h.dtype)
        for m in methods:
            if m in ("mean", "sum"):
                s = (h * m_f).sum(1)
                if m == "mean":
                    s = s / m_f.sum(1).clamp_min(1.0)
                outs.append(s)
            else:
                fill = -torch.inf if m == "max" else torch.inf
                masked = h.masked_fill(~mask.unsqueeze(-1), fill)
                red = masked.amax(1) if m == "max" else masked.amin(1)
                outs.append(torch.where(torch.isfinite(red), red, torch.zeros_like(red)))
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)


class MultiheadAttention(nn.Module):
    """Multihead attention on :func:`~torch.nn.functional.scaled_dot_product_attention`.

    Parameters match :class:`torch.nn.MultiheadAttention` (``batch_first``, same names and
    initialisation): ``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E,) stack the query,
    key and value projections, ``out_proj`` is the output map. Self-attention (``q is k``)
    projects all three in one matmul; otherwise the query and the key/value are projected
    separately (the key/value in one matmul). ``key_mask`` (B, Nk) is True for real keys
    (padded keys get zero weight); every row must have at least one real key.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, q: Tensor, k: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """``q`` (B, Nq, E), ``k`` (B, Nk, E) (keys and values) -> (B, Nq, E)."""
        e, h = self.embed_dim, self.num_heads
        b, nq = q.shape[0], q.shape[1]
        w, bias = self.in_proj_weight, self.in_proj_bias
        # projections stay (B, N, E) views of one matmul output; heads are (B, H, N, d) views
        if q is k:
            qh, kh, vh = nn.functional.linear(q, w, bias).chunk(3, dim=-1)
        else:
            qh = nn.functional.linear(q, w[:e], bias[:e])
            kh, vh = nn.functional.linear(k, w[e:], bias[e:]).chunk(2, dim=-1)
        qh, kh, vh = (t.unflatten(-1, (h, -1)).transpose(1, 2) for t in (qh, kh, vh))
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]
        a = nn.functional.scaled_dot_product_attention(
            qh, kh, vh, attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(a.transpose(1, 2).reshape(b, nq, e))


class MAB(nn.Module):
    """Multihead attention block (Lee et al. 2019): ``H = LN(Q + MHA(Q, K, K))``,
    ``out = LN(H + rFF(H))``. ``key_mask`` (B, Nk) True = real key."""

    def __init__(self, embed_dim: int, num_heads: int, activation: str = "gelu",
                 dropout: float = 0.0, layer_norm: bool = True):
        super().__init__()
        self.attn = MultiheadAttention(embed_dim, num_heads, dropout=dropout)
        self.ff = MLP(embed_dim, embed_dim, embed_dim, 1, activation, dropout)
        self.ln1 = nn.LayerNorm(embed_dim) if layer_norm else nn.Identity()
        self.ln2 = nn.LayerNorm(embed_dim) if layer_norm else nn.Identity()

    def forward(self, q: Tensor, k: Tensor, key_mask: Tensor | None = None) -> Tensor:
        h = self.ln1(q + self.attn(q, k, key_mask))
        return self.ln2(h + self.ff(h))


class SAB(nn.Module):
    """Set attention block: ``MAB(X, X)``."""

    def __init__(self, embed_dim: int, num_heads: int, **kw):
        super().__init__()
        self.mab = MAB(embed_dim, num_heads, **kw)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.mab(x, x, mask)


class ISAB(nn.Module):
    """Induced set attention block: ``H = MAB(I, X)``, ``out = MAB(X, H)``."""

    def __init__(self, embed_dim: int, num_heads: int, num_inducing: int, **kw):
        super().__init__()
        scale = 1.0 / math.sqrt(embed_dim)
        self.inducing = nn.Parameter(torch.randn(1, num_inducing, embed_dim) * scale)
        self.mab1 = MAB(embed_dim, num_heads, **kw)
        self.mab2 = MAB(embed_dim, num_heads, **kw)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        h = self.mab1(self.inducing.expand(x.shape[0], -1, -1), x, mask)
        return self.mab2(x, h)


class PMA(nn.Module):
    """Pooling by multihead attention over ``num_seeds`` learned seed vectors."""

    def __init__(self, embed_dim: int, num_heads: int, num_seeds: int, **kw):
        super().__init__()
        self.seeds = nn.Parameter(torch.randn(1, num_seeds, embed_dim) / math.sqrt(embed_dim))
        self.mab = MAB(embed_dim, num_heads, **kw)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.mab(self.seeds.expand(x.shape[0], -1, -1), x, mask)
