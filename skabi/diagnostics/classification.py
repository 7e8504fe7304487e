"""Calibration of posterior model probabilities: :func:`expected_calibration_error`.

The calibration curve and the confusion matrix themselves are scikit-learn's
(``sklearn.calibration.calibration_curve``, ``sklearn.metrics.confusion_matrix``);
:func:`skabi.diagnostics.plots.model_calibration` draws them.
"""

import numpy as np

__all__ = ["expected_calibration_error"]


def _labels_and_proba(y_true, y_proba, classes):
    y_true = np.asarray(y_true).ravel()
    proba = np.asarray(y_proba, dtype=float)
    if proba.ndim != 2 or proba.shape[0] != y_true.shape[0]:
        raise ValueError(f"y_proba must have shape (n_datasets, n_models) with "
                         f"{y_true.shape[0]} rows like y_true; got {proba.shape}.")
    classes = np.unique(y_true) if classes is None else np.asarray(classes)
    if len(classes) != proba.shape[1]:
        raise ValueError(f"y_proba has {proba.shape[1]} columns but there are "
                         f"{len(classes)} models {classes.tolist()!r}; pass classes= in the "
                         "order of the columns (the estimator's classes_).")
    index = {c: i for i, c in enumerate(classes.tolist())}
    unknown = sorted({str(c) for c in y_true.tolist() if c not in index})
    if unknown:
        raise ValueError(f"y_true holds models {unknown!r} that are not among the classes "
                         f"{classes.tolist()!r}.")
    return np.array([index[c] for c in y_true.tolist()]), proba, classes


def expected_calibration_error(y_true, y_proba, *, classes=None, n_bins=10):
    """Expected calibration error of posterior model probabilities.

    The datasets are binned by the probability of their most probable model
    (``n_bins`` equal-width bins on [0, 1]); the error is the mean over datasets of
    ``|accuracy - confidence|`` of their bin (Guo et al. 2017, "On calibration of modern
    neural networks"). 0 for calibrated probabilities, up to noise of order
    ``sqrt(n_bins / n)``.

    Parameters
    ----------
    y_true : array-like of shape (n_datasets,)
        The model that simulated each dataset.
    y_proba : array-like of shape (n_datasets, n_models)
        Posterior model probabilities (``predict_proba``).
    classes : array-like, optional
        The model of each column (the estimator's ``classes_``); by default the sorted
        labels of ``y_true``.
    n_bins : int, default=10

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.diagnostics import expected_calibration_error
    >>> rng = np.random.default_rng(0)
    >>> p1 = rng.uniform(size=20000)                 # calibrated by construction
    >>> y = (rng.uniform(size=20000) < p1).astype(int)
    >>> round(expected_calibration_error(y, np.c_[1 - p1, p1]), 2)
    0.0
    >>> sharp = p1 ** 3 / ((1 - p1) ** 3 + p1 ** 3)  # overconfident
    >>> round(expected_calibration_error(y, np.c_[1 - sharp, sharp]), 2)
    0.14
    """
    codes, proba, _ = _labels_and_proba(y_true, y_proba, classes)
    n_bins = int(n_bins)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1; got {n_bins}.")
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == codes
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += inside.sum() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total / len(codes))
