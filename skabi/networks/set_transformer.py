"""Set Transformer summary network (Lee et al. 2019) with masked attention."""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.utils._param_validation import StrOptions
from torch import Tensor, nn

from ._base import NumberInterval, SummaryModule, SummaryNetwork
from ._layers import ACTIVATIONS, ISAB, MLP, PMA, SAB

__all__ = ["SetTransformer", "SetTransformerModule"]


class SetTransformerModule(SummaryModule):
    """Embedding, SAB/ISAB blocks, PMA pooling, MLP head; built by :class:`SetTransformer`.

    Examples
    --------
    >>> import torch
    >>> from skabi.networks import SetTransformer
    >>> net = SetTransformer(summary_dim=2, embed_dim=8, num_heads=2).build(feature_dim=1)
    >>> x, mask = torch.randn(2, 6, 1), torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    >>> net(x, mask).shape
    torch.Size([2, 2])
    """

    def __init__(self, feature_dim, summary_dim, embed_dim, num_heads, num_inducing,
                 num_blocks, num_seeds, activation, dropout, layer_norm):
        super().__init__(feature_dim, summary_dim)
        kw = dict(activation=activation, dropout=dropout, layer_norm=layer_norm)
        self.embed = nn.Linear(feature_dim, embed_dim)
        self.blocks = nn.ModuleList(
            ISAB(embed_dim, num_heads, num_inducing, **kw) if num_inducing > 0
            else SAB(embed_dim, num_heads, **kw) for _ in range(num_blocks))
        self.pool = PMA(embed_dim, num_heads, num_seeds, **kw)
        self.head = MLP(embed_dim * num_seeds, summary_dim, embed_dim, 1, activation, dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Summaries (B, summary_dim) of sets ``x`` (B, N, F); ``mask`` (B, N) True = real."""
        mask = self._check_input(x, mask)
        if mask is not None:
            # an all-padding set would leave softmax without keys: let it attend to all
            mask = mask | ~mask.any(dim=1, keepdim=True)
        h = self.embed(x)
        for block in self.blocks:
            h = block(h, mask)
        return self.head(self.pool(h, mask).flatten(1))


class SetTransformer(SummaryNetwork):
    """Set Transformer summary of exchangeable sets (Lee et al. 2019).

    A linear embedding, ``num_blocks`` attention blocks (induced set attention, ISAB, with
    ``num_inducing_points`` learned points; plain self-attention, SAB, when it is 0),
    pooling by multihead attention (PMA) over ``num_seeds`` learned seeds, and a one-hidden
    layer MLP to ``summary_dim``. Padding elements (``mask`` False) are never attended to.

    Parameters
    ----------
    summary_dim : int, default=8
        Size of the summary vector.
    embed_dim : int, default=64
        Width of the attention blocks; a multiple of ``num_heads``.
    num_heads : int, default=4
        Attention heads.
    num_inducing_points : int, default=0
        Inducing points per ISAB; 0 uses SAB (cost quadratic in the set size).
    num_blocks : int, default=2
        Number of SAB/ISAB blocks.
    num_seeds : int, default=1
        PMA seed vectors (their outputs are concatenated).
    activation : {"gelu", "relu", "silu", "elu", "tanh", "leaky_relu", "softplus", "mish"}, \
default="gelu"
        Activation of the feed-forward layers.
    dropout : float, default=0.0
        Dropout probability (training only).
    layer_norm : bool, default=True
        Whether the blocks use layer normalisation.

    Examples
    --------
    >>> import torch
    >>> from skabi.networks import SetTransformer
    >>> net = SetTransformer(summary_dim=6, embed_dim=32).build(feature_dim=2)
    >>> net(torch.randn(3, 20, 2)).shape
    torch.Size([3, 6])
    """

    _parameter_constraints: dict = {
        **SummaryNetwork._parameter_constraints,
        "embed_dim": [NumberInterval(Integral, 1, None, closed="left")],  # also % num_heads
        "num_heads": [NumberInterval(Integral, 1, None, closed="left")],
        "num_inducing_points": [NumberInterval(Integral, 0, None, closed="left")],
        "num_blocks": [NumberInterval(Integral, 0, None, closed="left")],
        "num_seeds": [NumberInterval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [NumberInterval(Real, 0, 1, closed="left")],
        "layer_norm": ["boolean"],
    }

    def __init__(self, *, summary_dim=8, embed_dim=64, num_heads=4, num_inducing_points=0,
                 num_blocks=2, num_seeds=1, activation="gelu", dropout=0.0, layer_norm=True):
        self.summary_dim = summary_dim
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_inducing_points = num_inducing_points
        self.num_blocks = num_blocks
        self.num_seeds = num_seeds
        self.activation = activation
        self.dropout = dropout
        self.layer_norm = layer_norm

    def build(self, feature_dim: int) -> SetTransformerModule:
        """Validate the hyperparameters and return a new float32 module.

        Raises
        ------
        ValueError
            If a hyperparameter or ``feature_dim`` is invalid.
        """
        p = self._validate_params()
        feature_dim, = self._validate_build_arguments(feature_dim=feature_dim)
        if p["embed_dim"] % p["num_heads"]:
            raise ValueError(
                f"The 'embed_dim' parameter of {type(self).__name__} must be a multiple of "
                f"num_heads={p['num_heads']}. Got {self.embed_dim!r} instead."
            )
        return SetTransformerModule(
            feature_dim,
            p["summary_dim"],
            embed_dim=p["embed_dim"],
            num_heads=p["num_heads"],
            num_inducing=p["num_inducing_points"],
            num_blocks=p["num_blocks"],
            num_seeds=p["num_seeds"],
            activation=p["activation"],
            dropout=p["dropout"],
            layer_norm=p["layer_norm"],
        )
