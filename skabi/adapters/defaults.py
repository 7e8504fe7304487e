"""The adapters an estimator builds when it is given none (``adapter=None``).

Banks given as ``fit(X, y)`` name their data ``"x"`` and their parameters ``"theta"``;
each estimator reads them in its own direction. One module for the three defaults, so
that the training engine (:mod:`skabi.training`) knows none of them: an estimator hands
its default to :func:`skabi.training.fitting.initial_state`.
"""

import numpy as np

from ..bank import is_ragged
from .adapter import Adapter, make_adapter
from .as_set import AsSet
from .observations import AsObservations
from .one_hot import OneHot
from .rename import Rename

__all__ = ["posterior_adapter", "likelihood_adapter", "classifier_adapter", "label_steps"]


def _needs(pilot, keys):
    missing = [k for k in keys if k not in pilot]
    if missing:
        raise ValueError(
            f"adapter=None works with banks of 'x' (data) and 'theta' (parameters), as made by "
            f"fit(X, y); the data lack {missing!r} (keys {sorted(pilot)!r}). Pass an adapter.")


def posterior_adapter(pilot, has_summary):
    """``theta`` is inferred from ``x``.

    ``x`` feeds the summary network as a set when one is given or ``x`` has rank 3,
    otherwise it is flattened into direct conditions.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters.defaults import posterior_adapter
    >>> pilot = {"x": np.zeros((4, 3)), "theta": np.zeros((4, 2))}
    >>> sorted(posterior_adapter(pilot, has_summary=False).fit(pilot).transform(pilot))
    ['inference_conditions', 'inference_variables']
    """
    _needs(pilot, ("x", "theta"))
    if is_ragged(pilot["x"]) and not has_summary:
        raise ValueError("The datasets of 'x' differ in size: adapter=None pads them into a "
                         "set for a summary network; pass summary_network=DeepSet() (or an "
                         "adapter).")
    if has_summary or is_ragged(pilot["x"]) or np.ndim(pilot["x"]) >= 3:
        return make_adapter(AsSet("x"), Rename("x", "summary_variables"),
                            Rename("theta", "inference_variables"))
    return make_adapter(Rename("x", "inference_conditions"), Rename("theta", "inference_variables"))


def likelihood_adapter(pilot, has_summary=False):
    """``x`` is modelled given ``theta``; a rank-3 ``x`` (or datasets of different sizes)
    holds sets, modelled one observation at a time.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters.defaults import likelihood_adapter
    >>> pilot = {"x": np.zeros((4, 5, 1)), "theta": np.zeros((4, 2))}
    >>> [name for name, _ in likelihood_adapter(pilot).steps][0]
    'asobservations'
    """
    _needs(pilot, ("x", "theta"))
    steps = [Rename("x", "inference_variables"), Rename("theta", "inference_conditions")]
    if is_ragged(pilot["x"]) or np.ndim(pilot["x"]) >= 3:
        steps.insert(0, AsObservations("x"))
    return make_adapter(*steps)


def label_steps(label, n_models):
    """The steps that route the model label ``label`` (an integer per simulation) into
    ``inference_variables``, one-hot over ``n_models`` models."""
    return [("model_one_hot", OneHot(label, num_classes=n_models)),
            ("model_to_inference_variables", Rename(label, "inference_variables"))]


def classifier_adapter(pilot, has_summary, n_models, label):
    """The model of ``x`` is inferred: ``x`` as a set (with a summary network, or rank 3)
    or as direct conditions, and the label ``label`` one-hot.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters.defaults import classifier_adapter
    >>> pilot = {"x": np.zeros((4, 3)), "m": np.array([0, 1, 1, 0])}
    >>> [name for name, _ in classifier_adapter(pilot, False, 2, "m").steps]
    ['x_to_conditions', 'model_one_hot', 'model_to_inference_variables']
    """
    if "x" not in pilot:
        raise ValueError("adapter=None works with data named 'x' (as fit(X, y) with an array "
                         f"names it); the simulations hold {sorted(pilot)!r}. Pass an adapter.")
    if has_summary or is_ragged(pilot["x"]) or np.ndim(pilot["x"]) >= 3:
        data = [("as_set", AsSet("x")), ("x_to_summary", Rename("x", "summary_variables"))]
    else:
        data = [("x_to_conditions", Rename("x", "inference_conditions"))]
    return Adapter(steps=[*data, *label_steps(label, n_models)])
