"""Summary networks: permutation invariance, padding + mask, varying lengths, float64."""

import pytest
import torch

from skabi.exceptions import ShapeError
from skabi.networks import DeepSet, SetTransformer, TimeSeriesNetwork

SET_HOLDERS = [
    DeepSet(summary_dim=5),
    DeepSet(summary_dim=5, pooling="mean+max+sum+min", num_equivariant=2),
    DeepSet(summary_dim=5, num_equivariant=1, moment_dim=4),
    SetTransformer(summary_dim=5, embed_dim=16, num_heads=2),
    SetTransformer(summary_dim=5, embed_dim=16, num_heads=2, num_inducing_points=4,
                   num_seeds=2),
]
IDS = ["deepset", "deepset-equivariant", "deepset-moments", "sab", "isab"]


def _build(holder, feature_dim, seed=0):
    torch.manual_seed(seed)
    return holder.build(feature_dim).eval()


def _check_padding_is_masked(net, pieces, length, fill):
    """Pad ``pieces`` (each (n_i, F)) to ``length`` with ``fill``: with the mask each row
    equals the unpadded piece's output; without it the padding changes the result."""
    padded = torch.full((len(pieces), length, pieces[0].shape[-1]), fill)
    mask = torch.zeros(len(pieces), length, dtype=torch.bool)
    for i, piece in enumerate(pieces):
        padded[i, :len(piece)] = piece
        mask[i, :len(piece)] = True
    out = net(padded, mask)
    for i, piece in enumerate(pieces):
        torch.testing.assert_close(out[i], net(piece[None])[0], rtol=0, atol=1e-5)
    assert not torch.allclose(net(padded)[0], out[0], atol=1e-3)


@pytest.mark.parametrize("holder", SET_HOLDERS, ids=IDS)
def test_set_networks_are_permutation_invariant(holder):
    net = _build(holder, 3)
    x = torch.randn(4, 20, 3)
    out = net(x)
    assert out.shape == (4, 5)
    perm = torch.randperm(20)
    torch.testing.assert_close(net(x[:, perm]), out, rtol=0, atol=1e-5)
    mask = torch.arange(20) < torch.tensor([20, 15, 3, 1])[:, None]
    masked = net(x, mask)
    # permuting the elements together with their mask changes nothing
    torch.testing.assert_close(net(x[:, perm], mask[:, perm]), masked, rtol=0, atol=1e-5)


@pytest.mark.parametrize("holder", SET_HOLDERS, ids=IDS)
def test_padding_with_mask_equals_unpadded_set(holder):
    net = _build(holder, 3)
    # garbage in the padding must not matter
    _check_padding_is_masked(net, [torch.randn(n, 3) for n in (7, 12, 1)], 12, 1e3)


@pytest.mark.parametrize("holder", SET_HOLDERS, ids=IDS)
def test_all_padding_set_is_finite(holder):
    net = _build(holder, 2)
    out = net(torch.randn(2, 4, 2), torch.tensor([[True, False, False, False], [False] * 4]))
    assert torch.isfinite(out).all()


def test_deepset_expresses_reference_architecture():
    """4 -> 64 -> 64 per element, mean pooling, 64 -> 64 -> 8 (used by the benchmark)."""
    net = _build(DeepSet(summary_dim=8, width=64, inner_depth=2, outer_depth=2), 4)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (4, 64), (64, 64), (64, 64), (64, 8)]
    x = torch.randn(2, 50, 4)
    inner = net.inner(x)  # F -> 64 -> 64 with activations
    torch.testing.assert_close(net(x), net.outer(inner.mean(1)))


@pytest.mark.parametrize("recurrent", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_time_series_varying_length_and_padding(recurrent, bidirectional):
    net = _build(TimeSeriesNetwork(summary_dim=4, filters=8, kernel_size=3, num_conv=2,
                                   recurrent=recurrent, hidden_size=8,
                                   bidirectional=bidirectional, num_layers=2), 2)
    assert net(torch.randn(3, 30, 2)).shape == (3, 4)
    assert net(torch.randn(3, 11, 2)).shape == (3, 4)
    _check_padding_is_masked(net, [torch.randn(t, 2) for t in (17, 25, 4)], 25, 50.0)


def test_time_series_is_order_sensitive():
    net = _build(TimeSeriesNetwork(summary_dim=4), 1)
    x = torch.randn(2, 20, 1)
    assert not torch.allclose(net(x), net(x.flip(1)), atol=1e-4)


@pytest.mark.parametrize("holder", SET_HOLDERS[:4] + [TimeSeriesNetwork(summary_dim=5)],
                         ids=IDS[:4] + ["time-series"])
def test_float64_and_backward(holder):
    net = _build(holder, 3).double().train()
    x = torch.randn(4, 9, 3, dtype=torch.float64)
    mask = torch.arange(9) < torch.tensor([9, 5, 2, 7])[:, None]
    out = net(x, mask)
    assert out.dtype == torch.float64 and out.shape == (4, 5)
    assert net.summary_dim == 5
    out.square().sum().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("holder", [SET_HOLDERS[0], SET_HOLDERS[3], TimeSeriesNetwork()],
                         ids=["deepset", "sab", "time-series"])
def test_shape_errors(holder):
    net = _build(holder, 3)
    with pytest.raises(ShapeError, match="'x'"):
        net(torch.randn(4, 9, 2))
    with pytest.raises(ShapeError, match="'mask'"):
        net(torch.randn(4, 9, 3), torch.ones(4, 8, dtype=torch.bool))


# ---------------------------------------------------------------- second-order pooling
def _regression_sets(n_sets, n, sigma, dtype=torch.float64, seed=0):
    """Sets of (x, y) pairs, y = 2 + 3 x + sigma e, with a trend much larger than sigma."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n_sets, n, 1, generator=gen, dtype=dtype)
    y = 2.0 + 3.0 * x + sigma * torch.randn(n_sets, n, 1, generator=gen, dtype=dtype)
    return torch.cat([x, y], dim=-1)


@pytest.mark.parametrize("sigma", [1.0, 1e-2])
def test_moment_pool_gives_the_least_squares_fit_of_the_raw_features(sigma):
    """Starting as the identity on the raw features, the pooled moments are the sufficient
    statistics of a regression: means, the slope and log sqrt(RSS / n), in float32 too,
    where the residual sd is 1/300 of the sd of y."""
    from skabi.networks._moments import MomentPool
    sets = _regression_sets(3, 9, sigma)
    pool = MomentPool(in_dim=2, k=2, raw_dim=2)
    out = pool(sets.float(), None).double()
    x, y = sets[..., 0], sets[..., 1]
    xc, yc = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    slope = (xc * yc).sum(1) / xc.square().sum(1)
    rss = (yc - slope[:, None] * xc).square().sum(1)
    expected = torch.stack([x.mean(1), y.mean(1), 0.5 * torch.log(xc.square().mean(1)),
                            0.5 * torch.log(rss / 9), slope], dim=-1)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_moment_pool_masks_padding_and_survives_one_element_sets():
    from skabi.networks._moments import MomentPool
    torch.manual_seed(0)
    pool = MomentPool(in_dim=3, k=3, raw_dim=1)
    pieces = [torch.randn(n, 3) for n in (6, 1, 4)]
    padded = torch.full((3, 6, 3), 1e3)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    for i, piece in enumerate(pieces):
        padded[i, :len(piece)], mask[i, :len(piece)] = piece, True
    padded.requires_grad_(True)
    out = pool(padded, mask)
    for i, piece in enumerate(pieces):
        torch.testing.assert_close(out[i], pool(piece[None], None)[0], rtol=1e-5, atol=1e-5)
    out.sum().backward()                      # a one-element set: residuals 0, no NaN
    assert torch.isfinite(out).all() and torch.isfinite(padded.grad).all()


def test_deepset_moments_change_the_summary_and_keep_it_invariant():
    """moment_dim adds the moments to the outer network's input and a linear path from
    them to the summary; the summary stays permutation invariant and sees the noise scale."""
    sets = _regression_sets(4, 12, 0.1, dtype=torch.float32)
    torch.manual_seed(0)
    with_moments = DeepSet(summary_dim=3, moment_dim=2).build(2).eval()
    out = with_moments(sets)
    perm = torch.randperm(12)
    torch.testing.assert_close(with_moments(sets[:, perm]), out, rtol=0, atol=1e-5)
    # the moments carry the residual scale: shrinking the noise moves the summary
    sharper = _regression_sets(4, 12, 0.01, dtype=torch.float32)
    assert (with_moments(sharper) - out).abs().max() > 1e-2
    n_moment_params = sum(p.numel() for n, p in with_moments.named_parameters()
                          if n.startswith("moment"))
    # two projections of the raw (x, y), none of the per-element features, a 5 -> 3 skip
    assert n_moment_params == (2 + 1) * 2 + 5 * 3


def test_raw_projections_read_the_raw_features_only():
    """Projections of the raw features are not mixed with the per-element features: a
    change of those moves only the moments that involve the other projections."""
    from skabi.networks._moments import MomentPool
    torch.manual_seed(0)
    pool = MomentPool(in_dim=5, k=3, raw_dim=2)
    u = torch.randn(2, 8, 5)
    other = u.clone()
    other[..., 2:] = torch.randn(2, 8, 3)
    a, b = pool(u, None), pool(other, None)
    # layout: means (3), log sds (3), coefficients c21, c31, c32
    same = [0, 1, 3, 4, 6]
    torch.testing.assert_close(a[:, same], b[:, same])
    assert (a[:, [2, 5, 7, 8]] - b[:, [2, 5, 7, 8]]).abs().min() > 1e-4
