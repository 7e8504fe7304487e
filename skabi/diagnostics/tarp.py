"""TARP: tests of accuracy with random points (Lemos, Coogan, Hezaveh and Perreault-Levasseur
2023, "Sampling-based accuracy testing of posterior estimators for general inference",
ICML).

For each dataset ``k`` a reference point ``r_k`` is drawn at random in parameter space;
``f_k`` is the fraction of posterior draws closer to ``r_k`` than the true value is. For
the exact posterior, ``f_k`` is uniform on (0, 1), so the *expected coverage probability*
``ECP(alpha) = mean_k 1[f_k < alpha]`` of the balls around the reference points equals the
credibility level ``alpha`` at every level; TARP's coverage test is necessary and
sufficient for the posterior to be exact (Lemos et al., Theorem 3), where SBC of the
marginals checks one element at a time. The ECP curve is the ECDF of ``f``, so it is
tested with the same simultaneous band as the SBC rank ECDF
(:func:`skabi.diagnostics.ecdf_band`).
"""

import numpy as np
import pandas as pd

from .._validation import as_numpy_rng
from ._inputs import resolve
from .sbc import ecdf_band, ecdf_test

__all__ = ["tarp_values", "tarp_coverage", "tarp"]


def _references(truths, draws, rng):
    """Normalised truths and draws, and reference points uniform over the truths' box."""
    center = truths.mean(axis=0)
    scale = truths.std(axis=0) if truths.shape[0] > 1 else np.ones(truths.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    t = (truths - center) / scale
    d = (draws - center) / scale
    lo, hi = t.min(axis=0), t.max(axis=0)
    refs = rng.uniform(lo, np.where(hi > lo, hi, lo + 1.0), size=t.shape)
    return t, d, refs


def tarp_values(estimates=None, targets=None, *, variable_keys=None, references=None,
                random_state=0):
    """The TARP statistic ``f`` of each dataset: uniform on (0, 1) for the exact posterior.

    Parameters
    ----------
    estimates : ArviZ container or dict of str to ndarray of shape (n_datasets, n_draws, ...)
    targets : dict of str to ndarray of shape (n_datasets, ...), optional
        True values (default: the container's ``true_values`` group).
    variable_keys : list of str, optional
        The variables whose joint posterior is tested (default: all).
    references : ndarray of shape (n_datasets, n_elements), optional
        Reference points on the normalised scale (elements standardized by the mean and
        sd of the true values over datasets). By default uniform over the box spanned by
        the normalised true values.
    random_state : None, int or numpy.random.Generator, default=0
        Seed of the reference points (fixed by default, so results are reproducible).

    Returns
    -------
    ndarray of shape (n_datasets,)
        ``(n_closer + 0.5) / (n_draws + 1)``, where ``n_closer`` counts draws closer to
        the reference point than the true value (ties count half).
    """
    inputs = resolve(estimates, targets, variable_keys=variable_keys)
    truths, draws, refs = _references(inputs.truths, inputs.draws, as_numpy_rng(random_state))
    if references is not None:
        refs = np.asarray(references, dtype=float)
        if refs.shape != truths.shape:
            raise ValueError(f"references has shape {refs.shape}; expected {truths.shape} "
                             "(n_datasets, n_elements).")
    d_draws = np.linalg.norm(draws - refs[:, None, :], axis=-1)
    d_truth = np.linalg.norm(truths - refs, axis=-1)
    closer = np.sum(d_draws < d_truth[:, None], axis=1) + 0.5 * np.sum(
        d_draws == d_truth[:, None], axis=1)
    return (closer + 0.5) / (inputs.n_draws + 1)


def tarp_coverage(estimates=None, targets=None, *, variable_keys=None, prob=0.95,
                  num_points=None, references=None, random_state=0):
    """Expected coverage probability over credibility levels, with its simultaneous band.

    Parameters
    ----------
    estimates, targets, variable_keys, references, random_state
        See :func:`tarp_values`.
    prob : float, default=0.95
        Simultaneous coverage of the band.
    num_points : int, optional
        Credibility levels (default ``min(n_datasets, 100)``).

    Returns
    -------
    pandas.DataFrame
        Columns ``credibility`` (alpha), ``coverage`` (ECP), ``lower`` and ``upper`` (the
        band for an exact posterior); one row per level.
    """
    f = np.sort(tarp_values(estimates, targets, variable_keys=variable_keys,
                            references=references, random_state=random_state))
    z, lower, upper = ecdf_band(f.size, prob=prob, num_points=num_points)
    ecp = np.searchsorted(f, z, side="right") / f.size
    return pd.DataFrame({"credibility": z, "coverage": ecp, "lower": lower, "upper": upper})


def tarp(estimates=None, targets=None, *, variable_keys=None, prob=0.95, num_points=None,
         references=None, random_state=0):
    """TARP's coverage test of the joint posterior: one verdict for all parameters.

    Parameters
    ----------
    estimates, targets, variable_keys, references, random_state
        See :func:`tarp_values`.
    prob : float, default=0.95
    num_points : int, optional

    Returns
    -------
    pandas.Series
        ``error`` (largest ``|ECP(alpha) - alpha|``), ``band`` (its ``prob`` quantile for
        an exact posterior with as many datasets), ``inside`` (the ECP curve inside the
        simultaneous band at every level), ``p_value`` and ``atc`` (area between the curve
        and the diagonal, signed: coverage above credibility counts positive). With
        random reference points an overconfident posterior can give an S-shaped curve
        whose signed area nearly cancels; judge by ``inside`` and ``error``.

    Examples
    --------
    Exact posterior draws of a conjugate Gaussian model, and the same draws with their sd
    halved (overconfident):

    >>> import numpy as np
    >>> from skabi.diagnostics import tarp
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(300, 2))
    >>> x = theta[:, None, :] + rng.normal(size=(300, 10, 2))
    >>> mean, sd = x.sum(axis=1) / 11, 11 ** -0.5
    >>> noise = rng.normal(size=(300, 500, 2))
    >>> bool(tarp({"theta": mean[:, None] + sd * noise}, {"theta": theta})["inside"])
    True
    >>> bool(tarp({"theta": mean[:, None] + sd / 2 * noise}, {"theta": theta})["inside"])
    False
    """
    f = tarp_values(estimates, targets, variable_keys=variable_keys, references=references,
                    random_state=random_state)
    result = {k: v[0] for k, v in ecdf_test(f[:, None], prob=prob, num_points=num_points).items()}
    grid = np.linspace(0, 1, 201)
    ecp = np.searchsorted(np.sort(f), grid, side="right") / f.size
    result["atc"] = float(np.trapezoid(ecp - grid, grid))
    result["inside"] = bool(result["inside"])
    return pd.Series(result, name="tarp")
