"""Hyperparameter holders: sklearn params contract, build, clear errors."""

import inspect

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, clone

from skabi.networks import (CouplingFlow, DeepSet, DiffusionModel, FlowMatching,
                            InferenceNetwork, SetTransformer, SummaryNetwork, TimeSeriesNetwork)

INFERENCE = [CouplingFlow, FlowMatching, DiffusionModel]
SUMMARY = [DeepSet, SetTransformer, TimeSeriesNetwork]


@pytest.mark.parametrize("cls", INFERENCE + SUMMARY)
def test_clone_get_set_params_round_trip(cls):
    holder = cls()
    assert isinstance(holder, BaseEstimator)
    params = holder.get_params()
    assert params and vars(holder) == params  # __init__ stores exactly its params
    twin = clone(holder)
    assert twin is not holder and twin.get_params() == params
    key = next(k for k, v in params.items() if isinstance(v, int) and not isinstance(v, bool))
    holder.set_params(**{key: params[key] + 1})
    assert holder.get_params()[key] == params[key] + 1
    assert clone(holder).get_params()[key] == params[key] + 1


def test_nested_params_route_like_grid_search():
    class Owner(BaseEstimator):
        def __init__(self, inference_network=None, summary_network=None):
            self.inference_network = inference_network
            self.summary_network = summary_network

    owner = Owner(CouplingFlow(), DeepSet())
    owner.set_params(inference_network__depth=3, summary_network__summary_dim=4)
    assert owner.get_params(deep=True)["inference_network__depth"] == 3
    assert clone(owner).summary_network.summary_dim == 4


def test_build_returns_fresh_float32_modules_with_contract_attributes():
    flow = CouplingFlow(depth=2)
    a, b = flow.build(3, 2), flow.build(3, 2)
    assert a is not b and not hasattr(flow, "module_")
    assert (a.dim, a.condition_dim) == (3, 2)
    assert all(p.dtype == torch.float32 for p in a.parameters())
    for cls in SUMMARY:
        net = cls(summary_dim=6).build(4)
        assert net.summary_dim == 6 and isinstance(cls(), SummaryNetwork)
    assert isinstance(FlowMatching(), InferenceNetwork)


@pytest.mark.parametrize("cls", INFERENCE + SUMMARY)
def test_every_parameter_has_a_sklearn_constraint(cls):
    """One validation style: build checks ``_parameter_constraints``, which covers __init__."""
    init = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert set(cls._parameter_constraints) == init


@pytest.mark.parametrize("cls,name", [(cls, name) for cls in INFERENCE + SUMMARY
                                      for name in sorted(cls().get_params())])
def test_a_bad_value_of_every_parameter_fails_in_build_naming_it(cls, name):
    holder = cls(**{name: "bogus"})
    with pytest.raises(ValueError, match=f"'{name}' parameter of {cls.__name__} .*Got 'bogus'"):
        holder.build(2, 1) if cls in INFERENCE else holder.build(3)


def test_numpy_scalars_from_a_grid_reach_the_module_as_python_numbers():
    holder = CouplingFlow(depth=np.int64(2), dropout=np.float64(0.1), clamp=np.float32(2.0),
                          actnorm=np.bool_(True))
    net = holder.build(np.int64(3), np.int64(1))
    assert type(net.dim) is int and type(net.condition_dim) is int and len(net.couplings) == 2
    assert type(net.couplings[0].clamp) is float
    net = TimeSeriesNetwork(summary_dim=np.int32(3), bidirectional=np.bool_(True)).build(2)
    assert net.summary_dim == 3 and net.num_dirs == 2


def test_reference_parameter_count():
    """DeepSet(4->64->64, mean, 64->64->8) + 6-layer affine flow (dim 4, cond 8): ~120k."""
    n = sum(p.numel() for p in DeepSet(summary_dim=8).build(4).parameters())
    n += sum(p.numel() for p in CouplingFlow(depth=6).build(4, 8).parameters())
    assert 110_000 < n < 130_000


BAD_INFERENCE = [
    (CouplingFlow(depth=0), "'depth'"),
    (CouplingFlow(depth=2.5), "'depth'"),
    (CouplingFlow(depth=True), "'depth'.*Got True"),
    (CouplingFlow(transform="affline"), "'transform'.*'affine'.*'affline'.*mean 'affine'"),
    (CouplingFlow(subnet_width=-1), "'subnet_width'"),
    (CouplingFlow(activation="sigmoidal"), "'activation'"),
    (CouplingFlow(dropout=1.0), "'dropout'"),
    (CouplingFlow(dropout=float("nan")), "'dropout'"),
    (CouplingFlow(permutation="shuffle"), "'permutation'"),
    (CouplingFlow(actnorm="yes"), "'actnorm'"),
    (CouplingFlow(clamp=0), "'clamp'"),
    (CouplingFlow(clamp=float("inf")), "'clamp'"),
    (CouplingFlow(bins=1), "'bins'"),
    (CouplingFlow(tail_bound=-3.0), "'tail_bound'"),
    (FlowMatching(steps=0), "'steps'"),
    (FlowMatching(integrator="rk45"), "'integrator'"),
    (FlowMatching(sigma_min=-0.1), "'sigma_min'"),
    (FlowMatching(time_embedding_dim=0), "'time_embedding_dim'"),
    (FlowMatching(subnet_depth=True), "'subnet_depth'"),
    (DiffusionModel(sigma_min=0.0), "'sigma_min'"),
    (DiffusionModel(sigma_min=2.0, sigma_max=1.0), "sigma_min < sigma_max. Got sigma_min=2.0"),
    (DiffusionModel(p_std=-1.0), "'p_std'"),
    (DiffusionModel(steps=0), "'steps'"),
    (DiffusionModel(backbone="resnet"), "'backbone'.*'resnet'"),
    (FlowMatching(backbone="residul"), "'backbone'.*Did you mean 'residual'"),
    (CouplingFlow(backbone="resnet"), "'backbone'.*'resnet'"),
]


@pytest.mark.parametrize("holder,match", BAD_INFERENCE)
def test_bad_inference_hyperparameters_fail_in_build(holder, match):
    clone(holder)  # storing is fine
    with pytest.raises(ValueError, match=match) as info:
        holder.build(2, 1)
    assert "Got" in str(info.value) and type(holder).__name__ in str(info.value)


def test_bad_dims_fail_in_build():
    with pytest.raises(ValueError, match="'dim' parameter of CouplingFlow.build.*Got 0"):
        CouplingFlow().build(0, 1)
    with pytest.raises(ValueError,
                       match="'condition_dim' parameter of FlowMatching.build.*Got -1"):
        FlowMatching().build(2, -1)
    with pytest.raises(ValueError, match="'dim'.*Got 2.0"):
        FlowMatching().build(2.0, 1)
    for cls in SUMMARY:
        with pytest.raises(ValueError, match=f"'feature_dim' parameter of {cls.__name__}.build"):
            cls().build(0)
    with pytest.raises(ValueError, match="'feature_dim'.*Got True"):
        DeepSet().build(True)


BAD_SUMMARY = [
    (DeepSet(summary_dim=0), "'summary_dim'"),
    (DeepSet(pooling="median"), "'pooling'.*'median'"),
    (DeepSet(pooling="mean+mean"), "'pooling'.*'mean\\+mean'"),
    (DeepSet(pooling=None), "'pooling'.*Got None"),
    (DeepSet(num_equivariant=-1), "'num_equivariant'"),
    (DeepSet(moment_dim=-1), "'moment_dim'"),
    (DeepSet(moment_dim=2.5), "'moment_dim'"),
    (SetTransformer(embed_dim=30, num_heads=4), "'embed_dim'.*num_heads=4.*30"),
    (SetTransformer(num_inducing_points=-2), "'num_inducing_points'"),
    (SetTransformer(layer_norm=None), "'layer_norm'"),
    (TimeSeriesNetwork(recurrent="rnn"), "'recurrent'.*'rnn'"),
    (TimeSeriesNetwork(recurrent="gr"), "'recurrent'.*'gr'.*Did you mean 'gru'"),
    (TimeSeriesNetwork(bidirectional=1), "'bidirectional'"),
    (TimeSeriesNetwork(kernel_size=0), "'kernel_size'"),
]


@pytest.mark.parametrize("holder,match", BAD_SUMMARY)
def test_bad_summary_hyperparameters_fail_in_build(holder, match):
    clone(holder)  # storing is fine
    with pytest.raises(ValueError, match=match) as info:
        holder.build(3)
    assert "Got" in str(info.value) and type(holder).__name__ in str(info.value)


@pytest.mark.parametrize("holder", [CouplingFlow(depth=3, permutation="lu"),
                                    CouplingFlow(depth=3, transform="spline"),
                                    FlowMatching(subnet_width=8, steps=3),
                                    DiffusionModel(subnet_width=8, steps=3),
                                    FlowMatching(subnet_width=8, steps=3, backbone="residual"),
                                    CouplingFlow(depth=2, transform="spline",
                                                 backbone="residual")])
def test_state_dict_round_trip_into_a_fresh_build(holder, tmp_path):
    """What persistence does: build again (other seed), load the saved weights."""
    torch.manual_seed(0)
    net = holder.build(3, 2)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    torch.save(net.state_dict(), tmp_path / "w.pt")
    torch.manual_seed(1)
    fresh = clone(holder).build(3, 2)
    fresh.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    theta, cond = torch.randn(5, 3), torch.randn(5, 2)
    torch.testing.assert_close(fresh.log_prob(theta, cond), net.log_prob(theta, cond))
    gen = torch.Generator().manual_seed(0)
    draws = net.sample(4, cond, generator=gen)
    torch.testing.assert_close(fresh.sample(4, cond, generator=gen.manual_seed(0)), draws)


@pytest.mark.parametrize("holder", [DeepSet(num_equivariant=1), DeepSet(moment_dim=3),
                                    SetTransformer(num_inducing_points=3), TimeSeriesNetwork()])
def test_summary_state_dict_round_trip(holder):
    torch.manual_seed(0)
    net = holder.build(2).eval()
    torch.manual_seed(1)
    fresh = clone(holder).build(2).eval()
    fresh.load_state_dict(net.state_dict())
    x = torch.randn(3, 7, 2)
    torch.testing.assert_close(fresh(x), net(x))
