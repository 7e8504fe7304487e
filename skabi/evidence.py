"""Likelihood-based model checks: ArviZ's ``log_likelihood`` group, marginal likelihoods
and Bayes factors.

:func:`add_log_likelihood`
    fills the ``log_likelihood`` group of a posterior container per observation, from a
    learned :class:`~skabi.AmortizedLikelihood` or an analytic pointwise log likelihood,
    so that ``az.loo``, ``az.waic`` and ``az.compare`` work on simulator-based models.
:func:`log_marginal_likelihood`
    ``log p(x)`` per observed dataset from a fitted posterior and likelihood (JANA,
    Radev et al. 2023), with its Monte Carlo error; the prior density comes from the user.
:func:`log_bayes_factor`
    the difference of two such estimates, with its error.
"""

import numpy as np
import pandas as pd

from .exceptions import ShapeError
from .bank import dataset
from .importance import analytic_pointwise

__all__ = ["add_log_likelihood", "log_marginal_likelihood", "log_bayes_factor"]


def _is_learned(likelihood):
    return hasattr(likelihood, "log_prob") and hasattr(likelihood, "data_names_")


def _learned_pointwise(likelihood, draws, observed):
    """log q(x_n | theta_s): (S, N) for one dataset's draws and data."""
    s = len(next(iter(draws.values())))
    batch = {k: (v if np.ndim(v) == 0 else np.repeat(np.asarray(v)[None], s, axis=0))
             for k, v in observed.items()}
    batch.update(draws)
    out = likelihood.log_prob(batch, pointwise=True)
    if isinstance(out, list):
        out = np.stack(out)
    return out


def add_log_likelihood(idata, likelihood, *, var_name=None):
    """Add ArviZ's ``log_likelihood`` group: the log density of every observation at
    every posterior draw.

    Parameters
    ----------
    idata : arviz.InferenceData or xarray.DataTree
        From :meth:`skabi.AmortizedPosterior.sample`: ``posterior`` draws and
        ``observed_data`` (datasets of one size).
    likelihood : AmortizedLikelihood or callable
        A fitted likelihood of single observations (an adapter with
        :class:`~skabi.adapters.AsObservations`), given the posterior's parameters and
        the observed variables; or ``fn(draws, observed) -> (S, N)``, an analytic
        pointwise log likelihood, called once per dataset with ``draws`` the posterior
        draws ``{name: (S, ...)}`` (scalar parameters as ``(S, 1)``) and ``observed`` the
        dataset's data ``{name: (N, ...)}`` and batch scalars.
    var_name : str, optional
        Name of the variable in the group (default: the modelled variables joined by
        ``"_"`` for a learned likelihood, ``"obs"`` for a callable).

    Returns
    -------
    arviz.InferenceData or xarray.DataTree
        A new container with the groups of ``idata`` and ``log_likelihood``, dims
        ``(chain, draw, dataset, observation)``. ``az.loo`` treats every dim other than
        ``chain`` and ``draw`` as observations: pass one dataset,
        ``az.loo(idata.isel(dataset=k))``.

    Notes
    -----
    The posterior draws are independent (one chain), so PSIS-LOO applies as usual; its
    Pareto k diagnostic says where the importance weights are unreliable. A learned
    likelihood adds its own approximation error to each value: compare it with the
    analytic one where there is one (``benchmarks/likelihood.py``).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> from skabi import add_log_likelihood
    >>> from skabi import to_arviz
    >>> rng = np.random.default_rng(0)
    >>> idata = to_arviz({"mu": rng.normal(size=(1, 200, 1))},
    ...                  observed={"y": rng.normal(size=(1, 8))})
    >>> def loglik(draws, observed):
    ...     return stats.norm.logpdf(observed["y"][None, :], draws["mu"], 1.0)
    >>> out = add_log_likelihood(idata, loglik)
    >>> out.log_likelihood["obs"].shape
    (1, 200, 1, 8)
    """
    import xarray as xr

    from ._arviz import _group, as_datatree, data_from_arviz, from_arviz, from_datatree

    tree = as_datatree(idata)
    observed_group = _group(tree, "observed_data")
    if observed_group is None or _group(tree, "posterior") is None:
        raise ValueError("add_log_likelihood needs a container with 'posterior' and "
                         "'observed_data' groups: pass the result of est.sample(observed, ...).")
    learned = _is_learned(likelihood)
    if not learned and not callable(likelihood):
        raise TypeError("likelihood must be a fitted AmortizedLikelihood or a callable "
                        f"fn(draws, observed) -> (S, N); got {type(likelihood).__name__}.")
    if learned and likelihood.observation_keys_ is None:
        raise ValueError("A pointwise log likelihood needs a likelihood of single "
                         "observations: fit it with AsObservations first in its adapter.")
    draws, _ = from_arviz(tree)
    data = data_from_arviz(tree)
    n_datasets = next(iter(draws.values())).shape[0]
    first = next(iter(observed_group.data_vars.values()))
    if "dataset" not in first.dims:
        data = {k: (np.asarray(v)[None] if k in observed_group.data_vars else v)
                for k, v in data.items()}
    ragged = [k for k, v in data.items() if isinstance(v, list)]
    if ragged:
        raise ShapeError(f"The datasets differ in size ({ragged!r}); add the log likelihood "
                         "to containers of datasets of one size (one est.sample call each).")
    rows = []
    for k in range(n_datasets):
        post = {name: v[k] for name, v in draws.items()}
        obs = {name: dataset(v, k) for name, v in data.items()}
        rows.append(_learned_pointwise(likelihood, post, obs) if learned
                    else analytic_pointwise(likelihood, post, obs, k))
    values = np.stack(rows, axis=1)[None]   # (chain, draw, dataset, observation)
    obs_dim = next((str(v.dims[1]) for v in observed_group.data_vars.values()
                    if v.ndim > 1 and v.dims[0] == "dataset"), "observation")
    name = var_name or ("_".join(likelihood.data_names_) if learned else "obs")
    coords = {"chain": [0], "draw": np.arange(values.shape[1]),
              "dataset": (observed_group.coords["dataset"].values
                          if "dataset" in observed_group.coords else np.arange(n_datasets)),
              obs_dim: np.arange(values.shape[3])}
    ds = xr.Dataset({name: (("chain", "draw", "dataset", obs_dim), values)}, coords=coords)
    groups = {g: tree[g].to_dataset() for g in tree.children}
    groups["log_likelihood"] = ds
    return from_datatree(xr.DataTree.from_dict(groups))


def log_marginal_likelihood(posterior, likelihood, X, prior, *, num_samples=1000, meta=None,
                            random_state=None):
    """``log p(x)`` of each dataset from a fitted posterior and likelihood.

    With draws ``theta_s ~ q(theta | x)``, ``w_s = log p(theta_s) + log q(x | theta_s) -
    log q(theta_s | x)``. For exact networks every ``w_s`` equals ``log p(x)`` (JANA,
    Radev et al. 2023); with approximate ones, ``log mean exp(w_s)`` is an importance
    sampling estimate of ``log p(x)`` under the learned likelihood, with the posterior as
    proposal, which is what this returns.

    Parameters
    ----------
    posterior : AmortizedPosterior
        Fitted on the model's simulations.
    likelihood : AmortizedLikelihood or callable
        Fitted on the same model (same parameter names), or any object with
        ``log_prob(batch)`` returning one value per dataset, or an analytic pointwise log
        likelihood ``fn(draws, observed) -> (S, N)`` as for :func:`add_log_likelihood`.
    X : dict of arrays, list of dict, SimulationBank or DataFrame
        Observed datasets, as for :meth:`skabi.AmortizedPosterior.sample`.
    prior : dict of str to scipy.stats frozen distribution, or callable
        The prior density: one frozen distribution per parameter (its ``logpdf`` is
        summed over the parameter's elements; vector parameters broadcast), or
        ``prior(draws) -> (K, S)`` for draws ``{name: (K, S, ...)}``. Required: skabi
        cannot read a density off a simulator.
    num_samples : int, default=1000
        Posterior draws per dataset, at least 2 (for the standard error).
    meta : dict, optional
    random_state : None, int or numpy.random.Generator, default=None
        ``None`` uses the posterior's ``random_state``.

    Returns
    -------
    pandas.DataFrame
        One row per dataset: ``log_ml`` (the estimate), ``mc_se`` (its Monte Carlo
        standard error, delta method), ``ess`` (effective sample size of the weights),
        ``mean_estimate`` (the mean of ``w_s``, JANA's estimator) and ``spread`` (the sd
        of ``w_s``: 0 for exact networks; large values mean the networks disagree). A
        draw where the prior density or the likelihood is 0 has weight 0 (``w_s = -inf``):
        it counts in ``log_ml`` and is left out of ``mean_estimate`` and ``spread``.

    Examples
    --------
    See :doc:`/likelihood` for a worked example with two conjugate models.
    """
    from ._validation import check_positive_int
    from .importance import proposal_weights, raw_weights_summary

    if check_positive_int("num_samples", num_samples) < 2:
        raise ValueError(f"num_samples must be at least 2 for log_marginal_likelihood; got "
                         f"{num_samples!r}: the Monte Carlo standard error mc_se needs two "
                         "draws per dataset or more.")
    _, w, _ = proposal_weights(posterior, likelihood, X, prior, num_samples=num_samples,
                               meta=meta, random_state=random_state)
    log_ml, se, ess = raw_weights_summary(w)
    finite = np.where(np.isfinite(w), w, np.nan)   # draws of weight 0 (-inf) left out
    return pd.DataFrame({"log_ml": log_ml, "mc_se": se, "ess": ess,
                         "mean_estimate": np.nanmean(finite, axis=1),
                         "spread": np.nanstd(finite, axis=1)})


def log_bayes_factor(a, b):
    """``log BF_ab = log p(x | model a) - log p(x | model b)`` per dataset.

    Parameters
    ----------
    a, b : pandas.DataFrame
        From :func:`log_marginal_likelihood` for the same datasets under two models.

    Returns
    -------
    pandas.DataFrame
        ``log_bf`` and ``mc_se`` (the two errors combined, independent draws).

    Examples
    --------
    >>> import pandas as pd
    >>> from skabi import log_bayes_factor
    >>> a = pd.DataFrame({"log_ml": [-3.0], "mc_se": [0.03]})
    >>> b = pd.DataFrame({"log_ml": [-5.0], "mc_se": [0.04]})
    >>> log_bayes_factor(a, b).round(3).to_dict("records")
    [{'log_bf': 2.0, 'mc_se': 0.05}]
    """
    if len(a) != len(b):
        raise ShapeError(f"a holds {len(a)} datasets and b {len(b)}; pass the estimates of "
                         "the same datasets under both models.")
    return pd.DataFrame({"log_bf": a["log_ml"].to_numpy() - b["log_ml"].to_numpy(),
                         "mc_se": np.hypot(a["mc_se"].to_numpy(), b["mc_se"].to_numpy())})
