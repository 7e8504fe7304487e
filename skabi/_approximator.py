"""The trained torch model: summary network + inference network + input standardization.

Works on tensors only; it knows the three role names but nothing of the adapter, the
variables or scikit-learn. Standardization statistics are buffers, so one ``state_dict``
holds everything needed to restore a fitted model.
"""

import torch
from torch import nn

__all__ = ["Approximator", "build_approximator", "resolve_device"]


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

    @torch.no_grad()
    def set_standardization(self, theta=None, conditions=None, features=None):
        """Learn mean/sd from a pilot batch; ``None`` keeps the identity."""
        for name, value in (("theta", theta), ("cond", conditions), ("feat", features)):
            if value is None or value.numel() == 0:
                continue
            flat = value.reshape(-1, value.shape[-1]).double()
            mean, std = _stats(flat.mean(0), flat.std(0) if flat.shape[0] > 1 else flat.std(0) * 0)
            getattr(self, f"{name}_mean").copy_(mean)
            getattr(self, f"{name}_std").copy_(std)

    def conditions(self, summary_variables=None, inference_conditions=None, mask=None):
        """The condition vector (B, condition_dim) or None."""
        parts = []
        if self.summary_network is not None:
            x = (summary_variables - self.feat_mean) / self.feat_std
            parts.append(self.summary_network(x, mask) if mask is not None else self.summary_network(x))
        if inference_conditions is not None and inference_conditions.shape[-1] > 0:
            parts.append((inference_conditions - self.cond_mean) / self.cond_std)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def _z(self, theta):
        return (theta - self.theta_mean) / self.theta_std

    def loss(self, theta, summary_variables=None, inference_conditions=None, mask=None):
        """The inference network's training loss on standardized parameters."""
        cond = self.conditions(summary_variables, inference_conditions, mask)
        return self.inference_network.loss(self._z(theta), cond)

    def forward(self, theta, summary_variables=None, inference_conditions=None, mask=None):
        """The training loss (so that wrappers such as DistributedDataParallel see it)."""
        return self.loss(theta, summary_variables, inference_conditions, mask)

    def log_prob(self, theta, summary_variables=None, inference_conditions=None, mask=None):
        """log q(theta | x) on the scale of ``inference_variables`` (B,)."""
        cond = self.conditions(summary_variables, inference_conditions, mask)
        log_q = self.inference_network.log_prob(self._z(theta), cond)
        return log_q - torch.log(self.theta_std).sum()

    def log_prob_from_conditions(self, theta, cond, rows=None):
        """Like :meth:`log_prob` with precomputed conditions; theta (B, S, D), cond (B, C).

        On CPU the ``B * S`` rows go through the network in blocks of ``rows`` (default
        1024 per torch thread), so that the hidden activations stay in cache.
        """
        b, s, d = theta.shape
        z = self._z(theta).reshape(b * s, d)
        if cond is not None:
            cond = cond.unsqueeze(1).expand(b, s, cond.shape[-1]).reshape(b * s, -1)
        if rows is None:
            rows = 1024 * max(1, torch.get_num_threads()) if z.device.type == "cpu" else b * s
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


def build_approximator(inference, summary, shapes):
    """Build the torch model for the role sizes ``shapes`` from the hyperparameter holders."""
    summary_dim, summary_module = 0, None
    if summary is not None:
        summary_module = summary.build(shapes["summary_variables"])
        summary_dim = int(summary_module.summary_dim)
    n_cond = shapes.get("inference_conditions", 0)
    inference_module = inference.build(shapes["inference_variables"], summary_dim + n_cond)
    return Approximator(inference_module, summary_module, shapes["inference_variables"], n_cond,
                        shapes.get("summary_variables", 0))
