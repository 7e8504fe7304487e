"""Convolutional + recurrent summary network for time series of varying length."""

from __future__ import annotations

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import StrOptions
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from ._base import NumberInterval, SummaryModule, SummaryNetwork
from ._layers import ACTIVATIONS, make_activation

__all__ = ["TimeSeriesNetwork", "TimeSeriesModule"]


class TimeSeriesModule(SummaryModule):
    """Conv1d stack, GRU/LSTM, linear head; built by :class:`TimeSeriesNetwork`.

    Examples
    --------
    >>> import torch
    >>> from skabi.networks import TimeSeriesNetwork
    >>> net = TimeSeriesNetwork(summary_dim=3, recurrent="lstm").build(feature_dim=1)
    >>> x, mask = torch.randn(2, 30, 1), torch.arange(30) < torch.tensor([[30], [12]])
    >>> net(x, mask).shape
    torch.Size([2, 3])
    """

    def __init__(self, feature_dim, summary_dim, filters, kernel_size, num_conv, recurrent,
                 hidden_size, num_layers, bidirectional, activation, dropout):
        super().__init__(feature_dim, summary_dim)
        convs, c_in = [], feature_dim
        for _ in range(num_conv):
            convs.append(nn.Conv1d(c_in, filters, kernel_size, padding="same"))
            c_in = filters
        self.convs = nn.ModuleList(convs)
        self.act = make_activation(activation)
        rnn = nn.GRU if recurrent == "gru" else nn.LSTM
        self.rnn = rnn(c_in, hidden_size, num_layers=num_layers, batch_first=True,
                       bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.num_dirs = 2 if bidirectional else 1
        self.head = nn.Linear(hidden_size * self.num_dirs, summary_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Summaries (B, summary_dim) of series ``x`` (B, T, F).

        ``mask`` (B, T) is True for real time steps; padding must come at the end of each
        series (the length of series ``b`` is ``mask[b].sum()``).
        """
        mask = self._check_input(x, mask)
        m = None if mask is None else mask.unsqueeze(1).to(x.dtype)
        h = x.transpose(1, 2)  # (B, F, T)
        for conv in self.convs:
            if m is not None:
                h = h * m  # padding reads as the zeros 'same' padding would give
            h = self.act(conv(h))
        h = h.transpose(1, 2)
        if mask is not None:
            lengths = mask.sum(1).clamp_min(1).cpu()
            h = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
        _, state = self.rnn(h)
        if isinstance(state, tuple):  # LSTM: (h_n, c_n)
            state = state[0]
        last = state[-self.num_dirs:]  # last layer, each direction: (dirs, B, H)
        return self.head(torch.cat(list(last), dim=-1))


class TimeSeriesNetwork(SummaryNetwork):
    """Summary of (multivariate) time series: 1-D convolutions then a GRU or LSTM.

    The convolutions (``same`` padding) extract local features; the recurrent network
    reads the sequence and its final hidden state (both directions when bidirectional)
    goes through a linear map to ``summary_dim``. Series may have a different length ``T``
    in every call. With a mask, padding (at the end of each series) is ignored exactly:
    padded inputs are zeroed before each convolution and the recurrent network runs on
    packed sequences.

    Parameters
    ----------
    summary_dim : int, default=8
        Size of the summary vector.
    filters : int, default=32
        Channels of each convolution.
    kernel_size : int, default=5
        Width of the convolution kernels.
    num_conv : int, default=1
        Number of convolution layers (0 feeds the raw series to the recurrent network).
    recurrent : {"gru", "lstm"}, default="gru"
        Recurrent cell.
    hidden_size : int, default=64
        Recurrent hidden units (per direction).
    num_layers : int, default=1
        Stacked recurrent layers.
    bidirectional : bool, default=False
        Whether the recurrent network also reads the series backwards.
    activation : {"gelu", "relu", "silu", "elu", "tanh", "leaky_relu", "softplus", "mish"}, \
default="gelu"
        Activation after each convolution.
    dropout : float, default=0.0
        Dropout between stacked recurrent layers.

    Examples
    --------
    >>> import torch
    >>> from skabi.networks import TimeSeriesNetwork
    >>> net = TimeSeriesNetwork(summary_dim=5).build(feature_dim=2)
    >>> net(torch.randn(3, 40, 2)).shape
    torch.Size([3, 5])
    >>> net(torch.randn(3, 25, 2)).shape
    torch.Size([3, 5])
    """

    _parameter_constraints: dict = {
        **SummaryNetwork._parameter_constraints,
        "filters": [NumberInterval(Integral, 1, None, closed="left")],
        "kernel_size": [NumberInterval(Integral, 1, None, closed="left")],
        "num_conv": [NumberInterval(Integral, 0, None, closed="left")],
        "recurrent": [StrOptions({"gru", "lstm"})],
        "hidden_size": [NumberInterval(Integral, 1, None, closed="left")],
        "num_layers": [NumberInterval(Integral, 1, None, closed="left")],
        "bidirectional": ["boolean"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [NumberInterval(Real, 0, 1, closed="left")],
    }

    def __init__(self, *, summary_dim=8, filters=32, kernel_size=5, num_conv=1, recurrent="gru",
                 hidden_size=64, num_layers=1, bidirectional=False, activation="gelu",
                 dropout=0.0):
        self.summary_dim = summary_dim
        self.filters = filters
        self.kernel_size = kernel_size
        self.num_conv = num_conv
        self.recurrent = recurrent
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.activation = activation
        self.dropout = dropout

    def build(self, feature_dim: int) -> TimeSeriesModule:
        """Validate the hyperparameters and return a new float32 module.

        Raises
        ------
        ValueError
            If a hyperparameter or ``feature_dim`` is invalid.
        """
        p = self._validate_params()
        feature_dim, = self._validate_build_arguments(feature_dim=feature_dim)
        return TimeSeriesModule(
            feature_dim,
            p["summary_dim"],
            filters=p["filters"],
            kernel_size=p["kernel_size"],
            num_conv=p["num_conv"],
            recurrent=p["recurrent"],
            hidden_size=p["hidden_size"],
            num_layers=p["num_layers"],
            bidirectional=p["bidirectional"],
            activation=p["activation"],
            dropout=p["dropout"],
        )
