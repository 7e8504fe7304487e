"""The fast paths of issue 7 give the same results as the plain ones."""

import numpy as np
import pytest
import torch

from models import Gaussian
from skabi import AmortizedPosterior
from skabi.training import loop as _training
from skabi.adapters import Rename, make_adapter
from skabi.networks import CouplingFlow, DeepSet


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))


def _is_fused(opt):
    return bool(opt.param_groups[0].get("fused"))


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_optimizer_is_fused_on_cpu_from_torch_2_4(weight_decay):
    opt, _ = _training.make_optimizer(_model(), learning_rate=1e-3, weight_decay=weight_decay,
                                      lr_schedule="cosine", total_steps=10)
    assert _is_fused(opt) == (_training._torch_version() >= (2, 4))
    assert isinstance(opt, torch.optim.AdamW if weight_decay else torch.optim.Adam)


def test_optimizer_falls_back_on_older_torch(monkeypatch):
    monkeypatch.setattr(_training, "_torch_version", lambda: (2, 3))
    opt, _ = _training.make_optimizer(_model(), learning_rate=1e-3, weight_decay=0.0,
                                      lr_schedule="constant", total_steps=10)
    assert not _is_fused(opt)


def test_optimizer_falls_back_when_fused_construction_fails(monkeypatch):
    real = torch.optim.Adam

    def picky(params, **kw):
        if kw.get("fused"):
            raise RuntimeError("fused not supported here")
        return real(params, **kw)

    monkeypatch.setattr(torch.optim, "Adam", picky)
    opt, _ = _training.make_optimizer(_model(), learning_rate=1e-3, weight_decay=0.0,
                                      lr_schedule="constant", total_steps=10)
    assert not _is_fused(opt)


def test_fused_and_plain_adam_train_alike():
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    out = []
    for fused in (False, True):
        model = _model()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, fused=fused)
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
        out.append(torch.cat([p.detach().ravel() for p in model.parameters()]))
    torch.testing.assert_close(out[0], out[1], rtol=1e-4, atol=1e-5)


def _train_steps(model, opt, zero, clip_params, x, y, steps=15):
    for _ in range(steps):
        zero()
        torch.nn.functional.mse_loss(model(x), y).backward()
        torch.nn.utils.clip_grad_norm_(clip_params, 0.5)
        opt.step()
    return torch.cat([p.detach().ravel() for p in model.parameters()])


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_flat_parameters_train_like_separate_ones(weight_decay):
    # make_optimizer flattens the parameters into one tensor; training (with gradient
    # clipping, which acts on the whole gradient) must give the same weights
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 3, generator=gen), torch.randn(32, 1, generator=gen)
    model = _model()
    cls = torch.optim.AdamW if weight_decay else torch.optim.Adam
    opt = cls(model.parameters(), lr=1e-2, weight_decay=weight_decay)
    plain = _train_steps(model, opt, opt.zero_grad, list(model.parameters()), x, y)
    model = _model()
    opt, _ = _training.make_optimizer(model, learning_rate=1e-2, weight_decay=weight_decay,
                                      lr_schedule="constant", total_steps=15)
    (flat,) = opt.param_groups[0]["params"]
    assert flat.numel() == sum(p.numel() for p in model.parameters())
    got = _train_steps(model, opt, lambda: opt.zero_grad(set_to_none=False), [flat], x, y)
    torch.testing.assert_close(got, plain, rtol=1e-4, atol=1e-5)
    # the model's parameters and gradients are views of the flat tensors
    first = next(model.parameters())
    assert first.data_ptr() == flat.data_ptr() and first.grad.data_ptr() == flat.grad.data_ptr()


def test_flatten_parameters_declines_mixed_dtypes():
    model = _model()
    model[1].double()
    assert _training.flatten_parameters(model.parameters()) is None
    assert _training.flatten_parameters([]) is None
    opt, _ = _training.make_optimizer(model, learning_rate=1e-3, weight_decay=0.0,
                                      lr_schedule="constant", total_steps=1)
    assert len(opt.param_groups[0]["params"]) == 4   # the model's own tensors


@pytest.fixture(scope="module")
def fitted():
    adapter = make_adapter(Rename("theta", "inference_variables"),
                           Rename("x", "summary_variables"))
    est = AmortizedPosterior(adapter=adapter, inference_network=CouplingFlow(depth=2,
                                                                             subnet_width=16),
                             summary_network=DeepSet(summary_dim=4, width=16), epochs=1,
                             batches_per_epoch=5, batch_size=32, random_state=0)
    sim = Gaussian(n_obs=10, dim=2)
    return est.fit(sim), sim.sample(7, random_state=1)


def test_fitted_parameters_own_their_storage_and_pickle_small(fitted):
    # training makes the parameters views of one buffer; fit gives each its own storage
    # back, or pickle would write the whole buffer once per parameter
    import pickle

    est, _ = fitted
    params = list(est.approximator_.parameters())
    for p in params:
        assert p.untyped_storage().nbytes() == p.numel() * p.element_size()
        assert p.grad is None
    weights = sum(p.numel() * p.element_size() for p in params)
    assert len(pickle.dumps(est)) < 2 * weights + 200_000


def test_log_prob_from_conditions_in_blocks_equals_one_pass(fitted):
    est, sims = fitted
    model = est.approximator_
    theta = torch.randn(7, 50, 2)
    cond = torch.randn(7, 4)
    whole = model.log_prob_from_conditions(theta, cond, rows=7 * 50)
    blocks = model.log_prob_from_conditions(theta, cond, rows=33)
    torch.testing.assert_close(whole, blocks)


def test_numpy_draws_equal_arviz_draws(fitted):
    est, sims = fitted
    obs = {"x": sims["x"]}
    draws = est.sample(obs, 40, random_state=3, return_type="numpy")["theta"]
    idata = est.sample(obs, 40, random_state=3)
    post = idata.posterior["theta"].transpose("chain", "dataset", "draw", ...)
    post = np.asarray(post)[0]
    np.testing.assert_array_equal(draws, post)
    assert np.isfinite(np.asarray(idata.sample_stats["log_q"])).all()
