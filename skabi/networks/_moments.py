"""Second-order (moment) pooling of a set: means, conditional scales and regressions.

Mean or max pooling of learned per-element features can represent a sample variance only
approximately: the network must learn squares of its inputs and then subtract two nearly
equal large numbers, and where a scale is small next to a location (a residual sd of 0.1
under a trend of slope 2) that loses the precision a posterior needs. Second-order
pooling computes these statistics exactly from ``k`` learned linear projections
``z_i = W u_i + b`` of each element ``u_i``: their means, and a masked modified
Gram-Schmidt orthogonalisation of the centred projections, which gives, for each
projection, the least-squares coefficients on the previous ones and the log of its
residual root mean square (the log of the diagonal of the Cholesky factor of the
projections' covariance). With ``z_1 = x`` and ``z_2 = y`` those are the mean of ``x`` and
``y``, the slope of ``y`` on ``x`` and the log residual sd of the regression: the
sufficient statistics of a linear-Gaussian model, computed from the residual vectors
(as a QR factorisation does), not from a difference of raw moments.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["MomentPool"]

#: floor of a residual mean square, relative to the projection's total variance: a
#: residual sd below 1e-5 of the projection's sd reads as 1e-5 of it (float32 resolves
#: about 1e-7 of a value, so residuals near the floor keep about two digits)
RELATIVE_FLOOR = 1e-10
#: absolute floor of a residual mean square (a projection constant over a set)
ABSOLUTE_FLOOR = 1e-12


class MomentPool(nn.Module):
    """Pool ``k`` learned projections of each element by their first and second moments.

    Parameters
    ----------
    in_dim : int
        Features per element.
    k : int
        Number of projections.
    raw_dim : int, default=0
        The first ``raw_dim`` inputs are an element's raw features: the first
        ``min(raw_dim, k)`` projections are linear maps of those alone, starting as the
        features themselves, and come first in the orthogonalisation; the others read all
        ``in_dim`` inputs.

    Attributes
    ----------
    out_dim : int
        ``k`` means, ``k`` log residual sds and ``k (k - 1) / 2`` regression coefficients:
        ``k (k + 3) / 2``.

    Examples
    --------
    >>> import torch
    >>> from skabi.networks._moments import MomentPool
    >>> pool = MomentPool(in_dim=2, k=2, raw_dim=2)     # starts as the raw x and y
    >>> x = torch.randn(1, 200, 1)
    >>> y = 1.0 + 2.0 * x + 0.1 * torch.randn(1, 200, 1)
    >>> out = pool(torch.cat([x, y], -1), None)     # mean x, mean y, log sds, slope
    >>> round(float(out[0, -1]), 1), round(float(out[0, 3].exp()), 1)
    (2.0, 0.1)
    """

    def __init__(self, in_dim: int, k: int, raw_dim: int = 0):
        super().__init__()
        self.k = k
        self.raw_dim = raw_dim
        self.n_raw = min(raw_dim, k)
        # projections of the raw features alone, starting as those features: their moments
        # are exact from the first step and never mixed with nonlinear per-element features
        # (whose part that is not linear in the raw features would add to a residual)
        self.raw = nn.Linear(raw_dim, self.n_raw) if self.n_raw else None
        if self.raw is not None:
            with torch.no_grad():
                self.raw.weight.copy_(torch.eye(self.n_raw, raw_dim))
                self.raw.bias.zero_()
        self.proj = nn.Linear(in_dim, k - self.n_raw) if k > self.n_raw else None
        self.out_dim = k * (k + 3) // 2

    def forward(self, u: Tensor, mask: Tensor | None) -> Tensor:
        """Moments (B, out_dim) of the projections of ``u`` (B, N, in_dim).

        ``mask`` (B, N) is True for real elements; padding contributes nothing. A set of
        one element has residuals 0 (its log sds read the absolute floor).
        """
        parts = []
        if self.raw is not None:
            parts.append(self.raw(u[..., :self.raw_dim]))
        if self.proj is not None:
            parts.append(self.proj(u))
        z = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        if mask is None:
            weight = torch.ones_like(z[..., :1])
        else:
            weight = mask.unsqueeze(-1).to(z.dtype)
        n = weight.sum(1).clamp_min(1.0)                                   # (B, 1)
        mean = (z * weight).sum(1) / n                                      # (B, k)
        centred = (z - mean[:, None]) * weight                               # padding -> 0
        floor = RELATIVE_FLOOR * centred.square().sum(1) + ABSOLUTE_FLOOR    # (B, k)
        residuals, squares, coefs, log_sds = [], [], [], []
        for j in range(self.k):
            r = centred[..., j]
            for prev, ss_prev in zip(residuals, squares):
                c = (r * prev).sum(1) / ss_prev
                coefs.append(c)
                r = r - c[:, None] * prev
            ss = r.square().sum(1) + floor[:, j]
            residuals.append(r)
            squares.append(ss)
            log_sds.append(0.5 * torch.log(ss / n[:, 0]))
        return torch.cat([mean, torch.stack(log_sds, -1)] +
                         ([torch.stack(coefs, -1)] if coefs else []), dim=-1)
