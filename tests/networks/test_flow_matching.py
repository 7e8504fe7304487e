"""Flow matching: ODE log density, sampling, reproducibility, float64."""

import math

import pytest
import torch

from skabi.exceptions import ShapeError
from skabi.networks import FlowMatching

from ode_checks import histogram_gap_1d, mass_and_distance_from_normal_1d
from ode_checks import perturbed as _perturbed


def test_zero_velocity_gives_standard_normal():
    net = FlowMatching(subnet_width=8, steps=5).build(3, 2).double()
    with torch.no_grad():
        last = net.net.body[-1]
        last.weight.zero_()
        last.bias.zero_()
    theta = torch.randn(10, 3, dtype=torch.float64)
    expected = -0.5 * (theta.square().sum(-1) + 3 * math.log(2 * math.pi))
    torch.testing.assert_close(net.log_prob(theta, torch.randn(10, 2, dtype=torch.float64)),
                               expected)


@pytest.mark.parametrize("integrator", ["euler", "midpoint", "rk4"])
def test_log_density_integrates_to_one_in_1d(integrator):
    net = _perturbed(FlowMatching(subnet_width=16, subnet_depth=2, steps=40,
                                  integrator=integrator), 1, 0)
    mass, distance = mass_and_distance_from_normal_1d(net)
    assert abs(mass - 1.0) < 0.02, mass
    assert distance > 0.01        # the density is not the base normal (the velocity is non-trivial)


def test_log_prob_agrees_with_samples_in_1d():
    """Histogram of ODE samples matches exp(log_prob) of the same ODE."""
    net = _perturbed(FlowMatching(subnet_width=16, subnet_depth=2, steps=30), 1, 0)
    assert histogram_gap_1d(net) < 0.015


@pytest.mark.parametrize("cond_dim", [0, 2])
def test_sample_shapes_and_reproducibility(cond_dim):
    net = _perturbed(FlowMatching(subnet_width=8, steps=4), 3, cond_dim, dtype=torch.float32)
    cond = torch.randn(5, cond_dim) if cond_dim else None
    draws = net.sample(6, cond, generator=torch.Generator().manual_seed(1))
    assert draws.shape == ((5, 6, 3) if cond_dim else (1, 6, 3))
    again = net.sample(6, cond, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(draws, again, rtol=0, atol=0)
    other = net.sample(6, cond, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(draws, other)


def test_chunked_sampling_equals_one_block(monkeypatch):
    net = _perturbed(FlowMatching(subnet_width=8, steps=3), 2, 2, dtype=torch.float32)
    cond = torch.randn(3, 2)
    draws = net.sample(500, cond, generator=torch.Generator().manual_seed(0))  # 1500 rows
    chunked = type(net)._chunked
    monkeypatch.setattr(net, "_chunked", lambda fn, z, c: chunked(fn, z, c, rows=10**9))
    one_block = net.sample(500, cond, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(draws, one_block, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(draws[0], draws[1])


def test_float64_and_loss_backward():
    net = _perturbed(FlowMatching(subnet_width=8, steps=4), 2, 1)
    theta, cond = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)
    net.train()
    loss = net.loss(theta, cond)
    assert loss.dtype == torch.float64 and loss.dim() == 0
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    net.eval()
    assert net.sample(3, cond, generator=torch.Generator().manual_seed(0)).dtype == torch.float64
    with torch.no_grad():
        lp = net.log_prob(theta, cond)
    assert lp.shape == (8,) and torch.isfinite(lp).all()


def test_shape_errors():
    net = FlowMatching(subnet_width=4, steps=2).build(2, 3)
    with pytest.raises(ShapeError, match="theta"):
        net.loss(torch.randn(4, 5), torch.randn(4, 3))
    with pytest.raises(ShapeError, match="condition"):
        net.sample(2)
