"""Simulation-based calibration (SBC): ranks, PIT values, ECDF bands, calibration error.

If the draws come from the exact posterior and the true values from the prior, the rank of
each true value among its draws is uniform (Talts et al. 2018). The ECDF of the PIT values
is compared with the uniform CDF inside a simultaneous confidence band (Säilynoja, Bürkner
and Vehtari 2022, "Graphical test for discrete uniformity and its applications in
goodness-of-fit evaluation and multiple sample comparison", Statistics and Computing 32).
"""

import math
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats

from .._validation import as_numpy_rng
from ._inputs import resolve

__all__ = [
    "sbc_ranks",
    "pit_values",
    "ecdf_band",
    "ecdf_test",
    "eval_points",
    "calibration_error",
    "compute_pit",
    "BAND_SEED",
]

#: Seed of the Monte Carlo simulation behind :func:`ecdf_band` (deterministic bands).
BAND_SEED = 20220427
_N_SIMULATIONS = 5000
#: At most this many simulated ECDFs for one band (about 50 s for 1000 datasets).
_MAX_SIMULATIONS = 1_000_000
_RANK_TYPES = ("fractional", "distance")


def _frame(values, inputs, name=None):
    frame = pd.DataFrame(values, columns=pd.Index(inputs.labels, name="variable"))
    frame.index.name = "dataset"
    if name:
        frame.attrs["name"] = name
    return frame


def _counts(draws, truths):
    """Draws below and equal to the truth: two (K, E) int arrays."""
    below = np.sum(draws < truths[:, None, :], axis=1)
    equal = np.sum(draws == truths[:, None, :], axis=1)
    return below, equal


def _distance(draws, truths):
    """|value - posterior mean|: the distance ranks of BayesFlow's ``rank_type='distance'``."""
    center = draws.mean(axis=1, keepdims=True)
    return np.abs(draws - center), np.abs(truths - center[:, 0, :])


def compute_pit(draws, truths, *, rank_type="fractional", randomize=False, random_state=None):
    """PIT values from arrays: ``draws (K, S, E)``, ``truths (K, E)`` -> ``(K, E)``.

    Without ``randomize``, ``(rank + 0.5) / (S + 1)`` with ``rank`` the number of draws below
    the truth (ties count half). With ``randomize``, ties are broken at random and the rank
    is jittered: ``(below + U * (equal + 1)) / (S + 1)`` with ``U ~ Uniform(0, 1)``, which
    is exactly Uniform(0, 1) under calibration.
    """
    if rank_type not in _RANK_TYPES:
        raise ValueError(f"rank_type must be one of {_RANK_TYPES}; got {rank_type!r}.")
    if rank_type == "distance":
        draws, truths = _distance(draws, truths)
    below, equal = _counts(draws, truths)
    n_draws = draws.shape[1]
    if randomize:
        u = as_numpy_rng(random_state).uniform(size=below.shape)
        return (below + u * (equal + 1)) / (n_draws + 1)
    return (below + 0.5 * equal + 0.5) / (n_draws + 1)


def sbc_ranks(
    estimates=None,
    targets=None,
    *,
    variable_keys=None,
    variable_names=None,
    test_quantities=None,
    data=None,
):
    """SBC ranks: the number of draws below each true value (ties count half).

    Parameters
    ----------
    estimates : ArviZ container or dict of str to ndarray of shape (n_datasets, n_draws, ...)
        The container returned by ``est.sample(...)`` (true values from its
        ``true_values`` group), or draws per variable.
    targets : dict of str to ndarray of shape (n_datasets, ...), optional
        True values; required with dict ``estimates``.
    variable_keys : list of str, optional
        Variables to check, in order (default: all).
    variable_names : list of str, optional
        Labels, one per element (default ``"beta[0]"``, ``"sigma"``, ...).
    test_quantities : dict of str to callable, optional
        ``{name: fn}``; ``fn(params)`` (or ``fn(params, data)``) maps a dict of arrays with
        a leading batch axis to one number per batch entry. Evaluated on every draw and on
        the true values, and ranked like a parameter.
    data : dict of str to ndarray of shape (n_datasets, ...), optional
        Conditioning data for the test quantities (repeated once per draw).

    Returns
    -------
    pandas.DataFrame of shape (n_datasets, n_elements)
        Ranks in ``[0, n_draws]``; one column per element.

    Examples
    --------
    Two datasets with four draws each; the first true value ties with one draw:

    >>> import numpy as np
    >>> from skabi.diagnostics import sbc_ranks
    >>> draws = {"mu": np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.1, 0.2, 0.3]])}
    >>> truths = {"mu": np.array([2.0, 5.0])}
    >>> sbc_ranks(draws, truths)["mu"].tolist()
    [1.5, 4.0]
    """
    inputs = resolve(
        estimates, targets, variable_keys=variable_keys, variable_names=variable_names,
        test_quantities=test_quantities, data=data,
    )
    below, equal = _counts(inputs.draws, inputs.truths)
    return _frame(below + 0.5 * equal, inputs, "sbc_ranks")


def pit_values(
    estimates=None,
    targets=None,
    *,
    variable_keys=None,
    variable_names=None,
    test_quantities=None,
    data=None,
    rank_type="fractional",
    randomize=False,
    random_state=None,
):
    """Probability integral transform (PIT) values of the true values under the draws.

    ``(rank + 0.5) / (n_draws + 1)``, where ``rank`` counts the draws below the true value;
    the offset keeps values inside (0, 1) so that uniformity tests (also ArviZ's) do not
    reject exact posteriors, which ``rank / n_draws`` would. Uniform under calibration.

    Parameters
    ----------
    estimates, targets, variable_keys, variable_names, test_quantities, data
        As in :func:`sbc_ranks`.
    rank_type : {"fractional", "distance"}, default "fractional"
        ``"fractional"`` ranks the value itself; ``"distance"`` ranks its distance from the
        posterior mean among the draws' distances (sensitive to over/under-dispersion, not
        to the direction of a bias).
    randomize : bool, default False
        Jitter ranks and break ties at random (exactly continuous uniform PIT values).
    random_state : int, numpy Generator or None
        Seed for ``randomize``.

    Returns
    -------
    pandas.DataFrame of shape (n_datasets, n_elements)

    Examples
    --------
    The ranks of :func:`sbc_ranks`' example, ``1.5`` and ``4.0`` among four draws, give
    ``(1.5 + 0.5) / 5`` and ``(4 + 0.5) / 5``:

    >>> import numpy as np
    >>> from skabi.diagnostics import pit_values
    >>> draws = {"mu": np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.1, 0.2, 0.3]])}
    >>> truths = {"mu": np.array([2.0, 5.0])}
    >>> pit_values(draws, truths)["mu"].round(2).tolist()
    [0.4, 0.9]
    """
    inputs = resolve(
        estimates, targets, variable_keys=variable_keys, variable_names=variable_names,
        test_quantities=test_quantities, data=data,
    )
    pit = compute_pit(
        inputs.draws, inputs.truths, rank_type=rank_type, randomize=randomize,
        random_state=random_state,
    )
    return _frame(pit, inputs, "pit")


def eval_points(n, num_points=None, n_draws=None):
    """Points ``z`` in (0, 1) at which the PIT ECDF is tested.

    About ``num_points`` (default ``min(n, 100)``) equally spaced points, moved to the grid
    ``i / (n_draws + 1)`` when ``n_draws`` is given: there the CDF of PIT values from
    discrete ranks, ``(rank + 0.5) / (n_draws + 1)``, equals ``z`` exactly, so the test is
    exact for any number of draws (with fewer draws than points, every grid point is used).
    """
    num_points = int(num_points or min(int(n), 100))
    if num_points < 2:
        raise ValueError(f"num_points must be at least 2; got {num_points}.")
    z = np.arange(1, num_points) / num_points
    if n_draws is not None:
        grid = int(n_draws) + 1
        z = np.unique(np.round(z * grid)) / grid
        z = z[(z > 0) & (z < 1)]
    return z


def _ecdf_counts(values, z):
    """Counts of values <= z_i for each z_i, along the last axis of ``values``."""
    values = np.asarray(values)
    flat = values.reshape(-1, values.shape[-1])
    m = z.size + 1
    # bin b: z_{b-1} < v <= z_b; a value counts for every z_i with i >= b
    bins = np.searchsorted(z, flat, side="left")
    offsets = np.arange(flat.shape[0])[:, None] * m
    hist = np.bincount((bins + offsets).ravel(), minlength=flat.shape[0] * m)
    counts = np.cumsum(hist.reshape(flat.shape[0], m), axis=1)[:, :-1]
    return counts.reshape(values.shape[:-1] + (z.size,))


def _tail_stat(counts, n, z):
    """Smallest pointwise two-sided binomial tail probability along the last axis."""
    lower = stats.binom.cdf(counts, n, z)
    upper = stats.binom.sf(counts - 1, n, z)
    return np.minimum(lower, upper).min(axis=-1)


@lru_cache(maxsize=64)
def _simulate(n, z_key, prob, n_simulations):
    """Simulate uniform ECDFs: (gamma, lower_counts, upper_counts, sorted sims, dev_band)."""
    z = np.asarray(z_key)
    rng = np.random.default_rng(BAND_SEED)
    chunk = max(1, 2_000_000 // n)  # bounded memory for many datasets
    sims, devs = [], []
    for start in range(0, n_simulations, chunk):
        size = min(chunk, n_simulations - start)
        counts = _ecdf_counts(rng.uniform(size=(size, n)), z)
        sims.append(2 * _tail_stat(counts, n, z))  # smallest gamma rejecting each ECDF
        devs.append(np.max(np.abs(counts / n - z), axis=-1))
    sims, devs = np.concatenate(sims), np.concatenate(devs)
    gamma = float(np.quantile(sims, 1 - prob, method="lower"))
    lower = stats.binom.ppf(gamma / 2, n, z)
    upper = stats.binom.ppf(1 - gamma / 2, n, z)
    return gamma, lower, upper, np.sort(sims), float(np.quantile(devs, prob))


def _simulation_budget(prob, what):
    """Simulated ECDFs for a band at level ``prob``: enough that about 50 fall beyond it
    (at least 5000), capped at :data:`_MAX_SIMULATIONS` with a warning naming ``what``."""
    wanted = max(_N_SIMULATIONS, math.ceil(50 / (1 - prob)))
    if wanted > _MAX_SIMULATIONS:
        warnings.warn(
            f"{what}: the band at level {prob:.6g} would need {wanted:,} simulated ECDFs; "
            f"using {_MAX_SIMULATIONS:,}, so its level is approximate.",
            UserWarning, stacklevel=3,
        )
    return min(wanted, _MAX_SIMULATIONS)


def _band(n, prob, num_points, n_draws, n_simulations):
    n = int(n)
    if n < 2:
        raise ValueError(f"ECDF bands need at least 2 datasets (PIT values); got {n}.")
    if not 0 < prob < 1:
        raise ValueError(f"prob must lie strictly between 0 and 1; got {prob}.")
    if n_simulations is None:
        n_simulations = _simulation_budget(prob, f"prob={prob}")
    z = eval_points(n, num_points, n_draws)
    return z, _simulate(n, tuple(z.tolist()), float(prob), int(n_simulations))


def ecdf_band(n, *, prob=0.95, num_points=None, n_draws=None, n_simulations=None):
    """Simultaneous confidence band for the ECDF of ``n`` uniform (PIT) values.

    Säilynoja, Bürkner and Vehtari (2022): the pointwise binomial band at level ``gamma`` is
    chosen so that the whole ECDF lies inside it with probability ``prob``; ``gamma`` is
    found by simulating ``n_simulations`` uniform samples with a fixed seed
    (``BAND_SEED``), so bands are deterministic; results are cached. By default as
    many as place the band well: ``50 / (1 - prob)``, at least 5000 (5000 up to
    ``prob=0.99``), at most 1,000,000 (with a warning).

    Parameters
    ----------
    n : int
        Number of PIT values (datasets).
    prob : float, default 0.95
        Simultaneous coverage.
    num_points : int, optional
        Number of evaluation points, default ``min(n, 100)``; see ``eval_points``.
    n_draws : int, optional
        Draws per dataset behind the ranks: puts the points on the rank grid.

    Returns
    -------
    z, lower, upper : ndarray of shape (n_points,)
        Evaluation points and the band for the ECDF (fractions, not counts).

    Examples
    --------
    The ECDF of 200 uniform values stays inside the band (with probability 0.95):

    >>> import numpy as np
    >>> from skabi.diagnostics import ecdf_band
    >>> z, lower, upper = ecdf_band(200)
    >>> z.shape, bool(np.all((lower < z) & (z < upper)))
    ((99,), True)
    >>> pit = np.sort(np.random.default_rng(0).uniform(size=200))
    >>> ecdf = np.searchsorted(pit, z, side="right") / 200
    >>> bool(np.all((lower <= ecdf) & (ecdf <= upper)))
    True
    """
    z, (_, lower, upper, _, _) = _band(n, prob, num_points, n_draws, n_simulations)
    return z, lower / int(n), upper / int(n)


def ecdf_test(pit, *, prob=0.95, num_points=None, n_draws=None, n_simulations=None):
    """Calibration statistics of PIT values ``(n_datasets, n_elements)``: a dict of arrays.

    ``error`` (largest |ECDF - z|), ``band`` (its ``prob`` simultaneous threshold),
    ``inside`` (ECDF inside the Säilynoja band at every point) and ``p_value``.
    """
    pit = np.asarray(pit, dtype=float)
    n = pit.shape[0]
    z, (_, lower, upper, sims, dev_band) = _band(n, prob, num_points, n_draws, n_simulations)
    counts = _ecdf_counts(pit.T, z)  # (E, n_points)
    error = np.max(np.abs(counts / n - z), axis=-1)
    inside = np.all((counts >= lower) & (counts <= upper), axis=-1)
    observed = 2 * _tail_stat(counts, n, z)
    p_value = np.searchsorted(sims, observed, side="right") / sims.size
    return {
        "error": error,
        "band": np.full(error.shape, dev_band),
        "inside": inside,
        "p_value": p_value,
    }


def calibration_error(
    estimates=None,
    targets=None,
    *,
    variable_keys=None,
    variable_names=None,
    test_quantities=None,
    data=None,
    rank_type="fractional",
    prob=0.95,
    num_points=None,
    family_wise=False,
):
    """Largest deviation of the PIT (rank) ECDF from the uniform CDF, with its band.

    Parameters
    ----------
    estimates, targets, variable_keys, variable_names, test_quantities, data
        As in :func:`sbc_ranks`.
    rank_type : {"fractional", "distance"}, default "fractional"
        See :func:`pit_values`.
    prob : float, default 0.95
        Simultaneous coverage of the bands.
    num_points : int, optional
        Evaluation points of the ECDF (default ``min(n_datasets, 100)``, moved onto the
        rank grid; see ``eval_points``).
    family_wise : bool, default False
        One verdict for all elements at once. With ``False`` each element is tested at level
        ``1 - prob``, so an exactly calibrated posterior with ``E`` independent elements has
        at least one ``inside == False`` with probability ``1 - prob ** E`` (19% for 4
        elements at 0.95). With ``True`` the bands are widened for the number of elements
        (Bonferroni: each at level ``(1 - prob) / E``) and ``p_value`` is multiplied by
        ``E`` (capped at 1), so that the chance of any false alarm is at most ``1 - prob``
        whatever the dependence between elements. The widened bands are simulated with
        enough ECDFs (``50 E / (1 - prob)``, at least 5000) that their level holds for many
        elements too; past 1,000,000 simulations (more than 1000 elements at 0.95) a
        warning says the level is approximate.

    Returns
    -------
    pandas.DataFrame, one row per element, columns

    ``error``
        ``max_i |ECDF(z_i) - z_i|`` (0 is perfect; Kolmogorov-Smirnov-like).
    ``band``
        The ``prob`` quantile (``1 - (1 - prob) / E`` with ``family_wise=True``) of
        ``error`` for exactly calibrated draws with as many datasets (simulated): a
        simultaneous, constant-width band for ``error``.
    ``inside``
        Whether the ECDF lies inside the simultaneous band of Säilynoja et al. (2022) at
        every point, the graphical test that :func:`~skabi.diagnostics.plots.calibration_ecdf`
        draws (per element, at ``prob``). ``False`` flags miscalibration of the element at
        level ``1 - prob``, or with ``family_wise=True`` at level ``(1 - prob) / E``, so
        that any ``False`` flags the posterior at level ``1 - prob``.
    ``p_value``
        Fraction of calibrated simulations that leave the pointwise binomial band at least
        as early as the observed ECDF (the test behind ``inside``); Bonferroni-adjusted
        with ``family_wise=True``. ``inside == False`` implies ``p_value <= 1 - prob``
        (the converse can fail only when the ECDF touches the band's edge exactly).

    Examples
    --------
    Exact posterior draws of a conjugate Gaussian model, 200 datasets x 500 draws, two
    parameters:

    >>> import numpy as np
    >>> from skabi.diagnostics import calibration_error
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(200, 2))
    >>> x = theta[:, None, :] + rng.normal(size=(200, 10, 2))
    >>> mean, sd = x.sum(axis=1) / 11, 11 ** -0.5
    >>> draws = mean[:, None, :] + sd * rng.normal(size=(200, 500, 2))
    >>> frame = calibration_error({"theta": draws}, {"theta": theta}, family_wise=True)
    >>> list(frame.index), list(frame.columns)
    (['theta[0]', 'theta[1]'], ['error', 'band', 'inside', 'p_value'])
    >>> bool(frame["inside"].all())
    True
    """
    if not isinstance(family_wise, (bool, np.bool_)):
        raise TypeError(f"family_wise must be True or False; got {family_wise!r}.")
    inputs = resolve(
        estimates, targets, variable_keys=variable_keys, variable_names=variable_names,
        test_quantities=test_quantities, data=data,
    )
    pit = compute_pit(inputs.draws, inputs.truths, rank_type=rank_type)
    n_elements = pit.shape[1]
    level, n_simulations = float(prob), None
    if family_wise and 0 < level < 1:
        level = 1 - (1 - level) / n_elements
        n_simulations = _simulation_budget(
            level, f"family_wise=True with {n_elements} elements at prob={prob}")
    result = ecdf_test(pit, prob=level, num_points=num_points, n_draws=inputs.n_draws,
                       n_simulations=n_simulations)
    if family_wise:
        result["p_value"] = np.minimum(1.0, result["p_value"] * n_elements)
    frame = pd.DataFrame(result, index=pd.Index(inputs.labels, name="variable"))
    frame.index.name = "variable"
    return frame
