"""Each inference network learns a known 2-D conditional Gaussian.

theta | c ~ N(A c, diag(s^2)), c ~ N(0, I). After a few hundred Adam steps on fresh
simulations the held-out mean log q(theta | c) must be within TOL nats of the true mean
log density on the same draws. Seeds are fixed; 4 seeds were checked to land within
0.016 nats, so TOL = 0.05 leaves a wide margin. A network that ignores the condition
misses by about 0.9 nats.
"""

import pytest
import torch

from skabi.networks import CouplingFlow, DiffusionModel, FlowMatching

A = torch.tensor([[1.0, 0.5], [-0.5, 1.0]])
S = torch.tensor([0.5, 0.3])
TOL = 0.05


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _simulate(n, generator):
    c = torch.randn(n, 2, generator=generator)
    theta = c @ A.T + S * torch.randn(n, 2, generator=generator)
    return theta, c


def _gap_after_training(holder, steps, seed=0, lr=3e-3, batch=128):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = holder.build(2, 2)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    net.train()
    for _ in range(steps):
        theta, c = _simulate(batch, gen)
        opt.zero_grad()
        net.loss(theta, c).backward()
        opt.step()
        sched.step()
    net.eval()
    theta, c = _simulate(2000, torch.Generator().manual_seed(12345))
    with torch.no_grad():
        q = net.log_prob(theta, c).mean()
    true = torch.distributions.Normal(c @ A.T, S).log_prob(theta).sum(-1).mean()
    return (q - true).item()


def test_affine_coupling_flow_learns_conditional_gaussian():
    gap = _gap_after_training(CouplingFlow(depth=4, subnet_width=64), steps=300)
    assert abs(gap) < TOL, gap


def test_residual_coupling_flow_learns_conditional_gaussian():
    gap = _gap_after_training(CouplingFlow(depth=4, subnet_width=64, backbone="residual",
                                           subnet_depth=1), steps=300)
    assert abs(gap) < TOL, gap


@pytest.mark.slow
def test_spline_coupling_flow_learns_conditional_gaussian():
    gap = _gap_after_training(CouplingFlow(depth=4, transform="spline", subnet_width=64),
                              steps=300)
    assert abs(gap) < TOL, gap


def test_flow_matching_learns_conditional_gaussian():
    gap = _gap_after_training(FlowMatching(subnet_width=64, subnet_depth=3, steps=20),
                              steps=1000)
    assert abs(gap) < TOL, gap


def test_residual_flow_matching_learns_conditional_gaussian():
    gap = _gap_after_training(FlowMatching(subnet_width=64, subnet_depth=2, steps=20,
                                           backbone="residual"), steps=1000)
    assert abs(gap) < TOL, gap


def test_diffusion_model_learns_conditional_gaussian():
    """At the default 50 noise levels the ODE log density is within 0.01 nats here (at 30
    levels its discretisation error alone is about +0.05 nats on this target)."""
    gap = _gap_after_training(DiffusionModel(subnet_width=64, subnet_depth=3), steps=1000)
    assert abs(gap) < TOL, gap


def test_untrained_flow_is_far_from_the_target():
    """The check above can fail: an untrained flow misses by more than TOL."""
    gap = _gap_after_training(CouplingFlow(depth=2, subnet_width=8), steps=1)
    assert abs(gap) > 10 * TOL
