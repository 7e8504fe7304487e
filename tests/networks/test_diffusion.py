"""Diffusion model (EDM): the denoiser's exact Gaussian limit, ODE log density, sampling."""

import math

import pytest
import torch

from skabi.exceptions import ShapeError
from skabi.networks import DiffusionModel

from ode_checks import histogram_gap_1d, mass_and_distance_from_normal_1d
from ode_checks import perturbed as _perturbed


def _zero_output(net):
    with torch.no_grad():
        net.net.body[-1].weight.zero_()
        net.net.body[-1].bias.zero_()
    return net


def test_zero_network_is_the_exact_denoiser_of_a_standard_normal():
    """With F = 0 the preconditioned denoiser is x / (1 + sigma^2): the exact posterior mean
    of theta ~ N(0, I) given theta + sigma n. Its ODE density is then N(0, I) (blurred by
    sigma_min) and its draws are standard normal."""
    net = _zero_output(DiffusionModel(subnet_width=8, steps=100).build(3, 2).double())
    x, sigma = torch.randn(5, 3, dtype=torch.float64), torch.tensor(0.7, dtype=torch.float64)
    cond = torch.randn(5, 2, dtype=torch.float64)
    torch.testing.assert_close(net.denoise(x, sigma, cond), x / (1 + 0.49))
    theta = torch.randn(10, 3, dtype=torch.float64)
    expected = -0.5 * (theta.square().sum(-1) + 3 * math.log(2 * math.pi))
    torch.testing.assert_close(net.log_prob(theta, cond[:1].expand(10, 2)), expected,
                               rtol=0, atol=1e-2)
    draws = net.sample(4000, cond[:2], generator=torch.Generator().manual_seed(0))
    assert draws.shape == (2, 4000, 3)
    assert draws.mean(1).abs().max() < 0.07 and (draws.std(1) - 1).abs().max() < 0.05


def test_log_density_integrates_to_one_in_1d():
    net = _perturbed(DiffusionModel(subnet_width=16, subnet_depth=2, steps=60), 1, 0)
    mass, distance = mass_and_distance_from_normal_1d(net)
    assert abs(mass - 1.0) < 0.02, mass
    assert distance > 0.01        # the denoiser is not trivial


def test_log_prob_agrees_with_samples_in_1d():
    """Histogram of Heun draws against exp(log_prob) of the same ODE."""
    net = _perturbed(DiffusionModel(subnet_width=16, subnet_depth=2, steps=60), 1, 0)
    assert histogram_gap_1d(net) < 0.015


def test_noise_levels_follow_the_rho_schedule():
    net = DiffusionModel(steps=5, sigma_min=0.01, sigma_max=10.0, rho=7.0).build(1, 0)
    levels = net.noise_levels(dtype=torch.float64)
    assert levels.shape == (6,) and levels[-1] == 0
    torch.testing.assert_close(levels[[0, 4]], torch.tensor([10.0, 0.01], dtype=torch.float64))
    steps = levels[:-1] ** (1 / 7)
    torch.testing.assert_close(steps.diff(), steps.diff()[:1].expand(4))  # equal in sigma^(1/rho)


@pytest.mark.parametrize("cond_dim", [0, 2])
def test_sample_shapes_and_reproducibility(cond_dim):
    net = _perturbed(DiffusionModel(subnet_width=8, steps=4), 3, cond_dim, dtype=torch.float32)
    cond = torch.randn(5, cond_dim) if cond_dim else None
    draws = net.sample(6, cond, generator=torch.Generator().manual_seed(1))
    assert draws.shape == ((5, 6, 3) if cond_dim else (1, 6, 3))
    again = net.sample(6, cond, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(draws, again, rtol=0, atol=0)
    assert not torch.allclose(draws, net.sample(6, cond, generator=torch.Generator().manual_seed(2)))


def test_chunked_sampling_equals_one_block(monkeypatch):
    net = _perturbed(DiffusionModel(subnet_width=8, steps=3), 2, 2, dtype=torch.float32)
    cond = torch.randn(3, 2)
    draws = net.sample(500, cond, generator=torch.Generator().manual_seed(0))
    chunked = type(net)._chunked
    monkeypatch.setattr(net, "_chunked", lambda fn, z, c: chunked(fn, z, c, rows=10**9))
    one_block = net.sample(500, cond, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(draws, one_block, rtol=1e-5, atol=1e-5)


def test_loss_is_the_weighted_denoising_error_and_backpropagates():
    """The loss weight makes the zero network's loss E|c_skip x - theta|^2 lambda finite and
    its gradient reaches every weight; float64 throughout."""
    net = _perturbed(DiffusionModel(subnet_width=8, steps=4), 2, 1)
    theta, cond = torch.randn(64, 2, dtype=torch.float64), torch.randn(64, 1, dtype=torch.float64)
    torch.manual_seed(0)
    loss = net.loss(theta, cond)
    assert loss.dtype == torch.float64 and loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    # with F = 0 the target of the network has unit variance at every noise level: the loss
    # of the zero network is about dim for standard normal theta
    zero = _zero_output(DiffusionModel(subnet_width=8).build(2, 0).double())
    torch.manual_seed(1)
    big = torch.randn(20000, 2, dtype=torch.float64)
    assert abs(zero.loss(big).item() - 2.0) < 0.1


def test_shape_errors():
    net = DiffusionModel(subnet_width=4, steps=2).build(2, 3)
    with pytest.raises(ShapeError, match="theta"):
        net.loss(torch.randn(4, 5), torch.randn(4, 3))
    with pytest.raises(ShapeError, match="condition"):
        net.sample(2)
