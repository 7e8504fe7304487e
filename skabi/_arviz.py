"""Posterior draws <-> ArviZ containers. The only module that imports arviz.

The container is built with xarray as a ``DataTree`` that follows ArviZ's conventions and
handed back as the installed arviz's own type: ``InferenceData`` on arviz 0.x (what Python
3.11 gets) and the ``xarray.DataTree`` itself on arviz >= 1.0.

Layout (``K`` datasets, ``S`` draws per dataset):

``posterior`` (and ``prior``)
    one variable per parameter, dims ``(chain, draw, dataset, <name>_dim_0, ...)`` with a
    length-1 ``chain`` (draws are independent; R-hat is meaningless for them). A scalar
    parameter (trailing shape ``(1,)`` in the numpy output, such as ``sigma``) is stored
    without a trailing dim; :func:`from_arviz` gives it back its trailing axis of length 1,
    so containers and numpy outputs read the same in the diagnostics.
``sample_stats``
    ``log_q (chain, draw, dataset)``: the approximate log posterior density of each draw.
``observed_data`` (and ``posterior_predictive`` / ``prior_predictive`` with ``chain, draw``
in front)
    the data, dims ``(dataset, observation, <name>_dim_0, ...)``. Axis 1 of each data
    variable is its *observation* axis; variables whose observation axes have the same
    length in every dataset (``x`` and ``y`` of a regression) share one dim,
    ``observation``; a variable with other lengths gets ``<name>_observation``. Datasets
    of different sizes are padded with NaN to the longest, and the coordinate
    ``n_<observation dim> (dataset)`` holds each dataset's size. A scalar per dataset
    has dims ``(dataset,)``.
``constant_data``
    batch scalars such as ``N`` (meta variables in training), one value per dataset or a
    single value.
``true_values``
    when the data held the true parameters (validation simulations): dims
    ``(chain, draw, dataset, <name>_dim_0, ...)`` with ``chain`` and ``draw`` of length 1
    (laid out as one draw, so that ``idata.to_dataframe()`` and ArviZ's helpers that
    expect ``chain`` and ``draw`` accept it). Diagnostics read it, so they need no extra
    argument.

Every dim has a coordinate (integers unless ``coords`` names
them), so ``idata.to_dataframe()`` and xarray's alignment work; ``dims`` and ``coords``
rename and label the trailing dims, as in ArviZ's own converters.
"""

import numpy as np
import xarray as xr

from .bank import is_ragged

__all__ = ["to_arviz", "to_datatree", "from_arviz", "data_from_arviz", "concat_datasets",
           "arviz_major_version", "as_datatree", "from_datatree", "pad_ragged",
           "TRUE_VALUES_GROUP", "OBSERVATION_DIM", "size_coord"]

TRUE_VALUES_GROUP = "true_values"
OBSERVATION_DIM = "observation"
_LEAD = ("chain", "draw", "dataset")


def arviz_major_version():
    """The installed arviz's major version (0 or 1), imported lazily."""
    import arviz

    return int(arviz.__version__.split(".")[0])


def psis_log_weights(log_ratios):
    """Pareto-smoothed importance sampling (Vehtari et al. 2024) along the last axis of
    ``log_ratios`` (finite): the smoothed log weights, normalised to sum to 1, and Pareto k
    per row."""
    log_ratios = np.asarray(log_ratios, dtype=float)
    if arviz_major_version() >= 1:   # arviz-stats takes log likelihoods (ratios negated)
        from arviz_stats.base import array_stats

        with np.errstate(over="ignore", invalid="ignore"):
            lw, k = array_stats.psislw(-log_ratios, axis=-1)
    else:
        import arviz

        with np.errstate(over="ignore", invalid="ignore"):
            lw, k = arviz.psislw(log_ratios)
    lw = np.asarray(lw, dtype=float)
    top = lw.max(axis=-1, keepdims=True)
    lw = lw - (top + np.log(np.exp(lw - top).sum(axis=-1, keepdims=True)))
    return lw, np.atleast_1d(np.asarray(k, dtype=float))


def size_coord(dim):
    """Name of the coordinate holding each dataset's size along the observation dim."""
    return f"n_{dim}"


def _squeeze(arr, lead):
    """Drop a trailing axis of length 1 after ``lead`` leading axes (scalars per draw)."""
    return arr[..., 0] if arr.ndim == lead + 1 and arr.shape[-1] == 1 else arr


def pad_ragged(arrays, axis=0):
    """Stack arrays whose sizes differ along ``axis`` (only there), padding with NaN.

    Parameters
    ----------
    arrays : sequence of ndarray
        One array per dataset; shapes equal except along ``axis``.
    axis : int, default=0
        The observation axis of each array.

    Returns
    -------
    padded : ndarray of shape (len(arrays), ...)
        Float arrays padded with NaN to the longest along ``axis`` (+1 in the result).
    sizes : ndarray of int
        The size of each array along ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> padded, sizes = pad_ragged([np.ones(2), np.ones(3)])
    >>> padded
    array([[ 1.,  1., nan],
           [ 1.,  1.,  1.]])
    >>> sizes.tolist()
    [2, 3]
    """
    arrays = [np.asarray(a) for a in arrays]
    sizes = np.array([a.shape[axis] for a in arrays], dtype=int)
    shape = list(arrays[0].shape)
    for a in arrays:
        rest = [s for i, s in enumerate(a.shape) if i != axis]
        if a.ndim != len(shape) or rest != [s for i, s in enumerate(shape) if i != axis]:
            from .exceptions import ShapeError

            raise ShapeError(
                "Datasets of different sizes may differ only along their observation axis; "
                f"got shapes {[x.shape for x in arrays]!r}.")
    shape[axis] = int(sizes.max())
    out = np.full((len(arrays), *shape), np.nan)
    for i, a in enumerate(arrays):
        index = [slice(None)] * a.ndim
        index[axis] = slice(0, a.shape[axis])
        out[(i, *index)] = a
    return out, sizes


# ------------------------------------------------------------------ building
def _dataset_first(value, n_inner):
    """A data variable with the dataset axis first and ``n_inner`` axes (draw) after it,
    padded when ragged. Returns ``(array, sizes or None)``."""
    if is_ragged(value, any_sequence=True):
        arr, sizes = pad_ragged(value, axis=n_inner)
        return arr, sizes
    arr = np.asarray(value)
    if arr.ndim == n_inner + 2 and arr.shape[-1] == 1:
        arr = arr[..., 0]  # one value per dataset (the batch rule's (K, 1))
    if arr.ndim > n_inner + 1:
        sizes = np.full(arr.shape[0], arr.shape[n_inner + 1], dtype=int)
        return arr, sizes
    return arr, None


def observation_dims(sizes):
    """One observation dim per group of data variables with equal sizes in every dataset.

    ``sizes`` maps each data variable to its per-dataset sizes (None for scalars); the
    first group is ``"observation"``, later ones ``"<name>_observation"``.
    """
    out, taken = {}, {}
    for name, size in sizes.items():
        if size is None:
            continue
        key = tuple(int(s) for s in size)
        if key not in taken:
            taken[key] = OBSERVATION_DIM if not taken else f"{name}_{OBSERVATION_DIM}"
        out[name] = taken[key]
    return out


def _trailing_dims(name, n_trailing, dims, skip=0):
    user = list((dims or {}).get(name, []))[skip:]
    return tuple(user[i] if i < len(user) else f"{name}_dim_{i}" for i in range(n_trailing))


def _add_coords(ds, coords):
    coords = coords or {}
    new = {}
    for dim, size in ds.sizes.items():
        if dim in ds.coords:
            continue
        if dim in coords:
            values = np.asarray(coords[dim])
            if values.shape != (size,):
                raise ValueError(f"coords[{dim!r}] has {values.size} values but dim {dim!r} has "
                                 f"length {size}.")
            new[dim] = values
        else:
            new[dim] = np.arange(size)
    return ds.assign_coords(new)


def _param_group(arrays, lead, dims, coords):
    """Parameters (posterior, prior: ``lead`` = chain, draw, dataset; true values: dataset)."""
    data_vars = {}
    for name, value in arrays.items():
        arr = _squeeze(np.asarray(value), len(lead))
        data_vars[name] = (lead + _trailing_dims(name, arr.ndim - len(lead), dims), arr)
    return _add_coords(xr.Dataset(data_vars), coords)


def _draws_first(arr):
    """(K, S, ...) -> (1, S, K, ...)."""
    return np.swapaxes(np.asarray(arr), 0, 1)[None]


def _data_group(arrays, obs_dims, dims, coords, *, draws):
    """Data variables; ``arrays`` hold the dataset axis first (then the draw axis when
    ``draws``), ragged lists padded here."""
    n_inner = 1 if draws else 0
    lead = _LEAD if draws else ("dataset",)
    data_vars, size_coords = {}, {}
    for name, value in arrays.items():
        arr, sizes = _dataset_first(value, n_inner)
        n_trailing = arr.ndim - 1 - n_inner
        if draws:
            arr = _draws_first(arr)
        if n_trailing == 0:
            data_vars[name] = (lead, arr)
            continue
        obs = obs_dims.get(name, f"{name}_{OBSERVATION_DIM}")
        user = list((dims or {}).get(name, []))
        if user:
            obs = user[0]
        rest = _trailing_dims(name, n_trailing - 1, dims, skip=1)
        data_vars[name] = (lead + (obs,) + rest, arr)
        if sizes is not None:
            size_coords[size_coord(obs)] = ("dataset", sizes)
    ds = xr.Dataset(data_vars)
    if size_coords:
        ds = ds.assign_coords(size_coords)
    return _add_coords(ds, coords)


def _split_observed(observed, constant_keys):
    data, constant = {}, {}
    for name, value in (observed or {}).items():
        if not is_ragged(value, any_sequence=True) and np.ndim(value) == 0:
            constant[name] = ((), np.asarray(value))
        elif name in constant_keys:
            arr = _squeeze(np.asarray(value), 1)
            constant[name] = (("dataset",) + tuple(f"{name}_dim_{i}" for i in range(arr.ndim - 1)),
                              arr)
        else:
            data[name] = value
    return data, constant


def to_datatree(posterior=None, *, true_values=None, observed=None, log_q=None,
                constant_keys=(), prior=None, prior_predictive=None,
                posterior_predictive=None, dims=None, coords=None, n_datasets=None):
    """Build the ArviZ-convention :class:`xarray.DataTree` (see the module docstring).

    Parameters
    ----------
    posterior : dict of str to ndarray of shape (K, S, ...), optional
        Draws per dataset.
    true_values : dict of str to ndarray of shape (K, ...), optional
    observed : dict of str to ndarray of shape (K, ...), list of K arrays, or scalar, optional
        The data; a list of arrays (one per dataset) when their sizes differ.
    log_q : ndarray of shape (K, S), optional
    constant_keys : collection of str
        Variables of ``observed`` that go to ``constant_data`` (meta variables); 0-d
        values always do.
    prior : dict of str to ndarray of shape (K, S, ...), optional
    prior_predictive, posterior_predictive : dict, optional
        Data per draw: ``(K, S, n, ...)`` arrays or lists of K arrays ``(S, n_k, ...)``.
    dims : dict of str to list of str, optional
        Names of each variable's trailing dims (for data: the observation dim first).
    coords : dict of str to array-like, optional
        Coordinate values of named dims.
    """
    groups = {}
    if posterior:
        groups["posterior"] = _param_group({k: _draws_first(v) for k, v in posterior.items()},
                                           _LEAD, dims, coords)
    if log_q is not None:
        groups["sample_stats"] = _add_coords(
            xr.Dataset({"log_q": (_LEAD, _draws_first(log_q))}), coords)
    if prior:
        groups["prior"] = _param_group({k: _draws_first(v) for k, v in prior.items()},
                                       _LEAD, dims, coords)
    data, constant = _split_observed(observed, set(constant_keys))
    sizes = {k: _dataset_first(v, 0)[1] for k, v in data.items()}
    obs_dims = observation_dims(sizes)
    for group, values in (("posterior_predictive", posterior_predictive),
                          ("prior_predictive", prior_predictive)):
        if values:
            groups[group] = _data_group(values, obs_dims, dims, coords, draws=True)
    if data:
        groups["observed_data"] = _data_group(data, obs_dims, dims, coords, draws=False)
    if constant:
        groups["constant_data"] = _add_coords(xr.Dataset(constant), coords)
    if true_values:  # laid out as one draw, so ArviZ's table and plot helpers accept it
        groups[TRUE_VALUES_GROUP] = _param_group(
            {k: np.asarray(v)[None, None] for k, v in true_values.items()}, _LEAD, dims, coords)
    if not groups:
        raise ValueError("Nothing to put in the container: no draws and no data.")
    return xr.DataTree.from_dict(groups)


def from_datatree(tree):
    """The installed arviz's container for a DataTree built here."""
    if arviz_major_version() >= 1:
        return tree
    import arviz

    idata = arviz.from_datatree(tree)
    idata.__class__ = _sample_container()
    return idata


def _sample_container():
    """``arviz.InferenceData`` whose ``draws["beta"]`` (BayesFlow's dict of arrays) names
    the group to read instead of a bare ``KeyError('beta')``; created on first use, since
    arviz is imported lazily."""
    cls = globals().get("SampleInferenceData")
    if cls is not None:
        return cls
    import arviz

    class SampleInferenceData(arviz.InferenceData):
        """The ``arviz.InferenceData`` that ``est.sample`` returns (arviz 0.x)."""

        def __getitem__(self, key):
            if isinstance(key, str) and key not in self._groups_all:
                groups = [g for g in self._groups_all if key in getattr(self, g).data_vars]
                if groups:
                    raise KeyError(
                        f"{key!r} is a variable of the {groups[0]!r} group, not a group: "
                        "est.sample returns an ArviZ container, so read "
                        f"draws.{groups[0]}[{key!r}] (an xarray DataArray), or pass "
                        "return_type='numpy' for BayesFlow's dict of arrays "
                        f"(draws[{key!r}] of shape (datasets, draws, ...)).")
            return super().__getitem__(key)

    SampleInferenceData.__module__ = __name__
    SampleInferenceData.__qualname__ = "SampleInferenceData"
    globals()["SampleInferenceData"] = SampleInferenceData
    return SampleInferenceData


def __getattr__(name):
    # pickle finds the container class by name, also before this process built one
    if name == "SampleInferenceData":
        return _sample_container()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def as_datatree(container):
    """An InferenceData or DataTree as a DataTree (groups as children)."""
    if isinstance(container, xr.DataTree):
        return container
    if callable(getattr(container, "groups", None)):
        return xr.DataTree.from_dict({g: getattr(container, g) for g in container.groups()})
    raise TypeError(
        "Expected an arviz InferenceData or an xarray.DataTree (the container returned by "
        f"est.sample(...)); got {type(container).__name__}.")


def to_arviz(posterior=None, **kwargs):
    """Arrays of draws and data as the container ``est.sample`` returns.

    For draws that did not come from an estimator (an MCMC run, an exact posterior, a
    reference sampler) that skabi's functions should read like its own:
    :func:`skabi.sample_predictive`, :func:`skabi.add_log_likelihood`,
    :func:`skabi.concat_datasets` and :mod:`skabi.diagnostics`. The layout is that of
    :ref:`the container <arviz>`; the type is the installed arviz's (``InferenceData`` on
    arviz 0.x, ``xarray.DataTree`` on arviz >= 1.0). :func:`from_arviz` reads it back.

    Parameters
    ----------
    posterior : dict of str to ndarray of shape (K, S, ...), optional
        Draws of each parameter for ``K`` datasets, ``S`` draws each.
    true_values : dict of str to ndarray of shape (K, ...), optional
        The true parameters of each dataset (validation simulations).
    observed : dict of str to ndarray of shape (K, ...), list of K arrays, or scalar, optional
        The data; a list of arrays (one per dataset) when their sizes differ.
    log_q : ndarray of shape (K, S), optional
        Log density of each draw (``sample_stats``).
    constant_keys : collection of str
        Variables of ``observed`` that go to ``constant_data`` (meta variables such as
        ``N``); 0-d values always do.
    prior : dict of str to ndarray of shape (K, S, ...), optional
        Prior draws.
    prior_predictive, posterior_predictive : dict, optional
        Data per draw: ``(K, S, n, ...)`` arrays or lists of K arrays ``(S, n_k, ...)``.
    dims : dict of str to list of str, optional
        Names of each variable's trailing dims (for data: the observation dim first).
    coords : dict of str to array-like, optional
        Coordinate values of named dims.

    Returns
    -------
    arviz.InferenceData or xarray.DataTree

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import from_arviz, to_arviz
    >>> idata = to_arviz({"mu": np.zeros((2, 100, 1))}, observed={"y": np.ones((2, 5))})
    >>> idata.posterior["mu"].dims
    ('chain', 'draw', 'dataset')
    >>> from_arviz(idata)[0]["mu"].shape
    (2, 100, 1)
    """
    return from_datatree(to_datatree(posterior, **kwargs))


# ------------------------------------------------------------------ reading
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


def _draws_of(group, name):
    """(K, S, ...) arrays of a group with dims chain, draw and (optionally) dataset; a
    scalar per draw gets a trailing axis of length 1, as in the numpy output."""
    out = {}
    for var_name, var in group.data_vars.items():
        if "dataset" not in var.dims:
            var = var.expand_dims("dataset")
        missing = [d for d in ("chain", "draw") if d not in var.dims]
        if missing:
            raise ValueError(f"{name}[{var_name!r}] has dims {var.dims}; expected chain and "
                             "draw dims.")
        rest = [d for d in var.dims if d not in _LEAD]
        arr = var.transpose("dataset", "chain", "draw", *rest).values
        arr = arr.reshape(arr.shape[0], -1, *arr.shape[3:])
        out[str(var_name)] = arr[..., None] if arr.ndim == 2 else arr
    return out


def from_arviz(container, group="posterior"):
    """Read draws and true values back as plain arrays (the inverse of :func:`to_arviz`).

    Parameters
    ----------
    container : arviz.InferenceData or xarray.DataTree
        Needs a ``posterior`` group (or ``group``); a ``dataset`` dim is optional (one
        dataset if absent) and several chains are pooled.
    group : str, default="posterior"
        The group of draws to read (``"prior"`` for prior draws).

    Returns
    -------
    estimates : dict of str to ndarray of shape (K, S, ...)
        Scalar parameters with a trailing axis of length 1, as ``est.sample(...,
        return_type="numpy")`` returns them.
    targets : dict of str to ndarray of shape (K, ...) or None
        From the ``true_values`` group when present (scalars as ``(K, 1)``).
    """
    post = _group(container, group)
    if post is None:
        raise ValueError(f"The container has no {group!r} group.")
    estimates = _draws_of(post, group)
    truth = _group(container, TRUE_VALUES_GROUP)
    targets = None
    if truth is not None:
        targets = {}
        for name, var in truth.data_vars.items():
            var = var.squeeze([d for d in ("chain", "draw") if d in var.dims], drop=True)
            if "dataset" not in var.dims:
                var = var.expand_dims("dataset")
            rest = [d for d in var.dims if d != "dataset"]
            arr = var.transpose("dataset", *rest).values
            targets[str(name)] = arr[:, None] if arr.ndim == 1 else arr
    return estimates, targets


def data_from_arviz(container, group="observed_data"):
    """The data of a container as the batch ``est.sample`` was given, or None.

    ``observed_data`` and ``constant_data`` merged: arrays ``(K, n, ...)`` with scalars per
    dataset as ``(K, 1)`` and batch scalars as 0-d; where datasets differ in size, a list
    of K arrays (one per dataset, padding removed, as the list form of the input).
    """
    data = _group(container, group)
    if data is None:
        return None
    out = {}
    for name, var in data.data_vars.items():
        if "dataset" not in var.dims:
            out[str(name)] = var.values
            continue
        var = var.transpose("dataset", *[d for d in var.dims if d != "dataset"])
        arr = var.values
        obs = var.dims[1] if var.ndim > 1 else None
        sizes_name = size_coord(obs) if obs else None
        if sizes_name in var.coords:
            sizes = np.asarray(var.coords[sizes_name].values, dtype=int)
            if len(set(sizes.tolist())) > 1:
                out[str(name)] = [arr[i, :sizes[i]] for i in range(arr.shape[0])]
                continue
            arr = arr[:, :sizes[0]]
        out[str(name)] = arr[:, None] if arr.ndim == 1 else arr
    const = _group(container, "constant_data") if group == "observed_data" else None
    if const is not None:
        for name, var in const.data_vars.items():
            arr = var.values
            out[str(name)] = arr[:, None] if arr.ndim == 1 and "dataset" in var.dims else arr
    return out


def concat_datasets(containers):
    """Combine containers of different datasets into one, along ``dataset``.

    ArviZ's ``az.concat`` joins chains or draws, not datasets; this joins the results of
    several ``est.sample`` calls (for instance one per dataset size) as if they came from
    one call. Data variables of different sizes are padded with NaN to the longest, and
    the coordinates ``n_observation (dataset)`` keep each dataset's size; batch scalars
    of ``constant_data`` (``N``) become one value per dataset. The ``dataset`` coordinate
    is renumbered ``0..K-1``. All containers need the same groups and variables and the
    same number of draws.

    Parameters
    ----------
    containers : sequence of arviz.InferenceData or xarray.DataTree

    Returns
    -------
    arviz.InferenceData or xarray.DataTree
        The installed arviz's container.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import concat_datasets, to_arviz
    >>> a = to_arviz({"mu": np.zeros((2, 10, 1))}, observed={"y": np.zeros((2, 5)), "N": 5},
    ...              constant_keys=["N"])
    >>> b = to_arviz({"mu": np.ones((1, 10, 1))}, observed={"y": np.ones((1, 7)), "N": 7},
    ...              constant_keys=["N"])
    >>> both = concat_datasets([a, b])
    >>> both.observed_data["y"].shape, both.observed_data["n_observation"].values.tolist()
    ((3, 7), [5, 5, 7])
    >>> both.constant_data["N"].values.tolist()
    [5, 5, 7]
    """
    trees = [as_datatree(c) for c in containers]
    if not trees:
        raise ValueError("concat_datasets needs at least one container.")
    names = list(trees[0].children)
    for i, t in enumerate(trees):
        if sorted(t.children) != sorted(names):
            raise ValueError(f"Container {i} has groups {sorted(t.children)!r} but container 0 "
                             f"has {sorted(names)!r}; all need the same groups.")
    groups = {}
    for name in names:
        parts = []
        for t in trees:
            ds = t[name].to_dataset()
            if "dataset" not in ds.dims:  # a batch scalar: one value per dataset
                n = _n_datasets(t)
                ds = ds.expand_dims(dataset=n)
            ds = ds.drop_vars("dataset", errors="ignore")
            parts.append(ds)
        try:
            joined = xr.concat(parts, dim="dataset", join="outer", fill_value=np.nan,
                               data_vars="all", coords="different", compat="equals")
        except ValueError as exc:
            raise ValueError(f"Cannot join group {name!r} of the containers: {exc}") from None
        groups[name] = joined.assign_coords(dataset=np.arange(joined.sizes["dataset"]))
    return from_datatree(xr.DataTree.from_dict(groups))


def _n_datasets(tree):
    for child in tree.children.values():
        if "dataset" in child.dims:
            return child.sizes["dataset"]
    return 1


def split_levels(container, global_names, local_names, group_dim="group"):
    """Per-level containers of a multilevel posterior (for the diagnostics).

    Returns ``{"global": ..., "local": ...}``: the global variables as they are, and the
    local ones with every real ``(dataset, group)`` pair as a ``dataset`` of its own
    (padded groups, NaN in the posterior, left out). Groups ``posterior`` and
    ``true_values`` are kept.
    """
    tree = as_datatree(container)
    out = {}
    for level, names in (("global", global_names), ("local", local_names)):
        groups = {}
        for name in ("posterior", TRUE_VALUES_GROUP):
            if name not in tree.children:
                continue
            ds = tree[name].to_dataset()[list(names)]
            if level == "local":
                ds = ds.stack(_pair=("dataset", group_dim)).reset_index(
                    "_pair", drop=True).drop_vars(["dataset", group_dim], errors="ignore")
                ds = ds.rename({"_pair": "dataset"})
            groups[name] = ds
        if level == "local":
            first = groups["posterior"][list(names)[0]]
            real = np.asarray(first.isel(chain=0, draw=0).notnull())
            while real.ndim > 1:
                real = real.all(axis=-1)
            groups = {k: v.isel(dataset=np.flatnonzero(real)) for k, v in groups.items()}
            groups = {k: v.assign_coords(dataset=np.arange(v.sizes["dataset"]))
                      for k, v in groups.items()}
        out[level] = from_datatree(xr.DataTree.from_dict(groups))
    return out
