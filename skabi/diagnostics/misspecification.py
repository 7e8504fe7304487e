"""Model misspecification detection in summary space (Schmitt, Bürkner, Köthe and Radev
2023, "Detecting model misspecification in amortized Bayesian inference with neural
networks").

Trained with an MMD penalty toward N(0, I) (``AmortizedPosterior(summary_mmd_weight=...)``),
the summary network maps data the model can produce to a known region. The statistic is
the maximum mean discrepancy (MMD) between the summaries of the ``M`` observed datasets and
those of many simulated datasets; its null distribution comes from sets of ``M`` further
simulated datasets (the same size and count as the observed ones) compared with the same
simulations; the p-value is the fraction of the null at or above the observed statistic.
Summaries come from :meth:`skabi.AmortizedPosterior.summaries`; this module sees arrays
only.
"""

from dataclasses import dataclass, field

import numpy as np

from .._validation import as_numpy_rng

__all__ = ["mmd", "summary_mmd_test", "MMDTest"]

_SCALES = (0.1, 0.5, 1.0, 2.0, 5.0)


def _kernel(a, b, d):
    sq = np.sum(a ** 2, 1)[:, None] + np.sum(b ** 2, 1)[None, :] - 2 * a @ b.T
    sq = np.maximum(sq, 0.0)
    return sum(np.exp(-sq / (2.0 * s * d)) for s in _SCALES)


def _kernel_mean(a, b, d):
    return _kernel(a, b, d).mean()


def mmd(a, b):
    """Biased estimate of the MMD between the rows of ``a`` (n, d) and ``b`` (m, d).

    Sum of Gaussian kernels ``exp(-|x - y|^2 / (2 s d))`` with ``s`` in
    ``(0.1, 0.5, 1, 2, 5)`` (the kernel of the training penalty).

    Returns
    -------
    float
        ``sqrt(max(MMD^2, 0))``; 0 for identical samples.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(200, 2)), rng.normal(size=(200, 2))
    >>> mmd(a, b) < mmd(a, b + 2)
    True
    """
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    d = a.shape[1]
    sq = _kernel_mean(a, a, d) + _kernel_mean(b, b, d) - 2 * _kernel_mean(a, b, d)
    return float(np.sqrt(max(sq, 0.0)))


@dataclass
class MMDTest:
    """Result of :func:`summary_mmd_test`.

    Attributes
    ----------
    statistic : float
        MMD between the observed summaries and the reference summaries.
    p_value : float
        ``(1 + #(null >= statistic)) / (1 + n_null)``.
    null : ndarray of shape (n_null,)
        MMDs of sets of simulated datasets of the same count as the observed ones.
    observed, reference : ndarray
        The summaries (observed ``(M, d)``, reference ``(R, d)``), for plots.
    """

    statistic: float
    p_value: float
    null: np.ndarray = field(repr=False)
    observed: np.ndarray = field(repr=False)
    reference: np.ndarray = field(repr=False)

    def reject(self, alpha=0.05):
        """Whether the test rejects "the model could have produced the data" at ``alpha``."""
        return bool(self.p_value <= alpha)


def summary_mmd_test(observed, reference, *, n_null=500, null_fraction=0.5, random_state=0):
    """MMD test of observed summaries against summaries of simulations.

    Parameters
    ----------
    observed : ndarray of shape (M, d)
        Summaries of the ``M`` observed datasets (one or many).
    reference : ndarray of shape (R, d)
        Summaries of ``R`` simulated datasets of the same size as the observed ones (the
        more the better; ``R >= 20 M`` recommended).
    n_null : int, default=500
        Sets of ``M`` simulated datasets behind the null distribution.
    null_fraction : float, default=0.5
        Share of ``reference`` kept apart to draw the null sets from; the rest is what
        both the observed and the null sets are compared with.
    random_state : None, int or numpy.random.Generator, default=0

    Returns
    -------
    MMDTest

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(size=(2000, 2))
    >>> summary_mmd_test(rng.normal(size=(5, 2)), reference).p_value > 0.05
    True
    >>> summary_mmd_test(rng.normal(size=(5, 2)) + 3, reference).p_value < 0.05
    True
    """
    observed = np.asarray(observed, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if observed.ndim == 1:
        observed = observed[None]
    if observed.ndim != 2 or reference.ndim != 2 or observed.shape[1] != reference.shape[1]:
        raise ValueError(f"observed and reference must be (M, d) and (R, d) summaries with the "
                         f"same d; got {observed.shape} and {reference.shape}.")
    for name, arr in (("observed", observed), ("reference", reference)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} summaries hold {int(np.sum(~np.isfinite(arr)))} NaN or "
                             "infinite values.")
    m = observed.shape[0]
    if not 0 < null_fraction < 1:
        raise ValueError(f"null_fraction must lie strictly between 0 and 1; got {null_fraction}.")
    n_pool = int(round(reference.shape[0] * null_fraction))
    if n_pool < 2 * m or reference.shape[0] - n_pool < 2 * m:
        raise ValueError(
            f"reference has {reference.shape[0]} simulated datasets; with {m} observed ones "
            f"it needs at least {int(np.ceil(2 * m / min(null_fraction, 1 - null_fraction)))} "
            f"(20 x {m} = {20 * m} recommended).")
    rng = as_numpy_rng(random_state)
    order = rng.permutation(reference.shape[0])
    pool, base = reference[order[:n_pool]], reference[order[n_pool:]]
    statistic = mmd(observed, base)
    d = observed.shape[1]
    base_term = _kernel_mean(base, base, d)          # the same in every null set
    cross = _kernel(pool, base, d).mean(axis=1)      # per pool row
    k_pool = _kernel(pool, pool, d)
    null = np.empty(int(n_null))
    for i in range(null.size):
        idx = rng.choice(n_pool, size=m, replace=False)
        sq = k_pool[np.ix_(idx, idx)].mean() + base_term - 2 * cross[idx].mean()
        null[i] = np.sqrt(max(sq, 0.0))
    p_value = (1 + np.sum(null >= statistic)) / (1 + null.size)
    return MMDTest(float(statistic), float(p_value), null, observed, reference)
