"""Conditional coupling flows: affine (RealNVP/Glow-style) and rational-quadratic spline."""

from __future__ import annotations

from numbers import Integral, Real

import torch
from sklearn.base import clone
from sklearn.utils._param_validation import StrOptions
from torch import Tensor, nn

from ._base import InferenceModule, InferenceNetwork, NumberInterval
from ._layers import ACTIVATIONS, ConditionalMLP
from ._residual import ResidualConditionalMLP
from ._spline import rq_spline

__all__ = ["CouplingFlow", "CouplingFlowModule"]

_PERMUTATIONS = ("random", "swap", "orthogonal", "lu", "none")
_BACKBONES = ("mlp", "residual")
#: ``subnet_depth="auto"``: what a flow is built with, and what a fit on a bank also tries
_AUTO_DEPTH, _BANK_DEPTHS = 2, (2, 4)


class _Coupling(nn.Module):
    """Transform the last ``dim - dim // 2`` coordinates given the first ones and a condition."""

    def __init__(self, dim, condition_dim, transform, width, depth, activation, dropout,
                 clamp, bins, tail_bound, backbone="mlp"):
        super().__init__()
        self.d1, self.d2 = dim // 2, dim - dim // 2
        self.transform, self.clamp, self.bins, self.tail_bound = transform, clamp, bins, tail_bound
        n_par = 2 if transform == "affine" else 3 * bins - 1
        subnet = ResidualConditionalMLP if backbone == "residual" else ConditionalMLP
        self.net = subnet(self.d1, condition_dim, self.d2 * n_par, width, depth, activation,
                          dropout, zero_last=True)

    def forward(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        x1, x2 = x[..., :self.d1], x[..., self.d1:]
        out = self.net.forward_with_context(x1, context)
        if self.transform == "affine":
            s, t = out[..., :self.d2], out[..., self.d2:]
            s = self.clamp * torch.tanh(s / self.clamp)
            if inverse:
                y2 = (x2 - t) * torch.exp(-s)
                logdet = -s.sum(-1)
            else:
                y2 = torch.addcmul(t, x2, torch.exp(s))
                logdet = s.sum(-1)
        else:
            par = out.unflatten(-1, (self.d2, 3 * self.bins - 1))
            y2, ld = rq_spline(x2, par, self.tail_bound, inverse)
            logdet = ld.sum(-1)
        return torch.cat([x1, y2], dim=-1), logdet


class _Permutation(nn.Module):
    """Fixed permutation, optionally followed by a learned linear map (orthogonal or LU)."""

    def __init__(self, dim: int, kind: str):
        super().__init__()
        self.kind = kind
        d1 = dim // 2
        if kind == "none":
            perm = torch.arange(dim)
        elif kind == "swap":
            perm = torch.cat([torch.arange(d1, dim), torch.arange(d1)])
        else:  # a random shuffle of each half, then a swap: no coordinate is left out twice
            perm = torch.cat([d1 + torch.randperm(dim - d1), torch.randperm(d1)])
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))
        if kind == "orthogonal":
            self.skew = nn.Parameter(torch.zeros(dim, dim))
        elif kind == "lu":
            self.lower = nn.Parameter(torch.zeros(dim, dim))
            self.upper = nn.Parameter(torch.zeros(dim, dim))
            self.log_diag = nn.Parameter(torch.zeros(dim))

    def _matrix(self) -> tuple[Tensor, Tensor]:
        """The learned matrix W (acts as y = x @ W.T) and log|det W|."""
        if self.kind == "orthogonal":
            a = self.skew.triu(1)
            return torch.linalg.matrix_exp(a - a.T), self.skew.new_zeros(())
        eye = torch.eye(self.lower.shape[0], dtype=self.lower.dtype, device=self.lower.device)
        low = self.lower.tril(-1) + eye
        up = self.upper.triu(1) + torch.diag(self.log_diag.exp())
        return low @ up, self.log_diag.sum()

    def forward(self, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor | None]:
        if self.kind in ("random", "swap", "none"):
            return x.index_select(-1, self.inv_perm if inverse else self.perm), None
        w, logdet = self._matrix()
        if inverse:
            y = x @ torch.linalg.inv(w).T
            return y.index_select(-1, self.inv_perm), -logdet
        return x.index_select(-1, self.perm) @ w.T, logdet


class CouplingFlowModule(InferenceModule):
    """Normalizing flow ``theta -> z``: per layer ActNorm, coupling, permutation.

    Built by :meth:`CouplingFlow.build`; see there for the parameters.

    Examples
    --------
    >>> import torch
    >>> from skabi.networks import CouplingFlow
    >>> net = CouplingFlow(depth=2).build(dim=2, condition_dim=1)
    >>> theta, cond = torch.randn(3, 2), torch.randn(3, 1)
    >>> z, logdet = net.forward_transform(theta, cond)
    >>> torch.allclose(net.inverse_transform(z, cond), theta, atol=1e-5)
    True
    """

    def __init__(self, dim, condition_dim, depth, transform, width, sub_depth, activation,
                 dropout, permutation, actnorm, clamp, bins, tail_bound, linear_warmup="select",
                 backbone="mlp"):
        super().__init__(dim, condition_dim)
        if backbone not in _BACKBONES:
            raise ValueError(f"backbone={backbone!r}: expected one of {_BACKBONES}.")
        self.linear_warmup = linear_warmup
        # theta -> (theta - W c - b) * exp(-(V c + a)) before the couplings: a linear-Gaussian
        # posterior when they are the identity. Frozen and skipped until a warm-up trains it.
        self.lin_weight = nn.Parameter(torch.zeros(2 * dim, condition_dim), requires_grad=False)
        self.lin_bias = nn.Parameter(torch.zeros(2 * dim), requires_grad=False)
        self.register_buffer("lin_active", torch.zeros((), dtype=torch.bool))   # saved
        self._linear_on = False   # its value, read on every call without a device sync
        #: Set during the warm-up: the density is that of the linear layer alone (exact
        #: while the rest of the flow is at its identity start).
        self.linear_only = False
        self._register_load_state_dict_pre_hook(self._fill_linear)
        self.use_actnorm = actnorm
        self.couplings = nn.ModuleList(
            _Coupling(dim, condition_dim, transform, width, sub_depth, activation, dropout,
                      clamp, bins, tail_bound, backbone) for _ in range(depth))
        self.permutations = nn.ModuleList(_Permutation(dim, permutation) for _ in range(depth))
        if actnorm:
            self.an_loc = nn.Parameter(torch.zeros(depth, dim))
            self.an_log_scale = nn.Parameter(torch.zeros(depth, dim))

    def _fill_linear(self, state_dict, prefix, *args):
        """Files saved before the linear layer existed load with it off (zeros)."""
        for name, value in (("lin_weight", self.lin_weight), ("lin_bias", self.lin_bias),
                            ("lin_active", self.lin_active)):
            state_dict.setdefault(prefix + name, torch.zeros_like(value))
        self._linear_on = bool(state_dict[prefix + "lin_active"])

    @property
    def linear_on(self):
        """Whether the linear layer is part of the flow (after a warm-up)."""
        return self._linear_on

    def switch_linear_on(self, on=True):
        """Make the linear layer part of the flow (the warm-up does, once trained)."""
        self.lin_active.fill_(bool(on))
        self._linear_on = bool(on)

    def linear_parameters(self):
        """The parameters of the linear layer (what the warm-up trains)."""
        return [self.lin_weight, self.lin_bias]

    def _linear(self, condition, like):
        """Shift and log-scale (..., dim) of the linear layer, broadcastable with ``like``."""
        if condition is None or self.condition_dim == 0:
            out = self.lin_bias.expand(like.shape[:-1] + self.lin_bias.shape)
        else:
            out = nn.functional.linear(condition, self.lin_weight, self.lin_bias)
        shift, log_scale = out.chunk(2, dim=-1)
        while shift.dim() < like.dim():
            shift, log_scale = shift.unsqueeze(-2), log_scale.unsqueeze(-2)
        return shift, log_scale

    def forward_transform(self, theta: Tensor, condition: Tensor | None = None
                          ) -> tuple[Tensor, Tensor]:
        """Map ``theta`` (..., dim) to the latent ``z``; return ``(z, log|det dz/dtheta|)``.

        ``condition`` (..., condition_dim) broadcasts against ``theta``'s leading axes.
        """
        x = theta
        terms = []
        if self.linear_only or self._linear_on:
            shift, log_scale = self._linear(condition, theta)
            x = (theta - shift) * torch.exp(-log_scale)
            terms.append(-log_scale.sum(-1))
            if self.linear_only:
                return x, terms[0].expand(theta.shape[:-1])
        if self.use_actnorm:
            inv_scale = torch.exp(-self.an_log_scale)  # all layers at once
            terms.append(-self.an_log_scale.sum())
        for i, (coupling, perm) in enumerate(zip(self.couplings, self.permutations)):
            if self.use_actnorm:
                x = (x - self.an_loc[i]) * inv_scale[i]
            x, ld = coupling(x, condition, inverse=False)
            terms.append(ld)
            x, ld = perm(x, inverse=False)
            if ld is not None:
                terms.append(ld)
        logdet = terms[0] if len(terms) == 1 else sum(terms[1:], terms[0])
        return x, logdet.expand(theta.shape[:-1])

    def inverse_transform(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        """Map latent ``z`` (..., dim) back to ``theta``."""
        x = z
        scale = torch.exp(self.an_log_scale) if self.use_actnorm else None
        for i in reversed(range(len(self.couplings))):
            x, _ = self.permutations[i](x, inverse=True)
            x, _ = self.couplings[i](x, condition, inverse=True)
            if scale is not None:
                x = torch.addcmul(self.an_loc[i], x, scale[i])
        if self._linear_on:
            shift, log_scale = self._linear(condition, x)
            x = torch.addcmul(shift, x, torch.exp(log_scale))
        return x

    def log_prob(self, theta: Tensor, condition: Tensor | None = None) -> Tensor:
        """Exact log density of ``theta`` (B, dim) given ``condition``: shape (B,)."""
        self._check_theta(theta)
        condition = self._check_condition(condition, theta.shape[0])
        z, logdet = self.forward_transform(theta, condition)
        return self._normal_log_prob(z) + logdet

    def loss(self, theta: Tensor, condition: Tensor | None = None) -> Tensor:
        """Mean negative log density of the batch (scalar)."""
        return -self.log_prob(theta, condition).mean()

    def sample(self, num_samples: int, condition: Tensor | None = None, *,
               generator: torch.Generator | None = None) -> Tensor:
        """Draw ``num_samples`` per condition row: shape (B, num_samples, dim).

        Without condition the result has shape (1, num_samples, dim).
        """
        batch = 1 if condition is None else condition.shape[0]
        if condition is not None or self.condition_dim:
            condition = self._check_condition(condition, None)
        ref = self._reference() if condition is None else condition
        z = torch.randn((batch, int(num_samples), self.dim), generator=generator,
                        device=ref.device, dtype=ref.dtype)
        with torch.no_grad():
            return self._chunked(self.inverse_transform, z, condition)


class CouplingFlow(InferenceNetwork):
    """Conditional coupling flow: exact log density, fast sampling.

    Each of the ``depth`` layers applies an ActNorm (learned elementwise affine), a
    coupling transform of the second half of the coordinates conditioned on the first
    half and the condition, and a permutation. The coupling is affine with a soft-clamped
    log-scale ``clamp * tanh(s / clamp)``, or a monotone rational-quadratic spline
    (Durkan et al. 2019) on ``[-tail_bound, tail_bound]`` with identity tails. The last
    layer of each subnet starts at zero, so each coupling starts as the identity.
    With ``dim == 1`` each coupling transforms the single coordinate given the condition.

    Parameters
    ----------
    depth : int, default=6
        Number of coupling layers.
    transform : {"affine", "spline"}, default="affine"
        Coupling transform.
    subnet_width : int, default=128
        Hidden units of each coupling's MLP.
    subnet_depth : int or "auto", default="auto"
        Hidden layers of each coupling's MLP (with ``backbone="residual"``, residual blocks
        of two layers each). ``"auto"``: 2, except for a spline flow fitted on a bank in
        memory with validation simulations and early stopping (the defaults for a bank),
        in one process and without ``checkpoint_path``. There the fit trains the flow
        twice, with 2 and with 4, and keeps the one with the lower validation loss (about
        twice the training time; ``networks_`` shows which). Four layers fit SLCP far better
        (by 0.6-0.8 nats of held-out log density at 10^3 and 10^4 simulations) and most
        other problems a little, but an ODE model and some small banks worse; on eight
        problems at 10^3 and 10^4 simulations (two seeds each) the choice by validation
        loss was never worse than 2 alone (``benchmarks/README.md``, "Choosing the depth of
        the coupling subnets per fit"). Online, where fresh simulations leave nothing to
        choose on and each step counts, 2 stays (4 costs about a third more per step).
    activation : {"gelu", "relu", "silu", "elu", "tanh", "leaky_relu", "softplus", "mish"}, \
default="gelu"
        Hidden activation.
    dropout : float, default=0.0
        Dropout probability in the subnets (training only).
    permutation : {"random", "swap", "orthogonal", "lu", "none"}, default="random"
        Mixing after each coupling. ``"random"``: a fixed random shuffle within each half,
        then a swap of the halves (so every coordinate is transformed at least every other
        layer); ``"swap"``: the swap alone; ``"orthogonal"``/``"lu"``: the random one
        followed by a learned rotation (matrix exponential of a skew-symmetric matrix) or a
        learned LU-factorised matrix; ``"none"``: no mixing.
    actnorm : bool, default=True
        Whether each layer starts with a learned elementwise affine map (zero-initialised).
    clamp : float, default=1.9
        Soft bound of the affine log-scales.
    bins : int, default=8
        Number of spline bins.
    tail_bound : float, default=5.0
        Spline interval half-width; identity outside.
    linear_warmup : "select", "auto" or bool, default="select"
        Give the flow a first layer ``theta -> (theta - W c - b) * exp(-(V c + a))``,
        linear in the condition ``c``, and train it ALONE before the couplings: with the
        couplings at their identity start, that is a Gaussian posterior whose mean and
        log-sd are linear in the conditions, fitted by maximum likelihood; the couplings
        then learn what it misses, starting from it, and early stopping keeps the linear
        fit when they only add noise. On a fixed bank this is what small budgets need: on
        the 10-D linear Gaussian problem at 10^4 simulations it brought the C2ST against
        the exact posterior from 0.572 to 0.520 (``benchmarks/README.md``). Where the
        posterior's location is far from linear in the data (heavy-tailed noise, a
        logistic regression, an ODE model, a mixture) the full flow overfits from the
        linear start instead, by 0.02-0.18 nats of held-out log density at 10^4
        simulations and up to 0.37 at 10^3. ``"select"`` (default): train the flow both
        from the warm-up and from the identity start, on the same validation simulations,
        and keep the training with the lower validation loss (about twice the training
        time; in a single process without ``checkpoint_path``, else as ``"auto"``).
        ``"auto"``: always from the warm-up. Both only for fits on a bank (in memory or on
        disk), not online, where fresh simulations leave nothing to overfit. ``True``:
        the warm-up online too; ``False``: never. In every case only a fresh fit without a
        summary network (learned summaries change as they train, so a linear fit to their
        random start says nothing) and with early stopping on validation simulations
        (which end the warm-up and judge whether the full flow beats it) warms up. The
        layer is part of the flow always (zero, and skipped, until a warm-up trains it);
        the warm-up's epochs come first in the estimator's ``history_``, numbered below 0.
    backbone : {"mlp", "residual"}, default="mlp"
        Each coupling's subnet. ``"mlp"``: ``subnet_depth`` hidden layers, the condition
        read by the first. ``"residual"``: ``subnet_depth`` residual blocks of two layers,
        the condition read by every block (the shape of sbi's coupling nets; the backbone of
        the same name of :class:`FlowMatching`), each block and the output starting at
        zero. On a bank it was no better default than ``subnet_depth=4``: over eight
        problems at 10^3 and 10^4 simulations (``benchmarks/README.md``, "Residual coupling
        subnets") it fitted two moons at 10^3 and heavy-tailed noise at 10^4 best, but SLCP
        less well than ``subnet_depth=4``, and overfitted a logistic regression and a
        mixture at 10^3 (by 0.05-0.13 nats of held-out log density against either MLP).

    Examples
    --------
    >>> import torch
    >>> from skabi.networks import CouplingFlow
    >>> net = CouplingFlow(depth=4, subnet_width=32).build(dim=2, condition_dim=3)
    >>> theta, cond = torch.randn(5, 2), torch.randn(5, 3)
    >>> net.log_prob(theta, cond).shape
    torch.Size([5])
    >>> net.sample(10, cond, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([5, 10, 2])
    """

    _parameter_constraints: dict = {
        "depth": [NumberInterval(Integral, 1, None, closed="left")],
        "transform": [StrOptions({"affine", "spline"})],
        "subnet_width": [NumberInterval(Integral, 1, None, closed="left")],
        "subnet_depth": [NumberInterval(Integral, 1, None, closed="left"),
                         StrOptions({"auto"})],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [NumberInterval(Real, 0, 1, closed="left")],
        "permutation": [StrOptions(set(_PERMUTATIONS))],
        "actnorm": ["boolean"],
        "clamp": [NumberInterval(Real, 0, None, closed="neither")],
        "bins": [NumberInterval(Integral, 2, None, closed="left")],
        "tail_bound": [NumberInterval(Real, 0, None, closed="neither")],
        "linear_warmup": ["boolean", StrOptions({"auto", "select"})],
        "backbone": [StrOptions(set(_BACKBONES))],
    }

    def __init__(self, *, depth=6, transform="affine", subnet_width=128, subnet_depth="auto",
                 activation="gelu", dropout=0.0, permutation="random", actnorm=True,
                 clamp=1.9, bins=8, tail_bound=5.0, linear_warmup="select", backbone="mlp"):
        self.depth = depth
        self.transform = transform
        self.subnet_width = subnet_width
        self.subnet_depth = subnet_depth
        self.activation = activation
        self.dropout = dropout
        self.permutation = permutation
        self.actnorm = actnorm
        self.clamp = clamp
        self.bins = bins
        self.tail_bound = tail_bound
        self.linear_warmup = linear_warmup
        self.backbone = backbone

    def fit_candidates(self, *, bank: bool) -> list:
        """With ``subnet_depth="auto"``: copies with ``subnet_depth`` 2 and 4 for a spline
        flow when the fit can choose (``bank``), else with 2; otherwise this holder."""
        if not (isinstance(self.subnet_depth, str) and self.subnet_depth == "auto"):
            return [self]
        depths = _BANK_DEPTHS if bank and self.transform == "spline" else (_AUTO_DEPTH,)
        return [clone(self).set_params(subnet_depth=d) for d in depths]

    def build(self, dim: int, condition_dim: int) -> CouplingFlowModule:
        """Validate the hyperparameters and return a new float32 ``CouplingFlowModule``.

        Raises
        ------
        ValueError
            If a hyperparameter, ``dim`` or ``condition_dim`` is invalid.
        """
        p = self._validate_params()
        dim, condition_dim = self._validate_build_arguments(dim=dim, condition_dim=condition_dim)
        return CouplingFlowModule(
            dim, condition_dim,
            depth=p["depth"],
            transform=p["transform"],
            width=p["subnet_width"],
            sub_depth=_AUTO_DEPTH if p["subnet_depth"] == "auto" else p["subnet_depth"],
            activation=p["activation"],
            dropout=p["dropout"],
            permutation=p["permutation"],
            actnorm=p["actnorm"],
            clamp=p["clamp"],
            bins=p["bins"],
            tail_bound=p["tail_bound"],
            linear_warmup=p["linear_warmup"],
            backbone=p["backbone"],
        )
