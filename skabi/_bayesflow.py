"""BayesFlow spellings of the estimators' calls, refused with an error naming skabi's.

BayesFlow passes training settings to ``fit`` (``fit(simulator=..., epochs=...,
num_batches_per_epoch=...)``), has ``fit_online``/``fit_offline``/``fit_disk`` workflows,
``save(filepath=...)``, ``plot_default_diagnostics(test_data=...)`` and
``standardize=[...]`` lists of roles. Python would answer each with a bare ``TypeError``
or ``AttributeError``; :func:`bayesflow_spellings` (a class decorator of every estimator)
answers with the skabi call instead. This is the one place for those checks; the ones
skabi accepts (``sample(conditions=...)``, ``convert_dtype(from, to)``) live with their
methods.
"""

import functools

__all__ = ["bayesflow_spellings", "missing_attribute", "WORKFLOW_METHODS"]

_SETTINGS = ("epochs", "batch_size", "learning_rate", "validation_sims", "checkpoint_path",
             "early_stopping", "patience")


def _fit_message(cls, name, value="..."):
    """The skabi spelling of a BayesFlow ``fit`` keyword, or None."""
    if name == "simulator":
        return (f"skabi's fit takes the simulator as its first argument: "
                f"{cls}(...).fit(simulator), with the training settings on the estimator")
    if name in ("num_batches_per_epoch", "num_batches"):
        return (f"skabi calls it batches_per_epoch and sets it on the estimator: "
                f"{cls}(batches_per_epoch={value})")
    if name == "validation_data":
        return f"skabi sets validation on the estimator: {cls}(validation_sims={value})"
    if name in ("data", "dataset"):
        return f"skabi's fit takes the simulations as its first argument: est.fit({name})"
    if name in _SETTINGS:
        return (f"skabi sets {name} on the estimator: {cls}({name}={value}), then "
                "est.fit(simulator)")
    return None


def _standardize_message(cls, value):
    return (f"standardize={value!r} is BayesFlow's list of what to standardize; skabi's "
            f"standardize is True or False ({cls}(standardize=True) standardizes every "
            "network input with pilot statistics); to standardize chosen variables "
            "yourself, add a Standardize step to the adapter "
            "(skabi.adapters.Standardize([...])).")


_WORKFLOW = {
    "fit_online": "{cls}(epochs=..., batches_per_epoch=..., batch_size=...).fit(simulator)",
    "fit_offline": "{cls}(epochs=..., batch_size=...).fit(bank), a bank of simulations "
                   "in memory",
    "fit_disk": '{cls}(...).fit("bank.zarr"), a bank written by skabi.storage.simulate',
}

#: The names of BayesFlow's workflow methods (answered by :func:`missing_attribute`).
WORKFLOW_METHODS = frozenset(_WORKFLOW)

_KEYWORDS = {
    # method: {BayesFlow keyword: skabi spelling}
    "save": {"filepath": "est.save(path)", "path": None},
    "plot_default_diagnostics": {"test_data": "est.plot_default_diagnostics(val_sims)"},
    "compute_default_diagnostics": {"test_data": "est.compute_default_diagnostics(val_sims)"},
}


def _wrap(cls, name, check):
    original = getattr(cls, name, None)   # its own or inherited from the base
    if original is None:
        return

    @functools.wraps(original)
    def method(self, *args, **kwargs):
        check(self, kwargs)
        return original(self, *args, **kwargs)

    setattr(cls, name, method)


def _keyword_check(method):
    def check(est, kwargs):
        for name, spelling in _KEYWORDS[method].items():
            if spelling is not None and name in kwargs:
                raise TypeError(f"{method}() got BayesFlow's keyword {name!r}: skabi "
                                f"passes it as the first argument, {spelling}.")
    return check


def _check_init(est, kwargs):
    cls = type(est).__name__
    if "num_batches_per_epoch" in kwargs:
        value = kwargs["num_batches_per_epoch"]
        raise TypeError(f"{cls}() got BayesFlow's keyword 'num_batches_per_epoch': "
                        f"{_fit_message(cls, 'num_batches_per_epoch', value)}.")
    if "simulator" in kwargs:
        raise TypeError(f"{cls}() got BayesFlow's keyword 'simulator' (of BasicWorkflow): "
                        f"{_fit_message(cls, 'simulator')}.")


def _check_fit(est, kwargs):
    cls = type(est).__name__
    for name, value in kwargs.items():
        message = _fit_message(cls, name, "..." if name in ("simulator", "data") else value)
        if message is not None:
            raise TypeError(f"fit() got BayesFlow's keyword {name!r}: {message}.")
    standardize = getattr(est, "standardize", True)
    if isinstance(standardize, (str, list, tuple, set)):
        raise TypeError(_standardize_message(cls, standardize))


def missing_attribute(est, name):
    """The ``AttributeError`` for an attribute ``est`` lacks: for a method of BayesFlow's
    workflows it names the skabi call."""
    if name in _WORKFLOW:
        return AttributeError(
            f"{type(est).__name__!r} object has no attribute {name!r} (a method of "
            f"BayesFlow's BasicWorkflow); skabi: "
            f"{_WORKFLOW[name].format(cls=type(est).__name__)}")
    return AttributeError(f"{type(est).__name__!r} object has no attribute {name!r}")


def bayesflow_spellings(cls):
    """Class decorator: BayesFlow's spellings of ``cls``'s calls raise a ``TypeError``
    (``AttributeError`` for a workflow method) that names the skabi call.

    The wrapped methods keep their signatures (``functools.wraps``), so
    ``inspect.signature`` and scikit-learn's ``get_params`` see the originals.
    """
    _wrap(cls, "__init__", _check_init)
    _wrap(cls, "fit", _check_fit)
    for method in _KEYWORDS:
        _wrap(cls, method, _keyword_check(method))

    if not hasattr(cls, "__getattr__"):   # the estimators' base has it (missing_attribute)
        def __getattr__(self, name):
            raise missing_attribute(self, name)

        cls.__getattr__ = __getattr__
    return cls
