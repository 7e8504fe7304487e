"""Prior and posterior predictive draws in the ArviZ container.

:func:`sample_predictive` takes the container that ``est.sample(...)`` returned and the
user's simulator, and adds ArviZ's predictive groups:

``posterior_predictive``
    the simulator run at posterior draws of each dataset (with that dataset's meta
    variables such as ``N``), dims ``(chain, draw, dataset, observation, ...)`` like
    ``observed_data``;
``prior`` and ``prior_predictive``
    prior draws and the data simulated from them, with the same layout.

Why a function of the container and the simulator, not a method of the estimator: the
posterior draws it needs are already in the container (so it works the same on a
container loaded from disk or joined with :func:`skabi.concat_datasets`), the estimator
is not needed at all, and the simulator, which is user code, is passed in for the call
and never stored. It reads as one more step of an analysis script::

    idata = est.sample(observed, num_samples=1000)
    idata = sample_predictive(idata, simulator, random_state=0)
    az.plot_ppc(idata); az.plot_ppc(idata, group="prior")

This module imports neither torch nor the estimator.
"""

import numpy as np

from ._arviz import (TRUE_VALUES_GROUP, _group, as_datatree, data_from_arviz, from_arviz,
                     from_datatree, to_datatree)
from ._validation import as_numpy_rng, check_positive_int, check_result_size
from .bank import dataset
from .exceptions import MissingKeyError, NonFiniteError

__all__ = ["sample_predictive"]

_GROUPS = ("prior", "posterior")


def _repeat(value, n):
    value = np.asarray(value)
    return np.repeat(value[None], n, axis=0)


def _simulate(simulator, given, n, chunk_size, rng):
    """``simulator.sample_given`` in chunks of draws; arrays (n, ...) per variable."""
    parts = []
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        chunk = {k: (v if np.ndim(v) == 0 else v[start:stop]) for k, v in given.items()}
        parts.append(simulator.sample_given(chunk, stop - start, random_state=rng))
    out = {}
    for key in parts[0]:
        values = [p[key] for p in parts]
        out[key] = values[0] if np.ndim(values[0]) == 0 else np.concatenate(values)
    return out


def _finite(values, where, k):
    """Refuse NaN or inf among the simulator's outputs ``values`` (``{name: (S, ...)}``),
    naming the variable, the count, the simulations and the dataset ``k``: as
    ``on_nonfinite="raise"`` does for a bank, a failed simulation is not data."""
    for name, v in values.items():
        v = np.asarray(v)
        if v.dtype.kind not in "fc" or v.ndim == 0:
            continue
        bad = ~np.isfinite(v.reshape(len(v), -1))
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1))
            raise NonFiniteError(
                f"The simulator returned {int(bad.sum())} NaN or infinite value(s) of "
                f"{name!r} ({where}, dataset {k}: {rows.size} of {len(v)} simulations, e.g. "
                f"simulation {int(rows[0])}); predictive draws must be finite. Make the "
                "simulator return finite values there (failed simulations often give NaN).")
    return values


def _data_of(sims, data_names, where, k=0):
    missing = [k for k in data_names if k not in sims]
    if missing:
        raise MissingKeyError(
            f"The simulator did not return {missing!r} ({where}), which observed_data holds; "
            f"it returned {sorted(sims)!r}. Pass the simulator that made the data.")
    return _finite({name: np.asarray(sims[name]) for name in data_names}, where, k)


def _stack(per_dataset):
    """K arrays (S, n_k, ...) -> one array (K, S, ...) when shapes agree, else the list."""
    shapes = {a.shape for a in per_dataset}
    return np.stack(per_dataset) if len(shapes) == 1 else list(per_dataset)


def _existing_dims(tree, group, lead):
    ds = _group(tree, group)
    if ds is None:
        return {}, {}
    dims = {str(k): list(v.dims[lead:]) for k, v in ds.data_vars.items()}
    coords = {str(k): v.values for k, v in ds.coords.items()
              if k in ds.dims and k not in ("chain", "draw", "dataset")}
    return dims, coords


def sample_predictive(idata, simulator, *, num_samples=200, groups=("prior", "posterior"),
                      given=None, random_state=None, chunk_size=1000):
    """Add prior and posterior predictive draws to a container from ``est.sample``.

    For each dataset of ``idata``, the simulator is run at ``num_samples`` posterior draws
    (the first ones; they are independent) with that dataset's meta variables (such as
    ``N``, from ``constant_data``), and, for the prior groups, ``num_samples`` times from
    the prior with the same meta variables. The results are stored as ArviZ's
    ``posterior_predictive``, ``prior`` and ``prior_predictive`` groups with the variable
    names and dims of ``observed_data`` and ``posterior``, so that ``az.plot_ppc(idata)``,
    ``az.plot_ppc(idata, group="prior")``, ``az.plot_bpv`` and xarray reductions work
    unchanged. Datasets of different sizes are padded with NaN like ``observed_data``
    (coordinate ``n_observation``).

    Parameters
    ----------
    idata : arviz.InferenceData or xarray.DataTree
        The container returned by ``est.sample(observed, ...)`` (or joined with
        :func:`skabi.concat_datasets`): needs ``observed_data``, and ``posterior`` for
        the posterior predictive group.
    simulator : Simulator
        The simulator the estimator was trained on (user code; used for this call only).
        Posterior draws replace what its prior draws (see
        :meth:`skabi.Simulator.sample_given`).
    num_samples : int, default=200
        Predictive draws per dataset (at most the posterior's draws for the posterior
        predictive group). ArviZ's LOO-PIT (``az.plot_loo_pit``) pairs every predictive
        draw with a posterior draw: give it the posterior's number of draws.
    groups : sequence of {"prior", "posterior"}, default=("prior", "posterior")
        Which predictive groups to add.
    given : list of str, optional
        Observed variables to hold at their observed values instead of simulating them
        (covariates such as ``x``): they are passed to the simulator's functions that take
        them as arguments (e.g. ``def likelihood(beta, sigma, N, rng, x=None)``) and
        copied into the predictive groups.
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the simulations; the same integer gives the same groups.
    chunk_size : int, default=1000
        Simulations per simulator call.

    Raises
    ------
    NonFiniteError
        Where the simulator returns NaN or inf (naming the variable, the dataset and the
        simulations), as ``on_nonfinite="raise"`` does for a bank.
    ValueError
        Where ``num_samples`` would make more values than fit in memory.

    Returns
    -------
    arviz.InferenceData or xarray.DataTree
        A new container (the installed arviz's type) with the groups of ``idata`` plus the
        requested predictive groups (replacing earlier ones of those names).

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import make_simulator, sample_predictive
    >>> from skabi import to_arviz
    >>> def prior(rng):
    ...     return dict(mu=rng.normal())
    >>> def likelihood(mu, N, rng):
    ...     return dict(y=rng.normal(mu, 1.0, size=N))
    >>> simulator = make_simulator([prior, likelihood], meta_fn=lambda: dict(N=5))
    >>> obs = simulator.sample(2, random_state=0)
    >>> idata = to_arviz({"mu": np.zeros((2, 300, 1))}, observed={"y": obs["y"], "N": 5})
    >>> idata = sample_predictive(idata, simulator, num_samples=100, random_state=0)
    >>> idata.posterior_predictive["y"].dims
    ('chain', 'draw', 'dataset', 'observation')
    >>> idata.prior_predictive["y"].shape, idata.prior["mu"].shape
    ((1, 100, 2, 5), (1, 100, 2))
    """
    num_samples = check_positive_int("num_samples", num_samples)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    groups = [groups] if isinstance(groups, str) else list(groups)
    bad = [g for g in groups if g not in _GROUPS]
    if bad or not groups:
        raise ValueError(f"groups must be a non-empty subset of {list(_GROUPS)!r}; got {groups!r}.")
    if not callable(getattr(simulator, "sample_given", None)):
        raise TypeError(
            "simulator must be a skabi Simulator (make_simulator([prior, likelihood], "
            f"meta_fn=...) or a Simulator subclass); got {type(simulator).__name__}.")
    tree = as_datatree(idata)
    observed = _group(tree, "observed_data")
    if observed is None:
        raise ValueError(
            "The container has no 'observed_data' group: predictive draws are compared with "
            "observed data. Pass the container returned by est.sample(observed, ...).")
    data = data_from_arviz(tree)
    data_names = [str(k) for k in observed.data_vars]
    constant = _group(tree, "constant_data")
    meta_names = [str(k) for k in constant.data_vars] if constant is not None else []
    given = [given] if isinstance(given, str) else list(given or [])
    unknown = [g for g in given if g not in data_names]
    if unknown:
        raise MissingKeyError(f"given names {unknown!r}, which observed_data does not hold; "
                              f"it holds {data_names!r}.")
    first = next(iter(observed.data_vars.values()))
    n_datasets = first.sizes.get("dataset", 1)
    if "dataset" not in first.dims:
        data = {k: (v[None] if k in data_names else v) for k, v in data.items()}

    posterior = None
    if "posterior" in groups:
        if _group(tree, "posterior") is None:
            raise ValueError("The container has no 'posterior' group; pass "
                             "groups=['prior'] for prior predictive draws only.")
        posterior, _ = from_arviz(tree)
        n_post = next(iter(posterior.values())).shape[1]
        if n_post < num_samples:
            raise ValueError(f"num_samples={num_samples} but the posterior holds {n_post} draws "
                             "per dataset; pass num_samples <= that, or sample more draws.")

    per_dataset = sum(int(np.size(dataset(data[g], k)))
                      for g in data_names for k in range(n_datasets))
    check_result_size("num_samples", num_samples, per_dataset * num_samples * len(groups),
                      what=f"{n_datasets} datasets x {num_samples} draws x "
                           f"{per_dataset // max(1, n_datasets)} data values x {len(groups)} "
                           "group(s)")
    rng = as_numpy_rng(random_state)
    out = {"posterior_predictive": [], "prior": [], "prior_predictive": []}
    for k in range(n_datasets):
        meta = {m: np.asarray(dataset(data[m], k)).reshape(()) for m in meta_names
                if np.size(dataset(data[m], k)) == 1}
        fixed = {**meta, **{g: _repeat(dataset(data[g], k), num_samples) for g in given}}
        if "prior" in groups:
            sims = _simulate(simulator, fixed, num_samples, chunk_size, rng)
            out["prior_predictive"].append(_data_of(sims, data_names, "prior predictive", k))
            params = posterior.keys() if posterior is not None else [
                s for s in sims if s not in data_names and s not in meta_names]
            out["prior"].append(_finite({p: np.asarray(sims[p]) for p in params if p in sims},
                                        "prior", k))
        if posterior is not None:
            draws = {p: v[k, :num_samples] for p, v in posterior.items()}
            sims = _simulate(simulator, {**fixed, **draws}, num_samples, chunk_size, rng)
            out["posterior_predictive"].append(_data_of(sims, data_names, "posterior predictive",
                                                        k))

    def per_variable(rows):
        return {name: _stack([r[name] for r in rows]) for name in rows[0]} if rows else None

    data_dims, data_coords = _existing_dims(tree, "observed_data", 1)
    param_dims, param_coords = _existing_dims(tree, "posterior", 3)
    observed_arg = {k: v for k, v in data.items() if k in data_names}
    new = to_datatree(
        observed=observed_arg,
        prior=per_variable(out["prior"]),
        prior_predictive=per_variable(out["prior_predictive"]),
        posterior_predictive=per_variable(out["posterior_predictive"]),
        dims={**param_dims, **data_dims}, coords={**param_coords, **data_coords},
    )
    merged = {name: tree[name].to_dataset() for name in tree.children}
    for name in ("prior", "prior_predictive", "posterior_predictive"):
        if name in new.children:
            ds = new[name].to_dataset()
            if "dataset" in observed.coords:
                ds = ds.assign_coords(dataset=observed.coords["dataset"].values)
            merged[name] = ds
    order = ["posterior", "posterior_predictive", "sample_stats", "prior", "prior_predictive",
             "observed_data", "constant_data", TRUE_VALUES_GROUP]
    ordered = {g: merged[g] for g in order if g in merged}
    ordered.update({g: v for g, v in merged.items() if g not in ordered})
    import xarray as xr

    return from_datatree(xr.DataTree.from_dict(ordered))
