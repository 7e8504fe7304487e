"""Diagnostic plots; each returns a :class:`matplotlib.figure.Figure`.

Names follow BayesFlow's ``bayesflow.diagnostics.plots``. Inputs as in
:mod:`skabi.diagnostics`: the ArviZ container from ``est.sample(...)`` or
``estimates=``/``targets=`` dicts of arrays; ``variable_keys`` selects variables and
``variable_names`` labels elements. Styling goes through ``**kwargs`` (passed to the main
matplotlib call of each plot) and matplotlib's rcParams (``plt.rc_context``).
"""

from .calibration import calibration_ecdf, calibration_histogram
from .loss import loss
from .model_comparison import model_calibration
from .pairs import pairs_posterior, pairs_samples
from .misspecification import mmd_hypothesis_test, summary_space
from .recovery import recovery, z_score_contraction
from .tarp import latent_space, tarp

__all__ = [
    "calibration_ecdf",
    "calibration_histogram",
    "loss",
    "mmd_hypothesis_test",
    "model_calibration",
    "pairs_posterior",
    "pairs_samples",
    "latent_space",
    "recovery",
    "summary_space",
    "tarp",
    "z_score_contraction",
]
