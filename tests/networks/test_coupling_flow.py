"""Coupling flows: exact log density, invertibility, sampling, float64."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skabi.exceptions import ShapeError
from skabi.networks import CouplingFlow
from skabi.networks._spline import rq_spline


def _perturbed(holder, dim, cond_dim, scale=0.1, seed=0, linear=True):
    """A built flow with every weight moved off its start; ``linear``: the linear layer
    switched on too, as after a warm-up."""
    torch.manual_seed(seed)
    net = holder.build(dim, cond_dim).double()
    net.switch_linear_on(linear)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn_like(p))
    return net


def _data(dim, cond_dim, n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    theta = 2.0 * torch.randn(n, dim, generator=g, dtype=torch.float64)
    cond = torch.randn(n, cond_dim, generator=g, dtype=torch.float64) if cond_dim else None
    return theta, cond


@pytest.mark.parametrize("transform", ["affine", "spline"])
@pytest.mark.parametrize("dim", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("cond_dim", [0, 3])
@pytest.mark.parametrize("backbone", ["mlp", "residual"])
def test_log_prob_matches_autograd_jacobian(transform, dim, cond_dim, backbone):
    net = _perturbed(CouplingFlow(depth=3, transform=transform, subnet_width=16,
                                  permutation="lu", tail_bound=3.0, backbone=backbone),
                     dim, cond_dim)
    theta, cond = _data(dim, cond_dim)
    z, logdet = net.forward_transform(theta, cond)
    expected = []
    for b in range(theta.shape[0]):
        c = None if cond is None else cond[b:b + 1]
        jac = torch.autograd.functional.jacobian(
            lambda t: net.forward_transform(t[None], c)[0][0], theta[b])
        expected.append(torch.linalg.slogdet(jac)[1])
    expected = torch.stack(expected)
    torch.testing.assert_close(logdet, expected, rtol=1e-7, atol=1e-7)
    # the flow is non-trivial (the perturbation took effect)
    assert (logdet.abs() > 1e-3).all()
    base = -0.5 * (z.square().sum(-1) + dim * math.log(2 * math.pi))
    torch.testing.assert_close(net.log_prob(theta, cond), base + logdet)


@pytest.mark.parametrize("permutation", ["random", "swap", "orthogonal", "none"])
@pytest.mark.parametrize("actnorm", [True, False])
def test_log_det_for_every_permutation_and_actnorm(permutation, actnorm):
    net = _perturbed(CouplingFlow(depth=3, permutation=permutation, actnorm=actnorm,
                                  subnet_width=8), 3, 2, scale=0.3)
    theta, cond = _data(3, 2, n=3)
    _, logdet = net.forward_transform(theta, cond)
    for b in range(3):
        jac = torch.autograd.functional.jacobian(
            lambda t: net.forward_transform(t[None], cond[b:b + 1])[0][0], theta[b])
        torch.testing.assert_close(logdet[b], torch.linalg.slogdet(jac)[1])


@pytest.mark.parametrize("transform", ["affine", "spline"])
@pytest.mark.parametrize("permutation", ["random", "swap", "orthogonal", "lu", "none"])
@pytest.mark.parametrize("dim", [1, 2, 5])
def test_inverse_of_forward_is_identity(transform, permutation, dim):
    net = _perturbed(CouplingFlow(depth=4, transform=transform, permutation=permutation,
                                  subnet_width=16), dim, 2)
    theta, cond = _data(dim, 2, n=50)
    theta[0] = 7.0  # outside the spline's tail bound: identity tails
    z, _ = net.forward_transform(theta, cond)
    assert not torch.allclose(z, theta, atol=1e-3)
    torch.testing.assert_close(net.inverse_transform(z, cond), theta, rtol=1e-6, atol=1e-6)


def test_spline_zero_params_is_identity_and_monotone():
    x = torch.linspace(-6, 6, 101, dtype=torch.float64)
    y, ld = rq_spline(x, torch.zeros(101, 3 * 5 - 1, dtype=torch.float64), 3.0, inverse=False)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(ld, torch.zeros_like(ld))
    gen = torch.Generator().manual_seed(0)
    params = 3 * torch.randn(1, 14, dtype=torch.float64, generator=gen)
    y, ld = rq_spline(x, params.expand(101, -1), 3.0, inverse=False)
    assert (y.diff() > 0).all()
    torch.testing.assert_close(y[x.abs() >= 3], x[x.abs() >= 3])


@pytest.mark.parametrize("transform", ["affine", "spline"])
@pytest.mark.parametrize("backbone", ["mlp", "residual"])
def test_new_flow_is_identity(transform, backbone):
    torch.manual_seed(0)
    net = CouplingFlow(transform=transform, permutation="none", backbone=backbone).build(3, 2)
    theta = torch.randn(8, 3)
    z, logdet = net.forward_transform(theta, torch.randn(8, 2))
    torch.testing.assert_close(z, theta)
    torch.testing.assert_close(logdet, torch.zeros(8))


@pytest.mark.parametrize("transform", ["affine", "spline"])
@pytest.mark.parametrize("cond_dim", [0, 3])
def test_sample_shapes_and_generator_reproducibility(transform, cond_dim):
    net = _perturbed(CouplingFlow(depth=2, transform=transform, subnet_width=8), 2, cond_dim)
    net = net.float()
    cond = torch.randn(5, cond_dim) if cond_dim else None
    draws = net.sample(7, cond, generator=torch.Generator().manual_seed(3))
    assert draws.shape == ((5, 7, 2) if cond_dim else (1, 7, 2))
    assert draws.dtype == torch.float32
    again = net.sample(7, cond, generator=torch.Generator().manual_seed(3))
    other = net.sample(7, cond, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(draws, again, rtol=0, atol=0)
    assert not torch.allclose(draws, other)


@pytest.mark.parametrize("backbone", ["mlp", "residual"])
def test_chunked_sampling_matches_direct_inverse(backbone):
    """Many draws of one condition read it once per coupling, broadcast against them."""
    net = _perturbed(CouplingFlow(depth=3, subnet_width=8, backbone=backbone), 3, 2).float()
    cond = torch.randn(4, 2)
    draws = net.sample(700, cond, generator=torch.Generator().manual_seed(0))  # 2800 rows
    z = torch.randn((4, 700, 3), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        direct = net.inverse_transform(z, cond[:, None])
    torch.testing.assert_close(draws, direct, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("transform", ["affine", "spline"])
def test_float64_sample_and_log_prob(transform):
    net = _perturbed(CouplingFlow(depth=2, transform=transform, subnet_width=8), 2, 1)
    cond = torch.randn(3, 1, dtype=torch.float64)
    draws = net.sample(4, cond, generator=torch.Generator().manual_seed(0))
    assert draws.dtype == torch.float64 and draws.shape == (3, 4, 2)
    lp = net.log_prob(draws[:, 0], cond)
    assert lp.dtype == torch.float64 and lp.shape == (3,) and torch.isfinite(lp).all()


@pytest.mark.parametrize("backbone", ["mlp", "residual"])
@pytest.mark.parametrize("dim", [1, 3])
def test_loss_backward_reaches_all_parameters(backbone, dim):
    torch.manual_seed(0)
    net = CouplingFlow(depth=2, subnet_width=8, permutation="lu",
                       backbone=backbone).build(dim, 2)
    net.switch_linear_on()                # the linear layer, as after a warm-up
    for p in net.linear_parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    net.train()
    net.loss(torch.randn(16, dim), torch.randn(16, 2)).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_shape_errors():
    net = CouplingFlow(depth=1, subnet_width=4).build(2, 3)
    with pytest.raises(ShapeError, match="theta"):
        net.log_prob(torch.randn(4, 3), torch.randn(4, 3))
    with pytest.raises(ShapeError, match="condition"):
        net.log_prob(torch.randn(4, 2))
    with pytest.raises(ShapeError, match="condition"):
        net.sample(3, torch.randn(4, 2))


def test_spline_inverse_undoes_forward_with_opposite_log_det():
    gen = torch.Generator().manual_seed(1)
    x = 4 * torch.randn(500, dtype=torch.float64, generator=gen)
    params = 2 * torch.randn(500, 3 * 6 - 1, dtype=torch.float64, generator=gen)
    y, ld = rq_spline(x, params, 3.0, inverse=False)
    x_back, inv_ld = rq_spline(y, params, 3.0, inverse=True)
    torch.testing.assert_close(x_back, x)
    torch.testing.assert_close(inv_ld, -ld)
    grad, = torch.autograd.grad(rq_spline(x.requires_grad_(), params, 3.0, False)[0].sum(), x)
    torch.testing.assert_close(ld, grad.log())


@settings(max_examples=15, deadline=None, derandomize=True)
@given(dim=st.integers(1, 5), cond_dim=st.integers(0, 3), n=st.integers(1, 6),
       transform=st.sampled_from(["affine", "spline"]),
       permutation=st.sampled_from(["random", "swap", "orthogonal", "lu"]),
       backbone=st.sampled_from(["mlp", "residual"]),
       seed=st.integers(0, 2**16), spread=st.floats(0.1, 8.0))
def test_property_invertible_with_exact_log_det(dim, cond_dim, n, transform, permutation,
                                                 backbone, seed, spread):
    net = _perturbed(CouplingFlow(depth=2, transform=transform, permutation=permutation,
                                  subnet_width=8, tail_bound=3.0, backbone=backbone),
                     dim, cond_dim, seed=seed)
    theta, cond = _data(dim, cond_dim, n=n, seed=seed)
    theta = theta * spread
    z, logdet = net.forward_transform(theta, cond)
    torch.testing.assert_close(net.inverse_transform(z, cond), theta, rtol=1e-6, atol=1e-6)
    c = None if cond is None else cond[:1]
    jac = torch.autograd.functional.jacobian(
        lambda t: net.forward_transform(t[None], c)[0][0], theta[0])
    torch.testing.assert_close(logdet[0], torch.linalg.slogdet(jac)[1], rtol=1e-6, atol=1e-6)


def _autograd_spline(x, params, bound):
    """The forward spline as plain autograd operations: the reference for the backward."""
    from skabi.networks._spline import _knots

    table, _, _ = _knots(params, bound)
    xc = x.clamp(-bound, bound)
    idx = (xc[..., None] >= table[..., 0, 1:-1]).sum(-1, keepdim=True)
    lo = torch.gather(table, -1, idx.unsqueeze(-2).expand(idx.shape[:-1] + (3, 1)))[..., 0]
    hi = torch.gather(table, -1, (idx + 1).unsqueeze(-2).expand(idx.shape[:-1] + (3, 1)))[..., 0]
    (x0, y0, d0), (x1, y1, d1) = lo.unbind(-1), hi.unbind(-1)
    w, h = x1 - x0, y1 - y0
    s, t = h / w, (xc - x0) / w
    tau = t * (1 - t)
    den = s + (d0 + d1 - 2 * s) * tau
    y = y0 + h * (s * t ** 2 + d0 * tau) / den
    ld = (2 * s.log() + (d1 * t ** 2 + 2 * s * tau + d0 * (1 - t) ** 2).log() - 2 * den.log())
    inside = x.abs() < bound
    return torch.where(inside, y, x), torch.where(inside, ld, torch.zeros_like(ld))


@pytest.mark.parametrize("bins", [2, 3, 8])
def test_spline_backward_matches_finite_differences_and_autograd(bins):
    # the forward spline has a hand-written backward (one autograd node); check it
    gen = torch.Generator().manual_seed(bins)
    x = 2.5 * torch.randn(24, 2, dtype=torch.float64, generator=gen)
    x[0, 0], x[1, 1], x[2, 0] = 4.0, -3.5, 2.9999  # identity tails and the last bin's edge
    params = 1.5 * torch.randn(24, 2, 3 * bins - 1, dtype=torch.float64, generator=gen)
    x.requires_grad_()
    params.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, p: rq_spline(a, p, 3.0, False), (x, params))
    # both outputs, each alone, with weights: same gradients as plain autograd
    gy, gl = torch.randn(24, 2, dtype=torch.float64, generator=gen), torch.randn(
        24, 2, dtype=torch.float64, generator=gen)
    y, ld = rq_spline(x, params, 3.0, False)
    y_ref, ld_ref = _autograd_spline(x, params, 3.0)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(ld, ld_ref)
    for weight_y, weight_l in [(gy, gl), (gy, 0), (0, gl)]:
        got = torch.autograd.grad((y * weight_y + ld * weight_l).sum(), (x, params),
                                  retain_graph=True)
        want = torch.autograd.grad((y_ref * weight_y + ld_ref * weight_l).sum(), (x, params),
                                   retain_graph=True)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w)


def test_spline_flow_trains_in_float32_with_the_fast_backward():
    # one optimizer step through a whole spline flow lowers the loss on a fixed batch
    torch.manual_seed(0)
    net = CouplingFlow(depth=3, transform="spline", subnet_width=16).build(3, 2)
    theta, cond = 0.5 * torch.randn(64, 3) + 1.0, torch.randn(64, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = net.loss(theta, cond)
    for _ in range(20):
        opt.zero_grad()
        net.loss(theta, cond).backward()
        opt.step()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.requires_grad)
    assert net.loss(theta, cond) < first - 0.1


def test_linear_layer_is_off_until_switched_on_and_loads_into_old_files():
    """Online fits never switch the linear layer on: the flow is then the same function
    as without it, and a state dict written before it existed loads (layer off)."""
    net = _perturbed(CouplingFlow(depth=2, subnet_width=8), 3, 2, linear=False)
    theta, cond = _data(3, 2)
    before = net.log_prob(theta, cond)
    with torch.no_grad():
        net.lin_weight.add_(1.0)
    torch.testing.assert_close(net.log_prob(theta, cond), before)   # off: not read
    net.switch_linear_on()
    assert not torch.allclose(net.log_prob(theta, cond), before)
    old = {k: v for k, v in net.state_dict().items() if not k.startswith("lin_")}
    fresh = CouplingFlow(depth=2, subnet_width=8).build(3, 2).double()
    fresh.load_state_dict(old)
    assert not bool(fresh.lin_active) and not fresh.linear_on
    torch.testing.assert_close(fresh.log_prob(theta, cond), before)


def test_linear_only_is_the_gaussian_of_the_linear_layer():
    """During the warm-up the density is that of the linear layer alone, which is the
    whole flow's while the rest is at its identity start."""
    net = CouplingFlow(depth=3, subnet_width=8, permutation="lu").build(2, 3).double()
    with torch.no_grad():
        net.lin_weight.normal_()
        net.lin_bias.normal_()
    theta, cond = _data(2, 3)
    shift, log_scale = (torch.nn.functional.linear(cond, net.lin_weight, net.lin_bias)
                        .chunk(2, dim=-1))
    exact = torch.distributions.Normal(shift, log_scale.exp()).log_prob(theta).sum(-1)
    net.linear_only = True
    torch.testing.assert_close(net.log_prob(theta, cond), exact)
    net.linear_only = False
    net.switch_linear_on()
    torch.testing.assert_close(net.log_prob(theta, cond), exact)   # rest at identity
    draws = net.sample(20000, cond[:1], generator=torch.Generator().manual_seed(0))[0]
    torch.testing.assert_close(draws.mean(0), shift[0], atol=0.05, rtol=0)
