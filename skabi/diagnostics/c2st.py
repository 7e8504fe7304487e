"""Classifier two-sample test (C2ST) of posterior draws against reference draws.

A classifier is trained to tell the draws from the reference samples (for instance from an
exact sampler such as MCMC); its cross-validated accuracy is 0.5 when the two are the same
distribution and approaches 1 when they differ (Lopez-Paz and Oquab 2017). The classifier
and the cross-validation come from scikit-learn.
"""

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._inputs import read_estimates, resolve
from ..exceptions import ShapeError

__all__ = ["c2st"]


def _default_classifier(n_features, random_state):
    hidden = max(10 * n_features, 10)
    return make_pipeline(
        StandardScaler(),
        MLPClassifier(
            hidden_layer_sizes=(hidden, hidden),
            max_iter=1000,
            early_stopping=True,
            n_iter_no_change=20,
            random_state=random_state,
        ),
    )


def _as_draws(samples, variable_keys, what):
    """(n_datasets, n_draws, n_elements) from a container, dict or plain array."""
    if isinstance(samples, (np.ndarray, list, tuple)):
        arr = np.asarray(samples, dtype=float)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim == 2:  # (n_draws, n_elements): one dataset
            arr = arr[None]
        if arr.ndim != 3:
            raise ShapeError(
                f"{what} has shape {arr.shape}; expected (n_draws, n_elements) or "
                "(n_datasets, n_draws, n_elements)."
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what} holds NaN or infinite values.")
        return arr, [f"x[{i}]" for i in range(arr.shape[-1])]
    estimates, _ = read_estimates(samples, None, require_targets=False)
    inputs = resolve(estimates, None, variable_keys=variable_keys, require_targets=False)
    return inputs.draws, inputs.names


def c2st(
    estimates=None,
    references=None,
    *,
    variable_keys=None,
    datasets=None,
    classifier=None,
    cv=5,
    scoring="accuracy",
    random_state=0,
):
    """Cross-validated accuracy of a classifier telling ``estimates`` from ``references``.

    Parameters
    ----------
    estimates : ArviZ container, dict of str to ndarray of shape (n_datasets, n_draws, ...), \
or ndarray of shape (n_draws, n_elements)
        Draws to check.
    references : same forms as ``estimates``
        Reference draws for the same datasets (for instance from the exact posterior);
        numbers of draws may differ.
    variable_keys : list of str, optional
        Variables compared jointly (default: all).
    datasets : sequence of int, optional
        Which datasets to test (default: all; each costs one cross-validation).
    classifier : scikit-learn classifier, optional
        Default: ``StandardScaler`` + ``MLPClassifier`` with two hidden layers of
        ``10 * n_elements`` units (as in sbi). It is cloned for each dataset.
    cv : int or scikit-learn splitter, default 5
        Passed to :func:`sklearn.model_selection.cross_val_score`; an int means a shuffled
        :class:`~sklearn.model_selection.StratifiedKFold` seeded by ``random_state``.
    scoring : str, default "accuracy"
    random_state : int or None, default 0

    Returns
    -------
    pandas.Series indexed by dataset
        Mean cross-validated score: about 0.5 for the same distribution, near 1 for
        clearly different ones.

    Examples
    --------
    Dataset 0's draws come from the reference distribution, dataset 1's are shifted by
    two standard deviations:

    >>> import numpy as np
    >>> from skabi.diagnostics import c2st
    >>> rng = np.random.default_rng(0)
    >>> references = {"theta": rng.normal(size=(2, 300, 2))}
    >>> draws = {"theta": rng.normal(size=(2, 300, 2)) + np.array([0.0, 2.0])[:, None, None]}
    >>> score = c2st(draws, references, cv=3)
    >>> score.index.tolist(), bool(score[0] < 0.6), bool(score[1] > 0.8)
    ([0, 1], True, True)
    """
    if estimates is None or references is None:
        raise TypeError("c2st needs estimates and references (draws to compare with).")
    draws, names = _as_draws(estimates, variable_keys, "estimates")
    ref, ref_names = _as_draws(references, variable_keys, "references")
    if draws.shape[0] != ref.shape[0] or draws.shape[-1] != ref.shape[-1]:
        raise ShapeError(
            f"estimates have {draws.shape[0]} datasets with elements {names!r} but references "
            f"have {ref.shape[0]} datasets with elements {ref_names!r}; they must match."
        )
    if isinstance(cv, int):
        cv = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    ids = range(draws.shape[0]) if datasets is None else [int(i) for i in datasets]
    scores = {}
    for k in ids:
        X = np.concatenate([draws[k], ref[k]])
        y = np.concatenate([np.zeros(len(draws[k]), int), np.ones(len(ref[k]), int)])
        clf = (
            _default_classifier(X.shape[1], random_state) if classifier is None
            else clone(classifier)
        )
        scores[k] = float(np.mean(cross_val_score(clf, X, y, cv=cv, scoring=scoring)))
    result = pd.Series(scores, name="c2st", dtype=float)
    result.index.name = "dataset"
    return result
