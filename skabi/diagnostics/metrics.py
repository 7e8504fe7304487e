"""Posterior metrics against known true values: coverage, contraction, z-scores, RMSE.

Every function takes the ArviZ container returned by ``est.sample(...)`` as first argument
or ``estimates={name: (n_datasets, n_draws, ...)}`` and ``targets={name: (n_datasets, ...)}``,
and returns a pandas object with one row or column per variable element.
"""

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ._inputs import resolve
from .sbc import calibration_error, pit_values, sbc_ranks

__all__ = [
    "expected_coverage",
    "posterior_contraction",
    "posterior_z_score",
    "root_mean_squared_error",
    "calibration_error",
    "sbc_ranks",
    "pit_values",
]

DEFAULT_LEVELS = (0.5, 0.8, 0.9, 0.95)


def _per_dataset(values, inputs):
    frame = pd.DataFrame(values, columns=pd.Index(inputs.labels, name="variable"))
    frame.index.name = "dataset"
    return frame


def expected_coverage(
    estimates=None,
    targets=None,
    *,
    levels=DEFAULT_LEVELS,
    variable_keys=None,
    variable_names=None,
    test_quantities=None,
    data=None,
):
    """Fraction of datasets whose true value lies in the central posterior interval.

    The central interval of level ``l`` runs between the ``(1 - l) / 2`` and ``(1 + l) / 2``
    quantiles of the draws. For calibrated draws the coverage equals ``l`` up to Monte
    Carlo error (standard error ``sqrt(l (1 - l) / n_datasets)``); lower is overconfident,
    higher underconfident.

    Parameters
    ----------
    estimates, targets, variable_keys, variable_names, test_quantities, data
        See :func:`~skabi.diagnostics.sbc_ranks`.
    levels : sequence of float in (0, 1), default (0.5, 0.8, 0.9, 0.95)

    Returns
    -------
    pandas.DataFrame of shape (n_elements, n_levels)
        Index: elements; columns: levels.

    Examples
    --------
    Exact posterior draws for ``theta ~ N(0, 1)`` observed once with noise,
    ``y ~ N(theta, 0.5**2)``: the posterior is ``N(0.8 y, 0.2)``. 200 datasets, 500 draws,
    two parameters:

    >>> import numpy as np
    >>> from skabi.diagnostics import expected_coverage
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(200, 2))
    >>> y = theta + 0.5 * rng.normal(size=(200, 2))
    >>> draws = 0.8 * y[:, None, :] + 0.2 ** 0.5 * rng.normal(size=(200, 500, 2))
    >>> coverage = expected_coverage({"theta": draws}, {"theta": theta}, levels=[0.5, 0.9])
    >>> coverage.index.tolist(), coverage.columns.tolist()
    (['theta[0]', 'theta[1]'], [0.5, 0.9])
    >>> np.allclose(coverage, [0.5, 0.9], atol=0.1)
    True
    """
    levels = np.atleast_1d(np.asarray(levels, dtype=float))
    if np.any((levels <= 0) | (levels >= 1)):
        raise ValueError(f"levels must lie strictly between 0 and 1; got {levels.tolist()}.")
    inputs = resolve(
        estimates, targets, variable_keys=variable_keys, variable_names=variable_names,
        test_quantities=test_quantities, data=data,
    )
    q = np.concatenate([(1 - levels) / 2, (1 + levels) / 2])
    bounds = np.quantile(inputs.draws, q, axis=1)  # (2L, K, E)
    lo, hi = bounds[: levels.size], bounds[levels.size:]
    inside = (inputs.truths[None] >= lo) & (inputs.truths[None] <= hi)
    coverage = inside.mean(axis=1).T  # (E, L)
    frame = pd.DataFrame(
        coverage,
        index=pd.Index(inputs.labels, name="variable"),
        columns=pd.Index(levels, name="level"),
    )
    return frame


def _prior_variance(prior_variance, inputs, keys):
    """Prior variance per element, shape (E,)."""
    n_elements = inputs.draws.shape[-1]
    if prior_variance is None:
        if inputs.n_datasets < 2:
            raise ValueError(
                "The prior variance is estimated from the spread of the true values across "
                "datasets, which needs at least 2 datasets; pass prior_variance=."
            )
        return inputs.truths.var(axis=0, ddof=1)
    if isinstance(prior_variance, Mapping):
        parts = []
        for key in keys:
            if key not in prior_variance:
                raise KeyError(f"prior_variance has no entry for variable {key!r}.")
            shape = inputs.estimates[key].shape[2:]
            parts.append(np.broadcast_to(np.asarray(prior_variance[key], float), shape).ravel())
        var = np.concatenate(parts) if parts else np.empty(0)
    else:
        var = np.asarray(prior_variance, dtype=float)
        if var.ndim == 0:
            var = np.full(n_elements, float(var))
    if var.shape != (n_elements,):
        raise ValueError(
            f"prior_variance has shape {var.shape}; expected a scalar, a dict by variable or "
            f"({n_elements},), one value per element {inputs.names!r}."
        )
    if np.any(var <= 0):
        raise ValueError(f"prior_variance must be positive; got {var.tolist()}.")
    return var


def posterior_contraction(
    estimates=None,
    targets=None,
    *,
    prior_variance=None,
    variable_keys=None,
    variable_names=None,
    summary=False,
):
    """Posterior contraction ``1 - posterior variance / prior variance`` per dataset.

    Near 1: the data pinned the parameter down; near 0: the posterior is as wide as the
    prior; negative: wider than the prior.

    Parameters
    ----------
    estimates, targets, variable_keys, variable_names
        See :func:`~skabi.diagnostics.sbc_ranks`.
    prior_variance : float, ndarray of shape (n_elements,) or dict of str to array, optional
        Default: the variance (ddof=1) of the true values across datasets, which estimates
        the prior variance when the true values were drawn from the prior. Without it,
        ``targets`` may be omitted.
    summary : bool, default False
        Return the median over datasets, one value per element.

    Returns
    -------
    pandas.DataFrame of shape (n_datasets, n_elements), or pandas.Series (``summary``)

    Examples
    --------
    Exact posterior draws for ``theta ~ N(0, 1)`` observed once with noise,
    ``y ~ N(theta, 0.5**2)``: the posterior is ``N(0.8 y, 0.2)``. 200 datasets, 500 draws,
    two parameters:

    >>> import numpy as np
    >>> from skabi.diagnostics import posterior_contraction
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(200, 2))
    >>> y = theta + 0.5 * rng.normal(size=(200, 2))
    >>> draws = 0.8 * y[:, None, :] + 0.2 ** 0.5 * rng.normal(size=(200, 500, 2))
    >>> posterior_contraction({"theta": draws}, {"theta": theta}).shape
    (200, 2)
    >>> contraction = posterior_contraction({"theta": draws}, prior_variance=1.0, summary=True)
    >>> contraction.round(1).tolist()  # 1 - 0.2 / 1
    [0.8, 0.8]
    """
    inputs = resolve(
        estimates, targets, variable_keys=variable_keys, variable_names=variable_names,
        require_targets=prior_variance is None,
    )
    keys = list(variable_keys) if variable_keys is not None else list(inputs.estimates)
    prior_var = _prior_variance(prior_variance, inputs, keys)
    post_var = inputs.draws.var(axis=1, ddof=1)
    frame = _per_dataset(1 - post_var / prior_var, inputs)
    if summary:
        return frame.median(axis=0).rename("contraction")
    return frame


def posterior_z_score(
    estimates=None,
    targets=None,
    *,
    variable_keys=None,
    variable_names=None,
    summary=False,
):
    """Posterior z-score ``(posterior mean - true value) / posterior sd`` per dataset.

    For calibrated (approximately Gaussian) posteriors most values lie in [-2, 2]; large
    absolute values flag bias or overconfidence.

    Parameters
    ----------
    estimates, targets, variable_keys, variable_names
        See :func:`~skabi.diagnostics.sbc_ranks`.
    summary : bool, default False
        Return the median absolute z-score over datasets, one value per element
        (about 0.67 for calibrated Gaussian posteriors).

    Returns
    -------
    pandas.DataFrame of shape (n_datasets, n_elements), or pandas.Series (``summary``)

    Examples
    --------
    Exact posterior draws for ``theta ~ N(0, 1)`` observed once with noise,
    ``y ~ N(theta, 0.5**2)``: the posterior is ``N(0.8 y, 0.2)``. 200 datasets, 500 draws,
    two parameters:

    >>> import numpy as np
    >>> from skabi.diagnostics import posterior_z_score
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(200, 2))
    >>> y = theta + 0.5 * rng.normal(size=(200, 2))
    >>> draws = 0.8 * y[:, None, :] + 0.2 ** 0.5 * rng.normal(size=(200, 500, 2))
    >>> z = posterior_z_score({"theta": draws}, {"theta": theta})
    >>> z.shape, bool((z.abs() < 2).to_numpy().mean() > 0.9)
    ((200, 2), True)
    """
    inputs = resolve(
        estimates, targets, variable_keys=variable_keys, variable_names=variable_names,
    )
    mean = inputs.draws.mean(axis=1)
    sd = inputs.draws.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (mean - inputs.truths) / sd
    frame = _per_dataset(z, inputs)
    if summary:
        return frame.abs().median(axis=0).rename("median_abs_z")
    return frame


def root_mean_squared_error(
    estimates=None,
    targets=None,
    *,
    normalize="range",
    variable_keys=None,
    variable_names=None,
):
    """Root mean squared error of the posterior mean across datasets, normalised.

    ``sqrt(mean_k (mean_s theta_ks - theta*_k)^2) / scale``.

    Parameters
    ----------
    estimates, targets, variable_keys, variable_names
        See :func:`~skabi.diagnostics.sbc_ranks`.
    normalize : {"range", "sd", None}, default "range"
        ``scale`` is the range (max - min) of the true values across datasets (as in
        BayesFlow), their standard deviation (ddof=1; then about ``sqrt(1 - contraction)``
        for calibrated posteriors, 1 means no better than the prior mean), or 1 (raw RMSE).

    Returns
    -------
    pandas.Series of length n_elements

    Examples
    --------
    Exact posterior draws for ``theta ~ N(0, 1)`` observed once with noise,
    ``y ~ N(theta, 0.5**2)``: the posterior is ``N(0.8 y, 0.2)``. 200 datasets, 500 draws,
    two parameters:

    >>> import numpy as np
    >>> from skabi.diagnostics import root_mean_squared_error
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(200, 2))
    >>> y = theta + 0.5 * rng.normal(size=(200, 2))
    >>> draws = 0.8 * y[:, None, :] + 0.2 ** 0.5 * rng.normal(size=(200, 500, 2))
    >>> rmse = root_mean_squared_error({"theta": draws}, {"theta": theta}, normalize=None)
    >>> rmse.index.tolist(), np.allclose(rmse, 0.2 ** 0.5, atol=0.1)  # the posterior sd
    (['theta[0]', 'theta[1]'], True)
    """
    if normalize not in ("range", "sd", None):
        raise ValueError(f"normalize must be 'range', 'sd' or None; got {normalize!r}.")
    inputs = resolve(
        estimates, targets, variable_keys=variable_keys, variable_names=variable_names,
    )
    err = inputs.draws.mean(axis=1) - inputs.truths
    rmse = np.sqrt(np.mean(err**2, axis=0))
    if normalize == "range":
        scale = np.ptp(inputs.truths, axis=0)
    elif normalize == "sd":
        scale = inputs.truths.std(axis=0, ddof=1) if inputs.n_datasets > 1 else np.ones_like(rmse)
    else:
        scale = np.ones_like(rmse)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = rmse / scale
    name = "rmse" if normalize is None else f"nrmse_{normalize}"
    return pd.Series(values, index=pd.Index(inputs.labels, name="variable"), name=name)
