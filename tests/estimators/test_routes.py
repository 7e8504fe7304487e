"""The routes of ``fit`` and ``sample`` (``benchmarks/routes.py``): up to the first tensor
the estimator enters each module once, and nothing calls back up the layers."""

import importlib.util
import pathlib
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["posterior-online", "likelihood-online", "point-online",
                                  "classifier-arrays", "multilevel-online", "joint-online"])
def test_fit_and_sample_enter_each_module_once_and_never_climb(name, one_torch_thread):
    routes, cl = _load("routes"), _load("contract_losses")
    est, data = cl.estimators()[name]
    fit = routes.Route().run(lambda: est.fit(*data) if isinstance(data, tuple)
                             else est.fit(data))
    assert fit.done and fit.climbs() == []
    assert max(fit.visits().values()) == 1, fit.visits()
    sim, ml = cl.simulator(), cl.multilevel_simulator()
    sample = routes.Route().run(lambda: cl._draws(name, est, sim, ml))
    assert sample.done and sample.climbs() == []
    assert max(sample.visits().values()) == 1, sample.visits()


def test_a_climb_is_found():
    routes = _load("routes")
    route = routes.Route()
    route.steps = [("skabi.training.fitting", "skabi.estimators.base", "<lambda>"),
                   ("skabi.estimators.base", "skabi.inputs", "is_array"),
                   ("skabi.estimators.base", "skabi.inputs", "checked_array")]
    assert route.climbs() == ["skabi.training.fitting -> skabi.estimators.base.<lambda>"]
    assert route.visits() == {"skabi.inputs": 2}
