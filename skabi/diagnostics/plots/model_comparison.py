"""Calibration of posterior model probabilities: :func:`model_calibration`."""

import numpy as np

from ..classification import _labels_and_proba, expected_calibration_error
from ._common import figure, finish

__all__ = ["model_calibration"]


def model_calibration(y_true, y_proba, *, classes=None, n_bins=10, figsize=None):
    """Calibration curves (one per model) and the confusion matrix of model comparison.

    Draws scikit-learn's ``CalibrationDisplay`` of each model's probability against how
    often that model was the true one, and its ``ConfusionMatrixDisplay`` of the most
    probable model against the true one (rows normalised), with the expected
    calibration error in the title.

    Parameters
    ----------
    y_true : array-like of shape (n_datasets,)
        The model that simulated each dataset.
    y_proba : array-like of shape (n_datasets, n_models)
        ``predict_proba`` of the datasets.
    classes : array-like, optional
        The model of each column (the estimator's ``classes_``).
    n_bins : int, default=10
    figsize : tuple, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.diagnostics.plots import model_calibration
    >>> rng = np.random.default_rng(0)
    >>> p1 = rng.uniform(size=500)
    >>> y = np.where(rng.uniform(size=500) < p1, "M1", "M0")
    >>> fig = model_calibration(y, np.c_[1 - p1, p1], classes=["M0", "M1"])
    >>> len(fig.axes) >= 2
    True
    """
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import ConfusionMatrixDisplay

    codes, proba, classes = _labels_and_proba(y_true, y_proba, classes)
    fig, axes = figure(1, 2, figsize=figsize or (10, 4.5))
    ax_cal, ax_cm = axes[0]
    for k, name in enumerate(classes.tolist()):
        CalibrationDisplay.from_predictions(codes == k, proba[:, k], n_bins=n_bins,
                                            name=str(name), ax=ax_cal)
        if len(classes) == 2:
            break  # the other model's curve is the mirror image
    ece = expected_calibration_error(codes, proba, classes=np.arange(len(classes)),
                                     n_bins=n_bins)
    ax_cal.set_title(f"Calibration (ECE {ece:.3f})")
    ConfusionMatrixDisplay.from_predictions(
        classes[codes], classes[np.argmax(proba, axis=1)], labels=classes,
        normalize="true", ax=ax_cm, colorbar=False)
    ax_cm.set_title("Most probable model")
    return finish(fig)
