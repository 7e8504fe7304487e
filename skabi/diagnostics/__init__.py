"""Diagnostics for amortized posteriors: calibration (SBC, TARP), recovery, contraction, C2ST.

Every function reads either the ArviZ container returned by ``est.sample(...)`` (with its
``true_values`` group) or plain dicts of arrays,
``estimates={name: (n_datasets, n_draws, ...)}`` and ``targets={name: (n_datasets, ...)}``.
Metrics return pandas objects with one row or column per variable element (``"beta[0]"``,
``"sigma"``); plots live in :mod:`skabi.diagnostics.plots` and return matplotlib Figures.
This package imports neither torch nor the estimator.
"""

from .c2st import c2st
from .classification import expected_calibration_error
from .metrics import (
    expected_coverage,
    posterior_contraction,
    posterior_z_score,
    root_mean_squared_error,
)
from .misspecification import MMDTest, mmd, summary_mmd_test
from .sbc import calibration_error, ecdf_band, pit_values, sbc_ranks
from .tarp import tarp, tarp_coverage, tarp_values

__all__ = [
    "MMDTest",
    "c2st",
    "calibration_error",
    "ecdf_band",
    "expected_calibration_error",
    "expected_coverage",
    "mmd",
    "pit_values",
    "posterior_contraction",
    "posterior_z_score",
    "root_mean_squared_error",
    "sbc_ranks",
    "summary_mmd_test",
    "tarp",
    "tarp_coverage",
    "tarp_values",
]


def __getattr__(name):
    # ``skabi.diagnostics.plots`` imports matplotlib; load it on first use only
    if name == "plots":
        import importlib

        return importlib.import_module(".plots", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
