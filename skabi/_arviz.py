"""Posterior draws <-> ArviZ containers. The only module that imports arviz.

The container is built with xarray as a ``DataTree`` that follows ArviZ's conventions and
handed back as the installed arviz's own type: ``InferenceData`` on arviz 0.x (what Python
3.11 gets) and the ``xarray.DataTree`` itself on arviz >= 1.0.

Layout (``K`` datasets, ``S`` draws per dataset):

``posterior``
    one variable per parameter, dims ``(chain, draw, dataset, <name>_dim_0, ...)`` with a
    length-1 ``chain`` (draws are independent; R-hat is meaningless for them).
``sample_stats``
    ``log_q (chain, draw, dataset)``: the approximate log posterior density of each draw.
``observed_data``
    the conditioning data, dims ``(dataset, <name>_dim_0, ...)``; batch scalars as scalars.
``true_values``
    when the data held the true parameters (validation simulations): dims
    ``(dataset, <name>_dim_0, ...)``. Diagnostics read it, so they need no extra argument.

A parameter whose trailing shape is ``(1,)`` (a scalar such as ``sigma``) is stored as a
scalar per draw.
"""

import numpy as np
import xarray as xr

__all__ = ["to_arviz", "from_arviz", "arviz_major_version", "TRUE_VALUES_GROUP"]

TRUE_VALUES_GROUP = "true_values"


def arviz_major_version():
    """The installed arviz's major version (0 or 1), imported lazily."""
    import arviz

    return int(arviz.__version__.split(".")[0])


def _squeeze(arr, lead):
    """Drop a trailing axis of length 1 after ``lead`` leading axes (scalars per draw)."""
    return arr[..., 0] if arr.ndim == lead + 1 and arr.shape[-1] == 1 else arr


def _dims(name, arr, lead_dims):
    extra = arr.ndim - len(lead_dims)
    return tuple(lead_dims) + tuple(f"{name}_dim_{i}" for i in range(extra))


def _dataset(arrays, lead_dims, coords, *, squeeze=True):
    data_vars = {}
    for name, value in arrays.items():
        arr = np.asarray(value)
        if arr.ndim < len(lead_dims):  # batch-constant scalars such as N
            data_vars[name] = ((), arr)
            continue
        if squeeze:
            arr = _squeeze(arr, len(lead_dims))
        data_vars[name] = (_dims(name, arr, lead_dims), arr)
    return xr.Dataset(data_vars, coords={k: v for k, v in coords.items() if k in lead_dims})


def to_datatree(posterior, *, true_values=None, observed=None, log_q=None):
    """Build the ArviZ-convention :class:`xarray.DataTree` (see the module docstring).

    Parameters
    ----------
    posterior : dict of str to ndarray of shape (K, S, ...)
        Draws per dataset.
    true_values : dict of str to ndarray of shape (K, ...), optional
    observed : dict of str to ndarray of shape (K, ...) or scalar, optional
    log_q : ndarray of shape (K, S), optional
    """
    first = next(iter(posterior.values()))
    n_datasets, n_draws = first.shape[:2]
    coords = {"chain": [0], "draw": np.arange(n_draws), "dataset": np.arange(n_datasets)}
    # (K, S, ...) -> (1, S, K, ...)
    post = {k: np.swapaxes(np.asarray(v), 0, 1)[None] for k, v in posterior.items()}
    groups = {"posterior": _dataset(post, ("chain", "draw", "dataset"), coords)}
    if log_q is not None:
        stats = {"log_q": np.swapaxes(np.asarray(log_q), 0, 1)[None]}
        groups["sample_stats"] = _dataset(stats, ("chain", "draw", "dataset"), coords)
    if observed:
        groups["observed_data"] = _dataset(observed, ("dataset",), coords, squeeze=False)
    if true_values:
        groups[TRUE_VALUES_GROUP] = _dataset(true_values, ("dataset",), coords)
    return xr.DataTree.from_dict(groups)


def to_arviz(posterior, *, true_values=None, observed=None, log_q=None):
    """Draws as the installed arviz's container (``InferenceData`` or ``DataTree``).

    Same parameters as :func:`to_datatree`.
    """
    tree = to_datatree(posterior, true_values=true_values, observed=observed, log_q=log_q)
    if arviz_major_version() >= 1:
        return tree
    import arviz

    return arviz.from_datatree(tree)


def _group(container, name):
    """A group of an InferenceData or DataTree as an xarray Dataset, or None."""
    if isinstance(container, xr.DataTree):
        return container[name].to_dataset() if name in container.children else None
    if hasattr(container, "groups"):
        return getattr(container, name) if name in container.groups() else None
    raise TypeError(
        "Expected an arviz InferenceData or an xarray.DataTree with a 'posterior' group; "
        f"got {type(container).__name__}."
    )


def from_arviz(container):
    """Read draws and true values back as plain arrays.

    Parameters
    ----------
    container : arviz.InferenceData or xarray.DataTree
        Needs a ``posterior`` group; a ``dataset`` dim is optional (one dataset if absent)
        and several chains are pooled.

    Returns
    -------
    estimates : dict of str to ndarray of shape (K, S, ...)
    targets : dict of str to ndarray of shape (K, ...) or None
        From the ``true_values`` group when present.
    """
    post = _group(container, "posterior")
    if post is None:
        raise ValueError("The container has no 'posterior' group.")
    estimates = {}
    for name, var in post.data_vars.items():
        if "dataset" not in var.dims:
            var = var.expand_dims("dataset")
        rest = [d for d in var.dims if d not in ("dataset", "chain", "draw")]
        var = var.transpose("dataset", "chain", "draw", *rest)
        arr = var.values
        estimates[str(name)] = arr.reshape(arr.shape[0], -1, *arr.shape[3:])
    truth = _group(container, TRUE_VALUES_GROUP)
    targets = None
    if truth is not None:
        targets = {}
        for name, var in truth.data_vars.items():
            if "dataset" not in var.dims:
                var = var.expand_dims("dataset")
            rest = [d for d in var.dims if d != "dataset"]
            targets[str(name)] = var.transpose("dataset", *rest).values
    return estimates, targets
