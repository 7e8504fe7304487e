"""Extra loss terms of the trained model (hooks the engine adds to ``Approximator.loss``).

:class:`SummaryMMD` pulls the summary network's outputs toward a unit Gaussian with a
maximum mean discrepancy penalty (Schmitt, Bürkner, Köthe and Radev 2023, "Detecting
model misspecification in amortized Bayesian inference with neural networks"): with a
known distribution of summaries for data the model can produce, the summaries of
observed data can be tested against it (:mod:`skabi.diagnostics.misspecification`).
"""

import torch

__all__ = ["SummaryMMD", "mmd_squared"]

#: Bandwidths (squared) of the Gaussian kernels, relative to the summary dimension.
_SCALES = (0.1, 0.5, 1.0, 2.0, 5.0)


def mmd_squared(a, b):
    """Biased MMD^2 between rows of ``a`` (n, d) and ``b`` (m, d), sum of Gaussian kernels
    ``exp(-|x - y|^2 / (2 s d))`` over the scales ``s`` in ``(0.1, 0.5, 1, 2, 5)``."""
    d = a.shape[-1]
    both = torch.cat([a, b])
    sq = torch.cdist(both, both).pow(2)
    k = sum(torch.exp(-sq / (2.0 * s * d)) for s in _SCALES)
    n = a.shape[0]
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


class SummaryMMD:
    """``weight * MMD^2(summaries, N(0, I) draws)``: a loss term for ``Approximator``.

    Parameters
    ----------
    weight : float
    """

    def __init__(self, weight):
        self.weight = float(weight)

    def __call__(self, summaries, batch):
        if summaries is None:
            return None
        reference = torch.randn_like(summaries)
        return self.weight * mmd_squared(summaries, reference)
