"""skabi: amortized Bayesian inference as a scikit-learn estimator on PyTorch.

Write a simulator, declare an adapter, then ``AmortizedPosterior(...).fit(simulator)``
and ``est.sample(observed)`` for the posterior of any number of datasets.

Public names are imported on first use, so ``import skabi`` stays cheap and the
subpackages (``skabi.adapters``, ``skabi.networks``, ``skabi.diagnostics``) load only
when needed.
"""

from importlib import import_module as _import_module

from ._version import __version__

_PUBLIC = {
    "Adapter": "skabi.adapters",
    "make_adapter": "skabi.adapters",
    "AmortizedPosterior": "skabi.estimators.posterior",
    "AmortizedPointEstimator": "skabi.estimators.point",
    "AmortizedModelComparison": "skabi.estimators.classifier",
    "AmortizedLikelihood": "skabi.estimators.likelihood",
    "AmortizedJoint": "skabi.estimators.joint",
    "add_log_likelihood": "skabi.evidence",
    "log_marginal_likelihood": "skabi.evidence",
    "log_bayes_factor": "skabi.evidence",
    "importance_sample": "skabi.importance",
    "AmortizedMultilevelPosterior": "skabi.estimators.multilevel",
    "MultilevelSimulator": "skabi.multilevel_simulators",
    "make_multilevel_simulator": "skabi.multilevel_simulators",
    "Simulator": "skabi.simulators",
    "SequentialSimulator": "skabi.simulators",
    "make_simulator": "skabi.simulators",
    "concat_datasets": "skabi._arviz",
    "to_arviz": "skabi._arviz",
    "from_arviz": "skabi._arviz",
    "sample_predictive": "skabi.predictive",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(_import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skabi' has no attribute {name!r}")


def __dir__():
    # the public names and subpackages, without the helpers of this module
    return sorted(name for name in set(globals()) | set(__all__)
                  if not name.startswith("_") or name in ("__version__", "__all__"))
