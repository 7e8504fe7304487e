"""Summary networks: permutation invariance, padding + mask, varying lengths, float64."""

import pytest
import torch

from skabi.exceptions import ShapeError
from skabi.networks import DeepSet, SetTransformer, TimeSeriesNetwork

SET_HOLDERS = [
    DeepSet(summary_dim=5),
    DeepSet(summary_dim=5, pooling="mean+max+sum+min", num_equivariant=2),
    SetTransformer(summary_dim=5, embed_dim=16, num_heads=2),
    SetTransformer(summary_dim=5, embed_dim=16, num_heads=2, num_inducing_points=4,
                   num_seeds=2),
]
IDS = ["deepset", "deepset-equivariant", "sab", "isab"]


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


@pytest.mark.parametrize("holder", SET_HOLDERS[:3] + [TimeSeriesNetwork(summary_dim=5)],
                         ids=IDS[:3] + ["time-series"])
def test_float64_and_backward(holder):
    net = _build(holder, 3).double().train()
    x = torch.randn(4, 9, 3, dtype=torch.float64)
    mask = torch.arange(9) < torch.tensor([9, 5, 2, 7])[:, None]
    out = net(x, mask)
    assert out.dtype == torch.float64 and out.shape == (4, 5)
    assert net.summary_dim == 5
    out.square().sum().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("holder", [SET_HOLDERS[0], SET_HOLDERS[2], TimeSeriesNetwork()],
                         ids=["deepset", "sab", "time-series"])
def test_shape_errors(holder):
    net = _build(holder, 3)
    with pytest.raises(ShapeError, match="'x'"):
        net(torch.randn(4, 9, 2))
    with pytest.raises(ShapeError, match="'mask'"):
        net(torch.randn(4, 9, 3), torch.ones(4, 8, dtype=torch.bool))
