"""One contract over all six estimators: parameters, defaults, save and load, threads,
seeds. Each estimator is the tiny one of ``benchmarks/contract_losses.py``."""

import importlib.util
import inspect
import pathlib
import sys

import numpy as np
import pytest
from sklearn.base import clone

import skabi
from skabi.estimators.base import NOT_RESTORED, AmortizedEstimator

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "contract_losses.py"

#: One estimator of each class, by the name of its tiny set-up in the script.
CASES = {"AmortizedPosterior": "posterior-online", "AmortizedLikelihood": "likelihood-online",
         "AmortizedPointEstimator": "point-online",
         "AmortizedModelComparison": "classifier-arrays",
         "AmortizedMultilevelPosterior": "multilevel-online", "AmortizedJoint": "joint-online"}

#: Defaults every estimator shares (training parameters that no data kind changes).
SHARED_DEFAULTS = dict(batches_per_epoch=100, weight_decay=0.0, clip_grad_norm=3.0,
                       standardize=True, device="auto", random_state=None, n_threads=1,
                       verbose=False, on_nonfinite="raise")


def _script():
    if "contract_losses" not in sys.modules:
        spec = importlib.util.spec_from_file_location("contract_losses", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["contract_losses"] = module
    return sys.modules["contract_losses"]


def _case(cls_name):
    script = _script()
    est, data = script.estimators()[CASES[cls_name]]
    return script, est, data


def _fit(est, data):
    return est.fit(*data) if isinstance(data, tuple) else est.fit(data)


def _numbers(script, cls_name, est):
    return script._draws(CASES[cls_name], est, script.simulator(),
                         script.multilevel_simulator())


def _equal(a, b):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls_name", sorted(CASES))
def test_params_defaults_and_clone(cls_name):
    cls = getattr(skabi, cls_name)
    assert issubclass(cls, AmortizedEstimator)
    signature = inspect.signature(cls.__init__)
    assert all(p.default is not inspect.Parameter.empty
               for name, p in signature.parameters.items() if name != "self")
    est = cls()
    params = est.get_params(deep=False)
    assert list(params) == sorted(signature.parameters.keys() - {"self"})
    for name, value in SHARED_DEFAULTS.items():
        assert params[name] == value, name
    assert params["epochs"] in ("auto", 50)
    _, tiny, _ = _case(cls_name)
    copy = clone(tiny)
    assert copy is not tiny and copy.get_params(deep=False).keys() == tiny.get_params(
        deep=False).keys()
    copy.set_params(n_threads=2, random_state=3)
    assert (copy.n_threads, copy.random_state) == (2, 3) and tiny.n_threads == 1
    with pytest.raises(ValueError, match="Invalid parameter"):
        copy.set_params(n_thread=2)


def _stored(est):
    """The parameters a file restores, as JSON holds them (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in est.get_params(deep=False).items()
            if k not in NOT_RESTORED and not hasattr(v, "get_params")}


@pytest.mark.parametrize("cls_name", sorted(CASES))
def test_save_and_load_give_the_same_numbers(cls_name, tmp_path, one_torch_thread):
    script, est, data = _case(cls_name)
    _fit(est, data)
    path = tmp_path / ("joint" if cls_name == "AmortizedJoint" else "est.skabi")
    est.save(path)
    loaded = type(est).load(path)
    assert type(loaded) is type(est)
    assert _stored(loaded) == _stored(est)
    _equal(_numbers(script, cls_name, loaded), _numbers(script, cls_name, est))


@pytest.mark.parametrize("cls_name", sorted(CASES))
def test_n_threads_holds_in_fit_and_in_every_later_call(cls_name, monkeypatch,
                                                        one_torch_thread):
    import skabi.estimators.base as base

    seen = []
    real = base.torch_threads

    def spy(n):
        seen.append(n)
        return real(n)

    monkeypatch.setattr(base, "torch_threads", spy)
    script, est, data = _case(cls_name)
    est.set_params(n_threads=2)
    _fit(est, data)
    assert seen and set(seen) == {2}, seen
    seen.clear()
    _numbers(script, cls_name, est)
    assert seen and set(seen) == {2}, seen


@pytest.mark.parametrize("cls_name", sorted(CASES))
def test_random_state_gives_the_same_fit_and_numbers(cls_name, one_torch_thread):
    script, first, data = _case(cls_name)
    _, second, _ = _case(cls_name)
    _fit(first, data)
    _fit(second, data)
    history = ["posterior_", "likelihood_"] if cls_name == "AmortizedJoint" else [None]
    for part in history:
        a = (first if part is None else getattr(first, part)).history_
        b = (second if part is None else getattr(second, part)).history_
        np.testing.assert_array_equal(a["loss"].to_numpy(), b["loss"].to_numpy())
    _equal(_numbers(script, cls_name, first), _numbers(script, cls_name, second))
    other = _case(cls_name)[1]
    other.set_params(random_state=1)
    _fit(other, data)
    a = (first.posterior_ if cls_name == "AmortizedJoint" else first).history_["loss"]
    b = (other.posterior_ if cls_name == "AmortizedJoint" else other).history_["loss"]
    assert not np.array_equal(a.to_numpy(), b.to_numpy())
