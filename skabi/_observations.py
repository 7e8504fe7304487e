"""Turn what users pass to ``sample``/``score`` into a batch dict; the default adapter."""

import numpy as np

from .bank import SimulationBank, as_bank

__all__ = ["as_observations", "default_adapter", "parameter_names"]


def as_observations(X, meta=None, *, frame_is_dataset=True):
    """A batch dict with a leading dataset axis from the forms ``sample`` accepts.

    A pandas DataFrame is one dataset (``frame_is_dataset``, as in ``sample``): each
    column becomes an array of shape ``(1, n_rows)``; otherwise (``score``, ``log_prob``,
    like ``fit``) a bank whose rows are simulations. An ndarray is the data ``"x"`` of a
    ``fit(X, y)`` estimator. 1-D arrays of a dict become ``(n, 1)``, as in a bank.
    """
    import pandas as pd

    if isinstance(X, pd.DataFrame) and frame_is_dataset:
        data = {str(c): X[c].to_numpy()[None, :] for c in X.columns}
    elif isinstance(X, np.ndarray):
        data = {"x": X}
    elif isinstance(X, dict):
        data = {k: (v if np.ndim(v) == 0 else _as_rows(np.asarray(v))) for k, v in X.items()}
    elif isinstance(X, SimulationBank):
        data = X.to_dict()
    else:
        data = as_bank(X).to_dict()
    if meta:
        data.update(meta)
    return data


def _as_rows(arr):
    return arr[:, None] if arr.ndim == 1 else arr


def default_adapter(pilot, has_summary):
    """The adapter used when none is given: ``theta`` is inferred from ``x``.

    ``x`` feeds the summary network as a set when one is given or ``x`` has rank 3,
    otherwise it is flattened into direct conditions.
    """
    from .adapters import AsSet, Rename, make_adapter

    missing = [k for k in ("x", "theta") if k not in pilot]
    if missing:
        raise ValueError(
            f"adapter=None works with banks of 'x' (data) and 'theta' (parameters), as made by "
            f"fit(X, y); the data lack {missing!r} (keys {sorted(pilot)!r}). Pass an adapter."
        )
    if has_summary or np.ndim(pilot["x"]) >= 3:
        return make_adapter(AsSet("x"), Rename("x", "summary_variables"),
                            Rename("theta", "inference_variables"))
    return make_adapter(Rename("x", "inference_conditions"), Rename("theta", "inference_variables"))


def parameter_names(adapter, dim):
    """The user's variables behind ``inference_variables``, in order."""
    return list(adapter.inverse_transform({"inference_variables": np.zeros((1, dim))}))
