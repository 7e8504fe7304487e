"""A dense head: conditions (summaries and direct conditions) to a fixed number of outputs.

The network of the estimators that do not learn a density: the Bayes estimators of
:class:`~skabi.AmortizedPointEstimator` and the model logits of
:class:`~skabi.AmortizedModelComparison`.
"""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.utils._param_validation import StrOptions
from torch import Tensor, nn

from ._base import NumberInterval, _Holder, _validated
from ._layers import ACTIVATIONS, MLP

__all__ = ["DenseHead", "DenseHeadModule"]


class DenseHeadModule(nn.Module):
    """``depth`` hidden layers, then a linear map to ``out_dim`` outputs; built by
    :class:`DenseHead`.

    Examples
    --------
    >>> import torch
    >>> from skabi.networks import DenseHead
    >>> head = DenseHead(width=16, depth=2).build(condition_dim=5, out_dim=3)
    >>> head(torch.randn(4, 5)).shape
    torch.Size([4, 3])
    """

    def __init__(self, condition_dim, out_dim, width, depth, activation, dropout):
        super().__init__()
        self.condition_dim, self.out_dim = condition_dim, out_dim
        self.net = MLP(condition_dim, out_dim, width, depth, activation, dropout)

    def forward(self, condition: Tensor) -> Tensor:
        return self.net(condition)


class DenseHead(_Holder):
    """Hyperparameters of a dense head from the conditions to the estimator's outputs.

    The conditions are the summary network's output and the adapter's
    ``inference_conditions``, standardized, as for the inference networks.

    Parameters
    ----------
    width : int, default=128
        Hidden units per layer.
    depth : int, default=2
        Hidden layers (0: a linear map).
    activation : {"gelu", "relu", "silu", "elu", "tanh", "leaky_relu", "softplus", "mish"}, \
default="gelu"
    dropout : float, default=0.0
        Dropout probability after each hidden layer (training only).

    Examples
    --------
    >>> from skabi.networks import DenseHead
    >>> head = DenseHead(width=32, depth=1).build(condition_dim=8, out_dim=2)
    >>> sum(p.numel() for p in head.parameters())
    354
    """

    _parameter_constraints: dict = {
        "width": [NumberInterval(Integral, 1, None, closed="left")],
        "depth": [NumberInterval(Integral, 0, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [NumberInterval(Real, 0, 1, closed="left")],
    }

    def __init__(self, *, width=128, depth=2, activation="gelu", dropout=0.0):
        self.width = width
        self.depth = depth
        self.activation = activation
        self.dropout = dropout

    def build(self, condition_dim: int, out_dim: int) -> DenseHeadModule:
        """Validate the hyperparameters and return a new float32 ``DenseHeadModule``.

        Parameters
        ----------
        condition_dim : int
            Size of the condition vector (>= 1: a head needs data to act on).
        out_dim : int
            Number of outputs (>= 1).
        """
        p = self._validate_params()
        sizes = _validated({"condition_dim": [NumberInterval(Integral, 1, None, closed="left")],
                            "out_dim": [NumberInterval(Integral, 1, None, closed="left")]},
                           {"condition_dim": condition_dim, "out_dim": out_dim},
                           f"{type(self).__name__}.build")
        return DenseHeadModule(sizes["condition_dim"], sizes["out_dim"], p["width"],
                               p["depth"], p["activation"], p["dropout"])
