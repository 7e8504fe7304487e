"""
Model comparison: is there an effect at all?
============================================

Two models of N observations (N from 5 to 50): M0 says the mean is zero, M1 gives
it a standard normal prior. ``AmortizedModelComparison`` learns the posterior model
probabilities ``P(M | x)`` from simulations of both models, for any dataset in one
forward pass. Here the answer is known in closed form, so we can check it:

* the learned probabilities against the exact ones;
* their calibration, with scikit-learn's ``CalibrationDisplay`` and
  ``ConfusionMatrixDisplay`` (``skabi.diagnostics.plots.model_calibration``) and the
  expected calibration error;
* a 3-fold cross-validated log loss on a fixed labelled bank, as for any classifier.

For amortized *likelihoods* and marginal likelihoods, the other route to Bayes factors,
see the user guide's likelihood page (:class:`skabi.AmortizedLikelihood`).

Run ``python examples/model_comparison.py`` (about half a minute on one CPU core);
``--fast`` or ``SKABI_DOCS_FAST=1`` trains for a few seconds. The figure is saved as
``model_comparison_calibration.png``.
"""

import os
import sys
import time

import numpy as np
from scipy.special import expit
from sklearn.model_selection import cross_val_score

from skabi import AmortizedModelComparison, make_adapter, make_simulator
from skabi.adapters import AsSet, Broadcast, Rename, Sqrt
from skabi.diagnostics import expected_calibration_error
from skabi.diagnostics.plots import model_calibration
from skabi.model_comparison import simulate_models
from skabi.networks import DeepSet
FAST = "--fast" in sys.argv[1:] or os.environ.get("SKABI_DOCS_FAST") == "1"

# %%
# Two models
# ----------
# Both draw ``N`` once per batch; M1 adds a mean with a standard normal prior. For this
# pair the Bayes factor is known in closed form (``exact_p_effect``).


def meta(rng):
    return dict(N=int(rng.integers(5, 51)))


def no_effect(N, rng):
    return dict(x=rng.normal(size=(N, 1)))


def prior(rng):
    return dict(mu=rng.normal())


def effect(mu, N, rng):
    return dict(x=mu + rng.normal(size=(N, 1)))


def exact_p_effect(x):
    """P(M1 | x) with equal prior odds: the Bayes factor of the conjugate normal model."""
    x = np.ravel(x)
    n, s = len(x), x.sum()
    return expit(-0.5 * np.log1p(n) + s ** 2 / (2 * (n + 1)))


# %%
# Training
# --------
# A dict of simulators, one per model: every step draws fresh simulations of both.

models = {"no effect": make_simulator(no_effect, meta_fn=meta),
          "effect": make_simulator([prior, effect], meta_fn=meta)}
# The data feed a DeepSet as a set; the size N enters as a condition (sqrt N).
adapter = make_adapter(Broadcast("N", to="x"), AsSet("x"),
                       Rename("x", "summary_variables"), Sqrt("N"),
                       Rename("N", "inference_conditions"))
clf = AmortizedModelComparison(adapter=adapter, summary_network=DeepSet(),
                               epochs=2 if FAST else 20,
                               batches_per_epoch=50 if FAST else 100, random_state=0,
                               verbose=True)
t0 = time.perf_counter()
clf.fit(models)                      # fresh simulations of both models every step
print(f"trained on {clf.n_simulations_} simulations in {time.perf_counter() - t0:.0f} s")

# %%
# Against the exact probabilities
# -------------------------------
# A labelled bank of both models (``chunk_size=1``: every dataset has its own size).

X, y = simulate_models(models, 300 if FAST else 2000, random_state=1, chunk_size=1)
proba = clf.predict_proba(X, as_frame=True)
exact = np.array([exact_p_effect(x) for x in X["x"]])
print(proba.head())
print(f"mean |P(effect | x) - exact| = {np.mean(np.abs(proba['effect'] - exact)):.3f}")
ece = expected_calibration_error(y, proba.to_numpy(), classes=clf.classes_)
print(f"expected calibration error = {ece:.3f}; accuracy = {clf.score(X, y):.3f}")
print("log Bayes factors of the first datasets:")
print(clf.log_bayes_factors(X[:3], reference="no effect"))

# %%
# Calibration of the probabilities, and the confusion matrix, drawn with scikit-learn's
# displays.

fig = model_calibration(y, proba.to_numpy(), classes=clf.classes_)
fig.savefig("model_comparison_calibration.png", dpi=120)

# %%
# A classifier like any other
# ---------------------------
# Cross-validated log loss on a fixed labelled bank.

bank, labels = simulate_models(models, 600 if FAST else 3000, random_state=2,
                               chunk_size=64)
offline = AmortizedModelComparison(adapter=adapter, summary_network=DeepSet(),
                                   epochs=2 if FAST else 30, random_state=0,
                                   verbose=True)
scores = cross_val_score(offline, bank, labels, cv=3, scoring="neg_log_loss")
print(f"3-fold log loss on a bank of {len(labels)}: {-scores.mean():.3f} "
      f"(exact probabilities: about 0.39; a coin: 0.693)")
