"""The estimator's view: build, move to a dtype, train summary + inference jointly, sample."""

import pytest
import torch

from skabi.networks import (CouplingFlow, DeepSet, DiffusionModel, FlowMatching, SetTransformer,
                            TimeSeriesNetwork)


@pytest.mark.parametrize("inference", [CouplingFlow(depth=2, subnet_width=16),
                                       CouplingFlow(depth=2, transform="spline", subnet_width=16),
                                       FlowMatching(subnet_width=16, steps=3),
                                       FlowMatching(subnet_width=16, steps=3, backbone="residual"),
                                       DiffusionModel(subnet_width=16, steps=3),
                                       DiffusionModel(subnet_width=16, steps=3, backbone="residual")],
                         ids=["affine", "spline", "flow-matching", "flow-matching-residual",
                              "diffusion", "diffusion-residual"])
@pytest.mark.parametrize("summary", [DeepSet(summary_dim=4), DeepSet(summary_dim=4, moment_dim=3),
                                     SetTransformer(summary_dim=4),
                                     TimeSeriesNetwork(summary_dim=4)],
                         ids=["deepset", "deepset-moments", "set-transformer", "time-series"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_joint_training_step_and_sampling(inference, summary, dtype):
    torch.manual_seed(0)
    summ = summary.build(3).to("cpu", dtype)
    net = inference.build(2, summ.summary_dim + 1).to("cpu", dtype)
    params = list(summ.parameters()) + list(net.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    x = torch.randn(8, 11, 3, dtype=dtype)
    mask = torch.arange(11) < torch.randint(1, 12, (8, 1))
    extra = torch.randn(8, 1, dtype=dtype)
    theta = torch.randn(8, 2, dtype=dtype)
    summ.train()
    net.train()
    loss = net.loss(theta, torch.cat([summ(x, mask), extra], dim=-1))
    assert loss.dim() == 0 and loss.dtype == dtype and torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is not None for p in summ.parameters())
    opt.step()
    summ.eval()
    net.eval()
    with torch.no_grad():
        cond = torch.cat([summ(x, mask), extra], dim=-1)
        draws = net.sample(5, cond, generator=torch.Generator().manual_seed(0))
        lp = net.log_prob(theta, cond)
    assert draws.shape == (8, 5, 2) and draws.dtype == dtype and torch.isfinite(draws).all()
    assert lp.shape == (8,) and torch.isfinite(lp).all()


def test_cheap_log_prob_says_whether_log_densities_cost_about_a_draw():
    """The estimator's ``log_q="auto"`` asks the fitted module."""
    from skabi.networks import InferenceModule
    assert InferenceModule.cheap_log_prob is True
    assert CouplingFlow(depth=1).build(2, 0).cheap_log_prob is True
    assert CouplingFlow(depth=1, transform="spline").build(2, 0).cheap_log_prob is True
    assert FlowMatching(steps=1).build(2, 0).cheap_log_prob is False  # ODE per density
    assert DiffusionModel(steps=1).build(2, 0).cheap_log_prob is False


def test_block_rows_blocks_cpu_only():
    from skabi.networks._base import block_rows
    per_cpu = 1024 * max(1, torch.get_num_threads())
    assert block_rows("cpu", 10) == block_rows(torch.device("cpu"), 10**7) == per_cpu
    assert block_rows(torch.device("meta"), 12_345) == 12_345  # elsewhere: all at once
    assert block_rows("meta", 0) == 1
