"""The trained torch model: summary network + inference network + input standardization.

Works on tensors only: a batch is a dict of role tensors (names from
:mod:`skabi.adapters.roles`, the padding mask included). It knows nothing of the adapter,
the variables or scikit-learn. Standardization statistics are buffers, so one
``state_dict`` holds everything needed to restore a fitted model.
"""

import warnings

import torch
from torch import nn

from ..adapters.roles import MASK
from ..exceptions import ShapeError
from ..networks._base import block_rows

__all__ = ["Approximator", "build_approximator", "check_device", "check_networks",
           "check_likelihood_networks", "check_continuous", "resolve_device"]


def _stats(mean, std):
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean, std


class Approximator(nn.Module):
    """q(theta | h(summary_variables), inference_conditions) with standardized inputs.

    Parameters
    ----------
    inference_network : torch.nn.Module
        Built by an inference-network holder for ``dim`` parameters and the condition
        size ``summary_dim + n_conditions``.
    summary_network : torch.nn.Module or None
    dim, n_conditions, n_features : int
        Sizes of ``inference_variables``, ``inference_conditions`` and the feature axis of
        ``summary_variables`` (0 where absent).
    """

    def __init__(self, inference_network, summary_network, dim, n_conditions, n_features):
        super().__init__()
        self.inference_network = inference_network
        self.summary_network = summary_network
        self.dim = dim
        for name, size in (("theta", dim), ("cond", n_conditions), ("feat", n_features)):
            self.register_buffer(f"{name}_mean", torch.zeros(size))
            self.register_buffer(f"{name}_std", torch.ones(size))

    @property
    def fixed_conditions(self):
        """Whether the conditions are fixed features of the data (no summary network to
        learn them): what a linear warm-up of the flow needs."""
        return self.summary_network is None

    @property
    def cheap_log_prob(self):
        """Whether log densities of draws cost about as much as the draws (coupling flows)."""
        return bool(getattr(self.inference_network, "cheap_log_prob", True))

    @torch.no_grad()
    def set_standardization(self, batch):
        """Learn mean/sd of each role from a batch of role tensors (padding excluded)."""
        features = batch.get("summary_variables")
        if features is not None and MASK in batch:
            features = features[batch[MASK]]
        for name, value in (("theta", batch.get("inference_variables")),
                            ("cond", batch.get("inference_conditions")), ("feat", features)):
            if value is None or value.numel() == 0:
                continue
            flat = value.reshape(-1, value.shape[-1]).double()
            mean, std = _stats(flat.mean(0), flat.std(0) if flat.shape[0] > 1 else flat.std(0) * 0)
            getattr(self, f"{name}_mean").copy_(mean)
            getattr(self, f"{name}_std").copy_(std)

    def conditions(self, batch, summaries=None):
        """The condition vector (B, condition_dim) of a batch, or None (``summaries``:
        the summary network's outputs when already computed)."""
        parts = []
        if self.summary_network is not None:
            parts.append(self.summaries(batch) if summaries is None else summaries)
        inference_conditions = batch.get("inference_conditions")
        if inference_conditions is not None and inference_conditions.shape[-1] > 0:
            parts.append((inference_conditions - self.cond_mean) / self.cond_std)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def _z(self, theta):
        return (theta - self.theta_mean) / self.theta_std

    #: Extra loss terms added in training mode: callables ``(summaries, batch) -> tensor
    #: or None`` (:mod:`skabi.training.penalties`); set by the engine, not saved.
    loss_terms = ()

    def loss(self, batch):
        """The inference network's training loss on standardized parameters, plus the
        :attr:`loss_terms` in training mode (so ``val_loss`` stays the plain loss)."""
        if not (self.training and self.loss_terms):
            return self.inference_network.loss(self._z(batch["inference_variables"]),
                                               self.conditions(batch))
        summaries = self.summaries(batch)
        loss = self.inference_network.loss(self._z(batch["inference_variables"]),
                                           self.conditions(batch, summaries=summaries))
        for term in self.loss_terms:
            extra = term(summaries, batch)
            if extra is not None:
                loss = loss + extra
        return loss

    def forward(self, batch):
        """The training loss (so that wrappers such as DistributedDataParallel see it)."""
        return self.loss(batch)

    def log_prob(self, batch):
        """log q(theta | x) on the scale of ``inference_variables`` (B,)."""
        log_q = self.inference_network.log_prob(self._z(batch["inference_variables"]),
                                                self.conditions(batch))
        return log_q - torch.log(self.theta_std).sum()

    def latent(self, batch):
        """The inference network's latent ``z`` (B, D) of ``inference_variables`` given the
        rest: standard normal for simulated pairs when the flow is exact. Needs a network
        with ``forward_transform`` (coupling flows)."""
        forward = getattr(self.inference_network, "forward_transform", None)
        if forward is None:
            raise TypeError(
                f"{type(self.inference_network).__name__} has no latent map (forward_transform);"
                " the latent-space check needs a coupling flow.")
        z, _ = forward(self._z(batch["inference_variables"]), self.conditions(batch))
        return z

    def summaries(self, batch):
        """The summary network's outputs (B, summary_dim) of a batch, or None."""
        if self.summary_network is None:
            return None
        x = (batch["summary_variables"] - self.feat_mean) / self.feat_std
        mask = batch.get(MASK)
        return self.summary_network(x) if mask is None else self.summary_network(x, mask)

    def log_prob_from_conditions(self, theta, cond, rows=None):
        """Like :meth:`log_prob` with precomputed conditions; theta (B, S, D), cond (B, C).

        The ``B * S`` rows go through the network in blocks of ``rows`` (default
        :func:`~skabi.networks._base.block_rows`: cache blocking on CPU).
        """
        b, s, d = theta.shape
        z = self._z(theta).reshape(b * s, d)
        if cond is not None:
            cond = cond.unsqueeze(1).expand(b, s, cond.shape[-1]).reshape(b * s, -1)
        rows = block_rows(z.device, b * s) if rows is None else rows
        if b * s <= rows:
            log_q = self.inference_network.log_prob(z, cond)
        else:
            log_q = torch.cat([
                self.inference_network.log_prob(
                    z[i:i + rows], None if cond is None else cond[i:i + rows])
                for i in range(0, b * s, rows)])
        return log_q.reshape(b, s) - torch.log(self.theta_std).sum()

    def sample_from_conditions(self, num_samples, cond, generator=None):
        """Draws (B, S, D) on the scale of ``inference_variables``."""
        z = self.inference_network.sample(num_samples, cond, generator=generator)
        return z * self.theta_std + self.theta_mean


def resolve_device(device):
    """``"auto"``: CUDA when available, else the CPU; else the torch device named."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _available_devices():
    out = ["cpu"]
    if torch.cuda.is_available():
        out += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    return out


def check_device(device):
    """Raise ``ValueError`` naming the devices there are when ``device`` is not one of
    them (before anything is built)."""
    if device == "auto":
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    ok = dev is not None and (
        dev.type == "cpu"
        or (dev.type == "cuda" and torch.cuda.is_available()
            and (dev.index is None or dev.index < torch.cuda.device_count()))
        or (dev.type == "mps" and "mps" in _available_devices()))
    if not ok:
        raise ValueError(f"device={device!r} is not available here; available: "
                         f"{['auto', *_available_devices()]!r}.")


def build_approximator(networks, shapes, params=None):
    """Build the torch model for the role sizes ``shapes`` from the hyperparameter holders.

    ``networks`` holds ``inference_network`` and ``summary_network`` (or None); the
    estimator's ``params`` are not needed.
    """
    summary = networks.get("summary_network")
    summary_dim, summary_module = 0, None
    if summary is not None:
        summary_module = summary.build(shapes["summary_variables"])
        summary_dim = int(summary_module.summary_dim)
    n_cond = shapes.get("inference_conditions", 0)
    inference_module = networks["inference_network"].build(shapes["inference_variables"],
                                                           summary_dim + n_cond)
    return Approximator(inference_module, summary_module, shapes["inference_variables"], n_cond,
                        shapes.get("summary_variables", 0))


def check_likelihood_networks(networks, shapes, roles):
    """A likelihood models ``inference_variables`` (the data) given
    ``inference_conditions`` (the parameters); name what is missing before building."""
    if "inference_variables" not in shapes:
        raise ShapeError(
            "The adapter produced no 'inference_variables' from the simulations (it produced "
            f"{sorted(roles)!r}); for a likelihood, concatenate or rename the DATA into "
            "'inference_variables' (and the parameters into 'inference_conditions').")
    if "inference_conditions" not in shapes:
        raise ShapeError(
            "The adapter produced no 'inference_conditions'; a likelihood is a density of the "
            "data GIVEN the parameters: concatenate the parameters (and any context) into "
            "'inference_conditions'.")
    if "summary_variables" in shapes:
        raise ValueError(
            "AmortizedLikelihood conditions on the parameters directly and takes no "
            "'summary_variables'; route the data into 'inference_variables' (one observation "
            "per row with AsObservations first, or the whole dataset flattened).")


def check_continuous(adapter):
    """A flow is a density of continuous values: refuse integer or boolean
    ``inference_variables`` (the dtypes the fitted ``adapter`` saw), naming the fix."""
    import numpy as np

    discrete = {k: d for k, d in adapter.inference_dtypes_.items()
                if np.dtype(d).kind in "iub"}
    if discrete:
        raise TypeError(
            f"The modelled data {sorted(discrete)!r} are discrete ({discrete!r}); "
            "AmortizedLikelihood learns densities of continuous values. Dequantize in "
            "the simulator (add rng.uniform(size=...) to the integers: the network then "
            "learns the density of that continuous relaxation, and np.floor of its draws "
            "are integers again), or cast them to float if they are not counts.")


def check_networks(networks, shapes, roles):
    """The adapter's output must suit the approximator's networks; name the mismatch
    before anything is built (and warn when no data reaches the networks)."""
    if "inference_variables" not in shapes:
        raise ShapeError(
            "The adapter produced no 'inference_variables' from the simulations (it "
            f"produced {sorted(roles)!r}); concatenate or rename the parameters into it."
        )
    has_summary = "summary_variables" in shapes
    if has_summary and networks["summary_network"] is None:
        raise ValueError("The adapter produces 'summary_variables' but summary_network is "
                         "None; pass a summary network such as DeepSet().")
    if networks["summary_network"] is not None and not has_summary:
        raise ValueError("summary_network is set but the adapter produces no "
                         "'summary_variables' from the simulations.")
    if not has_summary and "inference_conditions" not in shapes:
        warnings.warn(
            "The adapter routes no data into the networks: it produces only "
            f"{sorted(r for r in roles if r in shapes)!r}, neither 'summary_variables' nor "
            "'inference_conditions', so the estimator learns the prior and ignores the data. "
            "Rename or concatenate the data into one of them.", UserWarning, stacklevel=4)
