"""Checks shared by the tests of the ODE networks (flow matching, diffusion)."""

import torch


def perturbed(holder, dim, cond_dim, scale=0.3, seed=0, dtype=torch.float64):
    """A fresh module with every weight moved at random (a non-trivial field)."""
    torch.manual_seed(seed)
    net = holder.build(dim, cond_dim).to(dtype)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn_like(p))
    return net


def mass_and_distance_from_normal_1d(net):
    """Mass of exp(log_prob) of a 1-D module on [-12, 12], and its largest distance from the
    standard normal density (the base: a field that does nothing)."""
    grid = torch.linspace(-12, 12, 2001, dtype=torch.float64)
    density = net.log_prob(grid[:, None]).exp()
    base = torch.distributions.Normal(0.0, 1.0).log_prob(grid).exp()
    return torch.trapezoid(density, grid).item(), (density - base).abs().max().item()


def histogram_gap_1d(net, n_draws=20000):
    """Largest gap between the share of a 1-D module's draws in 12 bins on [-3, 3] and the
    mass its log_prob gives each bin."""
    draws = net.sample(n_draws, generator=torch.Generator().manual_seed(0))[0, :, 0]
    edges = torch.linspace(-3, 3, 13, dtype=torch.float64)
    counts = torch.histogram(draws, edges).hist / draws.numel()
    fine = torch.linspace(-3, 3, 1201, dtype=torch.float64)
    dens = net.log_prob(fine[:, None]).exp()
    probs = torch.stack([torch.trapezoid(dens[i * 100:(i + 1) * 100 + 1],
                                         fine[i * 100:(i + 1) * 100 + 1]) for i in range(12)])
    return (counts - probs).abs().max().item()
