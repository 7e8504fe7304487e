"""Importance sampling with the amortized posterior as the proposal.

An amortized posterior ``q(theta | x)`` is fast but approximate; where the likelihood is
known (an analytic one) or learned (:class:`~skabi.AmortizedLikelihood`), and the prior
density is given, each draw can be weighed by

    ``w_s = log p(theta_s) + log p(x | theta_s) - log q(theta_s | x)``,

the ratio of the unnormalised posterior to the proposal. Two things follow:

* ``log mean exp(w_s)`` estimates the marginal likelihood ``log p(x)``
  (:func:`skabi.log_marginal_likelihood`);
* resampling the draws in proportion to their (Pareto-smoothed) weights gives draws of
  ``p(theta | x)`` itself, corrected for the network's error where the proposal covers
  the posterior (:func:`importance_sample`; "neural importance sampling", Dax et al. 2023,
  and sbi's importance-sampling posterior). Pareto k of the weights (Vehtari et al. 2024)
  says where it does not: k > 0.7 means the proposal misses part of the posterior.

:func:`proposal_weights` computes the weights once for both.
"""

import warnings

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._validation import check_positive_int, check_result_size
from .bank import batch_size_of, dataset, is_ragged
from .estimators.posterior import AmortizedPosterior
from .exceptions import ShapeError

__all__ = ["importance_sample", "proposal_weights"]

#: Pareto k above which importance sampling is unreliable (Vehtari et al. 2024).
PARETO_K_LIMIT = 0.7
#: Fewest proposals per dataset: PSIS fits its Pareto tail to at least 5 of them.
MIN_PROPOSALS = 25


def _callable_name(fn):
    """How a user's callable is named in a message: its ``__name__`` or its type."""
    return getattr(fn, "__name__", None) or type(fn).__name__


def real_values(value, what, expected):
    """``value`` as a float array, refusing what would lose information on the way.

    Complex values (whose imaginary part ``float`` would drop), strings, objects and
    booleans are no log densities: a ``TypeError`` names ``what`` (the callable), the
    dtype got and the ``expected`` shape.
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{what} returned values of dtype {arr.dtype} (shape {arr.shape}); "
                        f"expected real log densities (floats) of shape {expected}.")
    return arr.astype(float, copy=False)


def log_prior(prior, draws):
    """log p(theta) of draws ``{name: (K, S, ...)}`` as (K, S)."""
    if prior is None:
        raise ValueError(
            "This needs the prior density, which skabi cannot read off a simulator: pass "
            "prior={name: scipy.stats frozen distribution} (one per parameter of "
            f"{sorted(draws)!r}) or a callable prior(draws) -> (K, S).")
    k, s = next(iter(draws.values())).shape[:2]
    if callable(prior) and not isinstance(prior, dict):
        what = f"The prior {_callable_name(prior)}(draws)"
        out = real_values(prior(draws), what, (k, s))
        if out.shape != (k, s):
            raise ShapeError(f"{what} returned shape {out.shape}; expected ({k}, {s}): one "
                             "log density per dataset and draw.")
        return out
    missing = [name for name in draws if name not in prior]
    if missing:
        raise ValueError(f"prior has no density for {missing!r}; pass a scipy.stats frozen "
                         f"distribution for each of {sorted(draws)!r}.")
    total = np.zeros((k, s))
    for name, value in draws.items():
        dist = prior[name]
        density = getattr(dist, "logpdf", None) or getattr(dist, "logpmf", None)
        if density is None:
            raise TypeError(f"prior[{name!r}] has no logpdf; pass a scipy.stats frozen "
                            f"distribution (got {type(dist).__name__}).")
        value = np.asarray(value)
        what = f"prior[{name!r}].{density.__name__}"
        dim = getattr(dist, "dim", None)   # multivariate: scipy would broadcast quietly
        if dim is None and np.ndim(getattr(dist, "alpha", None)) == 1:
            dim = len(dist.alpha)
        size = value.shape[-1] if value.ndim > 2 else 1
        if dim is not None and int(dim) != size:
            raise ShapeError(
                f"prior[{name!r}] is a {dim}-dimensional distribution, but {name!r} has "
                f"{size} element(s) per draw (draws of shape {value.shape}); expected a "
                f"distribution of dimension {size}.")
        out = real_values(density(value), what, value.shape)
        # elementwise (univariate) or one value per draw (multivariate over the last axis)
        if out.shape not in (value.shape, (k, s)):
            raise ShapeError(
                f"{what} returned shape {out.shape} for draws of {name!r} of shape "
                f"{value.shape}; expected {value.shape} (one value per element) or "
                f"{(k, s)} (one per draw): the distribution has another dimension than the "
                "parameter.")
        total += out.reshape(k, s, -1).sum(axis=-1)
    return total


def _observation_sizes(observed):
    """The numbers of observations a dataset's data may have: the sizes of the first axes
    of its arrays (those of size 1 left out when others are larger: values per dataset
    such as ``N`` of shape (1,))."""
    sizes = {int(np.shape(v)[0]) for v in observed.values()
             if not isinstance(v, list) and np.ndim(v) >= 1}
    return sizes - {1} if len(sizes) > 1 else sizes


def analytic_pointwise(fn, draws, observed, k, *, allow_zero=False):
    """``fn(draws, observed)`` checked: real, (S, N) with N the dataset's observations,
    and finite (``-inf`` too if ``allow_zero``)."""
    s = len(next(iter(draws.values())))
    sizes = sorted(_observation_sizes(observed))
    shown = f"({s}, {sizes[0]})" if len(sizes) == 1 else f"({s}, N)"
    what = f"The log likelihood {_callable_name(fn)}(draws, observed)"
    out = real_values(fn(draws, observed), what, shown)
    if out.ndim != 2 or out.shape[0] != s or (sizes and out.shape[1] not in sizes):
        have = f" (its data have {' or '.join(map(str, sizes))} observations)" if sizes else ""
        raise ShapeError(f"{what} returned shape {out.shape} for dataset {k}; expected "
                         f"{shown}{have}: one value per posterior draw and observation.")
    bad = np.isnan(out) | (out == np.inf) if allow_zero else ~np.isfinite(out)
    if bad.any():
        raise ValueError(f"The log likelihood returned {int(bad.sum())} non-finite values "
                         f"for dataset {k} (e.g. at draw {int(np.argwhere(bad)[0][0])}).")
    return out


def _log_likelihood(likelihood, draws, observed, k, s):
    """log p(x_k | theta_s) of dataset ``k`` at its ``s`` draws: (s,)."""
    post = {name: v[k] for name, v in draws.items()}
    if hasattr(likelihood, "log_prob"):            # learned: one value per dataset
        batch = {name: (v if batch_size_of(v) is None else
                        [np.asarray(v[k])] * s if is_ragged(v) else
                        np.repeat(np.asarray(v)[k:k + 1], s, axis=0))
                 for name, v in observed.items()}
        batch.update(post)
        return np.asarray(likelihood.log_prob(batch), dtype=float).reshape(s)
    data = {name: dataset(v, k) for name, v in observed.items()}
    return analytic_pointwise(likelihood, post, data, k, allow_zero=True).sum(axis=1)


def _check_models(posterior, likelihood, prior):
    if not isinstance(posterior, AmortizedPosterior):
        raise TypeError("posterior must be a fitted AmortizedPosterior (the proposal); got "
                        f"{type(posterior).__name__}.")
    check_is_fitted(posterior, "approximator_")
    if isinstance(likelihood, AmortizedPosterior) or not (
            hasattr(likelihood, "log_prob") or callable(likelihood)):
        raise TypeError("likelihood must be a fitted AmortizedLikelihood or a callable "
                        f"fn(draws, observed) -> (S, N); got {type(likelihood).__name__}.")
    if prior is None:   # before any draw is made (log_prior says the same for its callers)
        log_prior(None, {name: None for name in posterior.parameter_names_})


def proposal_weights(posterior, likelihood, X, prior, *, num_samples=1000, meta=None,
                     random_state=None):
    """Draws of the amortized posterior and their log importance weights.

    Parameters
    ----------
    posterior : AmortizedPosterior
        Fitted; its draws are the proposal.
    likelihood : AmortizedLikelihood or callable
        A fitted likelihood of the same model (any object with ``log_prob(batch)``, one
        value per dataset), or ``fn(draws, observed) -> (S, N)``, an analytic pointwise log
        likelihood as for :func:`skabi.add_log_likelihood` (``draws`` of one dataset
        ``{name: (S, ...)}``, ``observed`` its data), summed over observations.
    X : dict of arrays, list of dict, SimulationBank or DataFrame
        Observed datasets, as for :meth:`skabi.AmortizedPosterior.sample`.
    prior : dict of str to scipy.stats frozen distribution, or callable
        One frozen distribution per parameter (``logpdf`` summed over its elements), or
        ``prior(draws) -> (K, S)`` for draws ``{name: (K, S, ...)}``.
    num_samples : int, default=1000
        Proposal draws per dataset.
    meta : dict, optional
    random_state : None, int or numpy.random.Generator, default=None
        ``None`` uses the posterior's ``random_state``.

    Returns
    -------
    draws : dict of str to ndarray
        ``{name: (K, num_samples, ...)}`` on the user's scale.
    log_w : ndarray of shape (K, num_samples)
        ``log p(theta) + log p(x | theta) - log q(theta | x)``; ``-inf`` where the prior
        density or the likelihood is 0.
    data : dict
        The observed datasets as the posterior read them.

    Examples
    --------
    See :func:`importance_sample`.
    """
    from .training import inference

    _check_models(posterior, likelihood, prior)
    num_samples = check_positive_int("num_samples", num_samples)
    data = posterior._observations(X, meta)
    roles, _ = posterior._roles(data, need_theta=False, skip=posterior.parameter_names_)
    rng = posterior._rng(random_state)
    with posterior._threads():
        draws, log_q = inference.draw(posterior._fit_state(), roles, num_samples, rng,
                                      log_q=True)
    log_p = log_prior(prior, draws)
    observed = {name: v for name, v in data.items() if name not in draws}
    log_lik = np.stack([_log_likelihood(likelihood, draws, observed, k, num_samples)
                        for k in range(log_q.shape[0])])
    with np.errstate(invalid="ignore"):
        log_w = log_p + log_lik - log_q
    bad = np.isnan(log_w) | (log_w == np.inf)
    if bad.any():
        rows = sorted(set(np.argwhere(bad)[:, 0].tolist()))
        raise ValueError(f"Undefined log weights for dataset(s) {rows[:10]}: the likelihood or "
                         "the posterior density is NaN or infinite at a posterior draw.")
    return draws, log_w, data


def raw_weights_summary(log_w):
    """Per dataset (row) of log weights: ``log mean exp`` (the estimate of ``log p(x)``),
    its Monte Carlo standard error (delta method) and the effective sample size of the
    raw weights. A dataset whose every weight is 0 (``-inf``) is refused."""
    dead = ~np.isfinite(log_w).any(axis=1)
    if dead.any():
        raise ValueError(f"Every proposal of dataset(s) {np.flatnonzero(dead)[:10].tolist()} "
                         "lies where the prior density or the likelihood is 0: the posterior "
                         "network misses where the posterior is.")
    n = log_w.shape[1]
    top = log_w.max(axis=1, keepdims=True)
    e = np.exp(log_w - top)
    mean_e = e.mean(axis=1)
    se = e.std(axis=1, ddof=1) / (np.sqrt(n) * mean_e) if n > 1 \
        else np.full(len(log_w), np.nan)
    return np.log(mean_e) + top[:, 0], se, e.sum(axis=1) ** 2 / (e ** 2).sum(axis=1)


def psis(log_w):
    """Pareto-smoothed, normalised log weights along the last axis, and Pareto k per row.

    Rows whose weights are all ``-inf`` get k = inf and uniform weights (never used: the
    caller raises for them).
    """
    from ._arviz import psis_log_weights

    log_w = np.atleast_2d(np.asarray(log_w, dtype=float))
    finite = np.isfinite(log_w).any(axis=1)
    out = np.full(log_w.shape, -np.log(log_w.shape[1]))
    k = np.full(log_w.shape[0], np.inf)
    if finite.any():
        rows = log_w[finite]
        # -inf (prior density 0) is weight 0; PSIS wants finite numbers, so use a value
        # far below every finite weight of the row.
        low = np.nanmin(np.where(np.isfinite(rows), rows, np.nan), axis=1, keepdims=True)
        rows = np.where(np.isfinite(rows), rows, low - 1e4)
        smoothed, k_rows = psis_log_weights(rows)
        out[finite], k[finite] = smoothed, k_rows
    return out, k


def _systematic(weights, n, rng):
    """``n`` indices drawn in proportion to ``weights`` (summing to 1), systematically."""
    edges = np.cumsum(weights)
    edges[-1] = 1.0
    return np.searchsorted(edges, (rng.random() + np.arange(n)) / n, side="right")


def importance_sample(posterior, likelihood, X, prior, num_samples=1000, *, proposals=4,
                      meta=None, random_state=None, dims=None, coords=None):
    """Posterior draws corrected by importance sampling: the amortized posterior proposes,
    the prior and the likelihood weigh.

    ``proposals * num_samples`` draws of ``q(theta | x)`` per dataset get the weights
    ``p(theta) p(x | theta) / q(theta | x)`` (Pareto-smoothed), and ``num_samples`` of
    them are resampled in proportion (systematic resampling). Where the proposal covers
    the posterior, the result follows ``p(theta | x)`` under the given likelihood: the
    exact posterior with an analytic likelihood, the learned likelihood's posterior with
    an :class:`~skabi.AmortizedLikelihood`. It removes draws the network put where the
    posterior has (almost) no mass, such as a tail towards a bound; it cannot add mass
    the network missed, which Pareto k reports.

    Parameters
    ----------
    posterior : AmortizedPosterior
        Fitted; the proposal.
    likelihood : AmortizedLikelihood or callable
        A fitted likelihood of the same model, or ``fn(draws, observed) -> (S, N)``, an
        analytic pointwise log likelihood (as for :func:`skabi.add_log_likelihood`).
    X : dict of arrays, list of dict, SimulationBank or DataFrame
        Observed datasets, as for :meth:`skabi.AmortizedPosterior.sample`.
    prior : dict of str to scipy.stats frozen distribution, or callable
        The prior density, as for :func:`skabi.log_marginal_likelihood`. Required.
    num_samples : int, default=1000
        Draws per dataset in the result.
    proposals : int, default=4
        Proposal draws per result draw. More give more distinct draws where the weights
        are uneven. ``proposals * num_samples`` must be at least 25 (Pareto k is fitted
        to the largest weights).
    meta : dict, optional
    random_state : None, int or numpy.random.Generator, default=None
        ``None`` uses the posterior's ``random_state``.
    dims, coords : dict, optional
        As for :meth:`skabi.AmortizedPosterior.sample`.

    Returns
    -------
    arviz.InferenceData or xarray.DataTree
        The groups of :meth:`skabi.AmortizedPosterior.sample` (no ``log_q``: resampled
        draws have no density), and in ``sample_stats`` per dataset: ``pareto_k`` (of
        the weights; above 0.7 the draws are unreliable and a warning says so), ``ess``
        (the effective number of proposals, ``(sum w)^2 / sum w^2`` of the smoothed
        weights) and ``log_ml`` (``log mean exp`` of the raw weights: the marginal
        likelihood estimate of :func:`skabi.log_marginal_likelihood`).

    Notes
    -----
    A resampled draw may repeat: the number of distinct draws is at most ``ess``. PSIS-LOO
    (``az.loo``) on such draws is valid; its Pareto k is then about the LOO weights.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> from skabi import AmortizedPosterior, importance_sample, make_simulator
    >>> from skabi.adapters import AsSet, Rename, make_adapter
    >>> from skabi.networks import CouplingFlow, DeepSet
    >>> def prior():
    ...     return {"mu": np.random.normal(0.0, 1.0, size=1)}
    >>> def likelihood(mu):
    ...     return {"x": np.random.normal(mu, 1.0, size=(8, 1))}
    >>> adapter = make_adapter(AsSet("x"), Rename("mu", "inference_variables"),
    ...                        Rename("x", "summary_variables"))
    >>> est = AmortizedPosterior(adapter=adapter, summary_network=DeepSet(summary_dim=4),
    ...                          inference_network=CouplingFlow(depth=2), epochs=2,
    ...                          batches_per_epoch=20, random_state=0)
    >>> est = est.fit(make_simulator([prior, likelihood]))
    >>> def log_lik(draws, observed):      # (S, N): every draw, every observation
    ...     return stats.norm.logpdf(observed["x"][None, :, 0], draws["mu"], 1.0)
    >>> x = {"x": np.random.default_rng(1).normal(0.5, 1.0, size=(2, 8, 1))}
    >>> idata = importance_sample(est, log_lik, x, {"mu": stats.norm(0, 1)},
    ...                           num_samples=500, random_state=0)
    >>> idata.posterior["mu"].shape
    (1, 500, 2)
    >>> idata.sample_stats["pareto_k"].dims
    ('dataset',)
    """
    import xarray as xr

    from ._arviz import as_datatree, from_datatree, to_arviz

    _check_models(posterior, likelihood, prior)
    num_samples = check_positive_int("num_samples", num_samples)
    proposals = check_positive_int("proposals", proposals)
    if proposals * num_samples < MIN_PROPOSALS:
        raise ValueError(f"proposals * num_samples = {proposals * num_samples}: importance "
                         f"sampling needs at least {MIN_PROPOSALS} proposals per dataset for "
                         "Pareto k (the tail of its weights); raise proposals.")
    data = posterior._observations(X, meta)     # checked before anything is drawn
    n = next(batch_size_of(v) for v in data.values() if batch_size_of(v) is not None)
    per = posterior.role_shapes_["inference_variables"] + 3   # draws, log q, prior, likelihood
    check_result_size("num_samples", num_samples, n * proposals * num_samples * per,
                      what=f"{n} datasets x {proposals} proposals x {num_samples} draws x "
                           f"{per} values")
    rng = posterior._rng(random_state)
    draws, log_w, data = proposal_weights(posterior, likelihood, X, prior,
                                          num_samples=proposals * num_samples, meta=meta,
                                          random_state=rng)
    log_ml, _, _ = raw_weights_summary(log_w)
    smoothed, k = psis(log_w)
    weights = np.exp(smoothed)
    weights /= weights.sum(axis=1, keepdims=True)
    ess = 1.0 / (weights ** 2).sum(axis=1)
    picks = np.stack([_systematic(w, num_samples, rng) for w in weights])  # (K, num_samples)
    chosen = {name: np.take_along_axis(v, picks.reshape(picks.shape + (1,) * (v.ndim - 2)),
                                       axis=1)
              for name, v in draws.items()}
    poor = np.flatnonzero(k > PARETO_K_LIMIT)
    if poor.size:
        warnings.warn(f"Pareto k above {PARETO_K_LIMIT} for {poor.size} of {len(k)} datasets "
                      f"(e.g. dataset {int(poor[0])}: k = {k[poor[0]]:.2f}): the posterior "
                      "network does not cover the posterior there, and those draws are "
                      "unreliable (see sample_stats.pareto_k).", stacklevel=2)

    truth = {name: np.asarray(data[name]) for name in draws if name in data}
    observed = {name: v for name, v in data.items() if name not in draws}
    container = to_arviz(chosen, true_values=truth or None, observed=observed,
                         constant_keys=posterior._meta_keys(), dims=dims, coords=coords)
    tree = as_datatree(container)
    stats = xr.Dataset({"pareto_k": ("dataset", k), "ess": ("dataset", ess),
                        "log_ml": ("dataset", log_ml)},
                       coords={"dataset": tree["posterior"].coords["dataset"].values})
    groups = {g: tree[g].to_dataset() for g in tree.children}
    groups["sample_stats"] = stats
    return from_datatree(xr.DataTree.from_dict(groups))
