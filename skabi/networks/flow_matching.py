"""Conditional flow matching (Lipman et al. 2023; Wildberger et al. 2023, FMPE)."""

from __future__ import annotations

from numbers import Real

import torch
from sklearn.utils._param_validation import StrOptions
from torch import Tensor

from ._base import InferenceModule, InferenceNetwork, NumberInterval
from ._layers import FourierTimeEmbedding
from ._ode import BACKBONE_CONSTRAINTS, add_scaled, build_backbone, field_and_divergence

__all__ = ["FlowMatching", "FlowMatchingModule"]

_INTEGRATORS = ("euler", "midpoint", "rk4")


class FlowMatchingModule(InferenceModule):
    """Velocity field ``v(x_t, t, condition)`` with a fixed-step ODE sampler.

    Noise ``z ~ N(0, I)`` sits at ``t = 0`` and data at ``t = 1``, on the optimal-transport
    path ``x_t = (1 - (1 - sigma_min) t) z + t theta``. Built by :meth:`FlowMatching.build`.

    Examples
    --------
    >>> import torch
    >>> from skabi.networks import FlowMatching
    >>> net = FlowMatching(subnet_width=16, steps=5).build(dim=2, condition_dim=0)
    >>> net.velocity(torch.randn(3, 2), torch.tensor(0.5)).shape
    torch.Size([3, 2])
    >>> net.log_prob(torch.randn(3, 2)).shape
    torch.Size([3])
    """

    #: log densities need an ODE solve with one backward pass per dimension per step
    cheap_log_prob = False

    def __init__(self, dim, condition_dim, width, depth, activation, dropout,
                 time_embedding_dim, sigma_min, steps, integrator, backbone="mlp"):
        super().__init__(dim, condition_dim)
        self.sigma_min, self.steps, self.integrator = sigma_min, steps, integrator
        self.time_embedding = FourierTimeEmbedding(time_embedding_dim)
        self.net = build_backbone(backbone, dim, condition_dim + time_embedding_dim, width,
                                  depth, activation, dropout)
        self.split = condition_dim

    def _context_term(self, t: Tensor, condition: Tensor | None) -> Tensor:
        """First-layer contribution of ``(t, condition)``; broadcastable against x."""
        w = self.net.context_weight
        term = self.time_embedding(t) @ w[:, self.split:].T
        if condition is not None:
            term = term + condition @ w[:, :self.split].T
        return term

    def velocity(self, x: Tensor, t: Tensor, condition: Tensor | None = None) -> Tensor:
        """Velocity at ``x`` (..., dim), time ``t`` (broadcastable to x's leading shape)."""
        t = t.to(x.dtype).expand(x.shape[:-1]) if t.dim() else t.to(x.dtype)[None]
        return self.net(x, self._context_term(t, condition))

    def loss(self, theta: Tensor, condition: Tensor | None = None) -> Tensor:
        """Flow-matching regression loss ``mean |v(x_t, t) - (theta - (1 - s) z)|^2``.

        ``t ~ U(0, 1)`` and ``z ~ N(0, I)`` are drawn from torch's global generator.
        """
        self._check_theta(theta)
        condition = self._check_condition(condition, theta.shape[0])
        t = torch.rand(theta.shape[0], device=theta.device, dtype=theta.dtype)
        z = torch.randn_like(theta)
        tc = t[:, None]
        x_t = (1 - (1 - self.sigma_min) * tc) * z + tc * theta
        target = theta - (1 - self.sigma_min) * z
        return (self.velocity(x_t, t, condition) - target).square().sum(-1).mean()

    def _integrate(self, f, state, t0: float, t1: float):
        """Fixed-step integration of ``d state / dt = f(state, t)`` from t0 to t1."""
        h = (t1 - t0) / self.steps
        ref = state[0] if isinstance(state, tuple) else state

        def tensor(v):
            return torch.full((), v, device=ref.device, dtype=ref.dtype)

        for i in range(self.steps):
            t = t0 + i * h
            k1 = f(state, tensor(t))
            if self.integrator == "euler":
                state = add_scaled(state, k1, h)
            elif self.integrator == "midpoint":
                state = add_scaled(state, f(add_scaled(state, k1, h / 2), tensor(t + h / 2)), h)
            else:
                k2 = f(add_scaled(state, k1, h / 2), tensor(t + h / 2))
                k3 = f(add_scaled(state, k2, h / 2), tensor(t + h / 2))
                k4 = f(add_scaled(state, k3, h), tensor(t + h))
                if isinstance(state, tuple):
                    state = tuple(s + h / 6 * (a + 2 * b + 2 * c + d)
                                  for s, a, b, c, d in zip(state, k1, k2, k3, k4))
                else:
                    state = state + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return state

    def sample(self, num_samples: int, condition: Tensor | None = None, *,
               generator: torch.Generator | None = None) -> Tensor:
        """Draw ``num_samples`` per condition row by integrating the ODE from t=0 to 1.

        Returns shape (B, num_samples, dim); (1, num_samples, dim) without condition.
        """
        batch = 1 if condition is None else condition.shape[0]
        if condition is not None or self.condition_dim:
            condition = self._check_condition(condition, None)
        ref = self._reference() if condition is None else condition
        z = torch.randn((batch, int(num_samples), self.dim), generator=generator,
                        device=ref.device, dtype=ref.dtype)
        w_c = self.net.context_weight[:, :self.split]
        w_t = self.net.context_weight[:, self.split:]

        def solve(z_rows, c_rows):
            c_term = None if c_rows is None else c_rows @ w_c.T

            def f(x, t):
                term = self.time_embedding(t[None]) @ w_t.T
                return self.net(x, term if c_term is None else term + c_term)

            return self._integrate(f, z_rows, 0.0, 1.0)

        with torch.no_grad():
            return self._chunked(solve, z, condition)

    def log_prob(self, theta: Tensor, condition: Tensor | None = None) -> Tensor:
        """Log density by the instantaneous change of variables, exact divergence.

        Integrates ``(x, log-det)`` from t=1 back to t=0 with the fixed-step integrator.
        The result is detached (not differentiable with respect to the weights).
        """
        self._check_theta(theta)
        condition = self._check_condition(condition, theta.shape[0])

        def f(state, t):
            return field_and_divergence(lambda x: self.velocity(x, t, condition), state[0])

        x0, int_div = self._integrate(f, (theta.detach(), theta.new_zeros(theta.shape[0])),
                                      1.0, 0.0)
        # d(int_div)/dt = div v, integrated from t=1 down to 0, so int_div = -integral_0^1 div;
        # log p_1(theta) = log p_0(x_0) - integral_0^1 div v dt
        return self._normal_log_prob(x0) + int_div


class FlowMatching(InferenceNetwork):
    """Conditional flow matching: an MLP velocity field, sampled by a fixed-step ODE solver.

    Trains by regressing the velocity of the optimal-transport (linear) path
    ``x_t = (1 - (1 - sigma_min) t) z + t theta`` (Lipman et al. 2023) with the condition
    as extra input (FMPE, Wildberger et al. 2023). ``log_prob`` uses the instantaneous
    change of variables with the exact divergence (one backward pass per dimension per
    function evaluation: fine for small ``dim``).

    Parameters
    ----------
    subnet_width : int, default=128
        Hidden units of the velocity MLP.
    subnet_depth : int, default=4
        Hidden layers of the velocity MLP.
    activation : {"gelu", "relu", "silu", "elu", "tanh", "leaky_relu", "softplus", "mish"}, \
default="silu"
        Hidden activation.
    dropout : float, default=0.0
        Dropout probability (training only).
    time_embedding_dim : int, default=16
        Size of the Fourier embedding of ``t`` (``t`` plus sines and cosines).
    sigma_min : float, default=1e-4
        Width of the path at ``t = 1``.
    steps : int, default=25
        Number of fixed ODE steps for sampling and ``log_prob``. With ``"rk4"`` (4
        velocity evaluations per step) 25 steps integrate the nearly straight learned paths
        to well below the network's own error; use ``"euler"`` with more steps for speed.
    integrator : {"euler", "midpoint", "rk4"}, default="rk4"
        Fixed-step ODE integrator (1, 2 or 4 velocity evaluations per step).
    backbone : {"mlp", "residual"}, default="mlp"
        The network: ``"mlp"``, an MLP that reads the noise level and the condition in its
        first layer; ``"residual"``, ``subnet_depth`` residual blocks of two layers each
        that read them in every block (about twice the weights at the same depth and
        width; see ``benchmarks/README.md`` for what it gains).

    Examples
    --------
    >>> import torch
    >>> from skabi.networks import FlowMatching
    >>> net = FlowMatching(subnet_width=32, steps=10).build(dim=2, condition_dim=3)
    >>> cond = torch.randn(4, 3)
    >>> net.loss(torch.randn(4, 2), cond).shape
    torch.Size([])
    >>> net.sample(6, cond, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([4, 6, 2])
    """

    _parameter_constraints: dict = {
        **BACKBONE_CONSTRAINTS,
        "sigma_min": [NumberInterval(Real, 0, 1, closed="left")],
        "integrator": [StrOptions(set(_INTEGRATORS))],
    }

    def __init__(self, *, subnet_width=128, subnet_depth=4, activation="silu", dropout=0.0,
                 time_embedding_dim=16, sigma_min=1e-4, steps=25, integrator="rk4",
                 backbone="mlp"):
        self.subnet_width = subnet_width
        self.subnet_depth = subnet_depth
        self.activation = activation
        self.dropout = dropout
        self.time_embedding_dim = time_embedding_dim
        self.sigma_min = sigma_min
        self.steps = steps
        self.integrator = integrator
        self.backbone = backbone

    def build(self, dim: int, condition_dim: int) -> FlowMatchingModule:
        """Validate the hyperparameters and return a new float32 ``FlowMatchingModule``.

        Raises
        ------
        ValueError
            If a hyperparameter, ``dim`` or ``condition_dim`` is invalid.
        """
        p = self._validate_params()
        dim, condition_dim = self._validate_build_arguments(dim=dim, condition_dim=condition_dim)
        return FlowMatchingModule(
            dim, condition_dim,
            width=p["subnet_width"],
            depth=p["subnet_depth"],
            activation=p["activation"],
            dropout=p["dropout"],
            time_embedding_dim=p["time_embedding_dim"],
            sigma_min=p["sigma_min"],
            steps=p["steps"],
            integrator=p["integrator"],
            backbone=p["backbone"],
        )
