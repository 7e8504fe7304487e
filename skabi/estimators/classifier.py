"""AmortizedModelComparison: Bayesian model comparison as a scikit-learn classifier.

Its training data, simulations of several models labelled by model, come from
:mod:`skabi.model_mixture` (:class:`ModelMixture`, :func:`simulate_models`, also importable
from here).
"""

import functools

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import base as shared
from .base import AmortizedEstimator
from .._bayesflow import bayesflow_spellings
from ..adapters.defaults import classifier_adapter, label_steps
from ..bank import as_bank
from ..inputs import is_array, is_simulator, table_rows
from ..model_mixture import MODEL_INDEX, ModelMixture, prior_probabilities, simulate_models
from ..training import defaults, inference
from ..training.heads import build_classifier, check_head_networks

__all__ = ["AmortizedModelComparison", "ModelMixture", "simulate_models"]

@bayesflow_spellings
class AmortizedModelComparison(ClassifierMixin, AmortizedEstimator):
    """Amortized Bayesian model comparison: posterior model probabilities of any dataset.

    A summary network and a dense head are trained to classify simulations by the model
    that produced them (cross-entropy), with the models drawn from a prior over models.
    The softmax output then approximates the posterior model probabilities ``p(M | x)``
    (Radev et al. 2021, "Amortized Bayesian model comparison with evidential deep
    learning"; Elsemüller et al. 2024, "A deep learning method for comparing Bayesian
    hierarchical models"), for any number of observed datasets in one pass.

    Parameters
    ----------
    adapter : Adapter, default=None
        Maps the data to ``summary_variables`` and/or ``inference_conditions`` (it must
        not produce ``inference_variables``: the model label is routed there by the
        estimator). ``None`` routes ``x`` into the summary network as a set when one is
        given (or ``x`` has rank 3), else into the conditions.
    head : DenseHead, default=None
        Hyperparameters of the classification head; ``None`` means ``DenseHead()``.
    summary_network : DeepSet, SetTransformer, TimeSeriesNetwork or None, default=None
    model_prior : dict, array-like or "uniform", default=None
        Prior probabilities of the models for online training (uniform by default and for
        ``"uniform"``). With a bank, the share of each model in the bank is the prior.
    epochs, batches_per_epoch, batch_size, learning_rate, lr_schedule, weight_decay, \
clip_grad_norm, validation_sims, early_stopping, patience, weight_averaging, \
standardize, pilot_size, \
rounds, replay_capacity, checkpoint_path, device, random_state, n_threads, verbose, \
warm_start, on_nonfinite
        Training, as for :class:`~skabi.AmortizedPosterior` (the same engine), except
        that ``"auto"`` takes the online values with a bank too (50 epochs of batches of
        64 at 2e-3 with a cosine decay, nothing held out): on banks of 10^3 simulations
        the posterior's bank values raised the log loss by up to 0.04 nats, and holding
        out a tenth to keep the best epoch by up to 0.02 (``benchmarks/family_defaults.py``).
        ``validation_sims``: a number of simulations (online: drawn from the models; a
        bank: held out of it), a share of a bank, or ``(X_val, y_val)`` with labels.

    Attributes
    ----------
    classes_ : ndarray
        The model names (sorted); the columns of :meth:`predict_proba`.
    class_prior_ : ndarray
        The prior model probabilities the network was trained under.
    adapter_, approximator_, head_, summary_network_, history_, n_simulations_, \
role_shapes_, device_
        As for :class:`~skabi.AmortizedPosterior`.

    Examples
    --------
    >>> from skabi import AmortizedModelComparison, make_simulator
    >>> from skabi.networks import DeepSet, DenseHead
    >>> m0 = make_simulator(lambda rng: dict(x=rng.normal(size=(20, 1))))
    >>> m1 = make_simulator([lambda rng: dict(mu=rng.normal()),
    ...                      lambda mu, rng: dict(x=mu + rng.normal(size=(20, 1)))])
    >>> clf = AmortizedModelComparison(summary_network=DeepSet(summary_dim=4),
    ...                                head=DenseHead(width=16), epochs=2,
    ...                                batches_per_epoch=20, random_state=0)
    >>> clf.fit({"zero": m0, "free": m1}).classes_.tolist()
    ['free', 'zero']
    >>> from skabi.model_comparison import simulate_models
    >>> X, y = simulate_models({"zero": m0, "free": m1}, 5, random_state=1)
    >>> clf.predict_proba(X).shape, clf.predict(X).shape
    ((5, 2), (5,))
    """

    _parameter_constraints = {**shared.TRAINING_CONSTRAINTS,
                              "weight_averaging": shared.WEIGHT_AVERAGING,
                              "head": [HasMethods(["build"]), None],
                              "model_prior": [dict, "array-like", StrOptions({"uniform"}),
                                              None]}
    _build = staticmethod(build_classifier)
    _bank_defaults = defaults.BANK_ONLINE   # measured: benchmarks/family_defaults.py

    def __init__(self, *, adapter=None, head=None, summary_network=None, model_prior=None,
                 epochs="auto", batches_per_epoch=100, batch_size="auto", learning_rate="auto",
                 lr_schedule="auto", weight_decay=0.0, clip_grad_norm=3.0,
                 validation_sims="auto", early_stopping="auto", patience="auto",
                 weight_averaging="auto", standardize=True,
                 pilot_size=1024, rounds=None, replay_capacity=None, checkpoint_path=None,
                 device="auto", random_state=None, n_threads=1, verbose=False,
                 warm_start=False, on_nonfinite="raise"):
        self._store(locals())

    # ------------------------------------------------------------------ training
    def fit(self, X, y=None, *, resume=False):
        """Train on simulators of the models (online) or on a labelled bank (offline).

        Parameters
        ----------
        X : dict of name to simulator, list of simulators, or a bank
            The models as simulators (each trains on fresh simulations every step), or a
            bank of simulated data in any form :meth:`skabi.AmortizedPosterior.fit`
            takes (dict, list of dicts, DataFrame, ndarray ``x``) with the labels ``y``.
        y : array-like of shape (n_simulations,), optional
            The model of each simulation of a bank (any labels: names or numbers).
        resume : bool, default=False
            As for :meth:`skabi.AmortizedPosterior.fit`.

        Returns
        -------
        self
        """
        self._validate_params()
        data, classes, prior = self._training_data(X, y)
        return self._train(data, X, y, classes, prior, resume=resume)

    def partial_fit(self, X, y=None, classes=None):
        """Train one more epoch; initialises the estimator on the first call.

        ``classes`` (scikit-learn's argument) may list every model; with a bank, ``y``
        must then name them all, as the network has one output per model.
        """
        self._validate_params()
        if hasattr(self, "approximator_") and shared.n_features(X, y) is not None:
            shared.check_n_features(self, np.asarray(X))
        data, found, prior = self._training_data(X, y)
        if classes is not None and list(np.unique(classes)) != list(found):
            raise ValueError(f"partial_fit got classes={list(classes)!r}, but the "
                             f"simulations are of the models {found.tolist()!r}.")
        classes = found
        if hasattr(self, "classes_") and list(classes) != list(self.classes_):
            raise ValueError(f"partial_fit got models {classes.tolist()!r}; this estimator "
                             f"was trained on {self.classes_.tolist()!r}.")
        return self._train(data, X, y, classes, prior, partial=True)

    def _train(self, data, X, y, classes, prior, **how):
        """Train on ``data`` (from :meth:`_training_data`), then set the fitted attributes
        the engine does not know: the models and, for arrays, their width (the engine
        saw a bank)."""
        self._fit(data, None, spec=self._initial_spec(classes),
                  validation=self._validation(classes), **how)
        self.classes_, self.class_prior_ = classes, prior
        width = shared.n_features(X, y)
        if width is not None:
            self.n_features_in_ = width
        elif hasattr(self, "n_features_in_"):
            del self.n_features_in_
        return self

    def _training_data(self, X, y):
        """``(data for the engine, classes, prior)``: a mixture simulator or a bank."""
        if y is None:
            if is_array(X):
                raise ValueError("AmortizedModelComparison requires y to be passed, but the "
                                 "target y is None: pass the model of each simulation of X.")
            values = list(X.values() if isinstance(X, dict) else X) \
                if isinstance(X, (dict, list, tuple)) else []
            if not any(is_simulator(v) for v in values):
                raise ValueError("fit(X) needs the models as simulators (a dict name -> "
                                 "simulator or a list); for a bank of simulations pass the "
                                 "model of each simulation as y.")
            mixture = ModelMixture(X, self.model_prior)
            return mixture, np.asarray(mixture.names), mixture.probabilities
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import column_or_1d

        labels = column_or_1d(y, warn=True)
        check_classification_targets(labels)
        classes, codes = np.unique(labels, return_inverse=True)
        rows = table_rows(X, y, finite=self.on_nonfinite == "raise")   # arrays, tables
        bank = {"x": rows} if rows is not None else dict(as_bank(X).to_dict())
        if len(classes) < 2:
            raise ValueError(f"y holds one class ({classes.tolist()!r}); model comparison "
                             "needs simulations of at least two models.")
        if MODEL_INDEX in bank:
            raise ValueError(f"The bank holds a variable {MODEL_INDEX!r}, which model "
                             "comparison uses for the label; rename it.")
        n = len(next(v for v in bank.values() if np.ndim(v) > 0))
        if n != len(labels):
            raise ValueError(f"X holds {n} simulations but y {len(labels)} labels.")
        bank[MODEL_INDEX] = codes
        return bank, classes, np.bincount(codes, minlength=len(classes)) / len(codes)

    def _validation(self, classes):
        """``validation_sims=(X_val, y_val)`` as a labelled bank (None: unchanged)."""
        spec = self.validation_sims
        if not isinstance(spec, tuple):
            return None
        if len(spec) != 2:
            raise ValueError("validation_sims as a tuple must be (X_val, y_val); got a tuple "
                             f"of {len(spec)} items.")
        bank, found, _ = self._training_data(*spec)
        unknown = sorted(set(found.tolist()) - set(classes.tolist()), key=str)
        if unknown:
            raise ValueError(f"validation_sims names models {unknown!r} that are not among "
                             f"the training models {classes.tolist()!r}.")
        bank[MODEL_INDEX] = np.searchsorted(classes, found)[bank[MODEL_INDEX]]
        return bank

    def _networks(self):
        from ..networks import DenseHead

        return {"head": self.head if self.head is not None else DenseHead(),
                "summary_network": self.summary_network}

    def _initial_spec(self, classes):
        adapter = None if self.adapter is None else _with_labels(self.adapter, len(classes))
        return dict(adapter=adapter, networks=self._networks(), build=build_classifier,
                    check=check_head_networks, names=[MODEL_INDEX],
                    default=functools.partial(classifier_adapter, n_models=len(classes),
                                              label=MODEL_INDEX))

    def _commit(self, state, n_features_in=None):
        super()._commit(state, n_features_in)
        self.head_ = state.model.head

    def _fit_state(self):
        return super()._fit_state([MODEL_INDEX])

    # ------------------------------------------------------------------ prediction
    def _log_proba(self, X, meta, model_prior):
        check_is_fitted(self, "approximator_")
        data = self._observations(X, meta)
        roles, _ = self._roles(data, need_theta=False, skip=[MODEL_INDEX])
        with self._threads():
            logits = inference.outputs(self._fit_state(), roles,
                                       lambda model, batch: model.logits(batch))
        if model_prior is not None:  # Bayes' rule with another prior over the models
            new = prior_probabilities(model_prior, list(self.classes_))
            logits = logits + np.log(new) - np.log(self.class_prior_)
        logits = logits - logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def predict_proba(self, X, *, meta=None, model_prior=None, as_frame=False):
        """Posterior model probabilities of every dataset.

        Parameters
        ----------
        X : dict of arrays, list of dict, SimulationBank, DataFrame or ndarray
            Datasets, as for :meth:`skabi.AmortizedPosterior.sample`.
        meta : dict, optional
            Batch scalars such as ``N``.
        model_prior : dict, array-like or "uniform", optional
            Another prior over the models: the probabilities are reweighted by Bayes'
            rule (the network learned them under ``class_prior_``); ``"uniform"`` gives
            every model the same prior probability.
        as_frame : bool, default=False
            Return a DataFrame with one column per model (named by ``classes_``).

        Returns
        -------
        ndarray of shape (n_datasets, n_models) or pandas.DataFrame
        """
        proba = np.exp(self._log_proba(X, meta, model_prior))
        if not as_frame:
            return proba
        import pandas as pd

        return pd.DataFrame(proba, columns=pd.Index(self.classes_, name="model"))

    def predict_log_proba(self, X, *, meta=None, model_prior=None):
        """The log of :meth:`predict_proba` (computed stably)."""
        return self._log_proba(X, meta, model_prior)

    def predict(self, X, *, meta=None):
        """The most probable model of every dataset (an element of ``classes_``)."""
        log_proba = self._log_proba(X, meta, None)
        return self.classes_[np.argmax(log_proba, axis=1)]

    def log_bayes_factors(self, X, *, reference=None, meta=None):
        """log Bayes factors ``log p(x | M_k) - log p(x | M_ref)`` of every model against
        ``reference`` (the first of ``classes_`` by default), free of the model prior.

        Returns
        -------
        pandas.DataFrame
            One row per dataset, one column per model (the reference's column is 0).
        """
        import pandas as pd

        log_p = self._log_proba(X, meta, None) - np.log(self.class_prior_)
        classes = list(self.classes_)
        ref = classes[0] if reference is None else reference
        if ref not in classes:
            raise ValueError(f"reference {ref!r} is not one of the models {classes!r}.")
        out = log_p - log_p[:, [classes.index(ref)]]
        return pd.DataFrame(out, columns=pd.Index(self.classes_, name="model"))

    # ------------------------------------------------------------------ persistence & sklearn
    def _save_extra(self):
        classes = self.classes_.tolist() if hasattr(self, "classes_") else None
        return {"classes": classes, "class_prior": self.class_prior_.tolist()}

    def _restore_extra(self, extra, path):
        self.classes_, self.class_prior_ = _saved_classes(extra, self.role_shapes_, path)


def _saved_classes(extra, shapes, path):
    """``(classes_, class_prior_)`` of a saved classifier, checked against its head: one
    distinct label and one positive prior probability (summing to 1) per model."""
    import os

    from ..exceptions import LoadError

    n_models = shapes["inference_variables"]
    classes, prior = extra.get("classes"), extra.get("class_prior")
    problem = None
    if not isinstance(classes, list) or len(classes) != n_models or not all(
            isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in classes) \
            or len(set(classes)) != n_models:
        problem = f"classes {classes!r} are not {n_models} distinct labels (one per model)"
    elif not isinstance(prior, list) or len(prior) != n_models or not all(
            isinstance(p, (int, float)) and not isinstance(p, bool) for p in prior):
        problem = f"class_prior {prior!r} is not {n_models} probabilities"
    elif not all(0 < p <= 1 for p in prior) or abs(sum(prior) - 1) > 1e-6:
        problem = f"class_prior {prior!r} is not positive probabilities summing to 1"
    if problem:
        raise LoadError(f"{os.fspath(path)!r} is corrupt or was altered: {problem}.")
    return np.asarray(classes), np.asarray(prior, dtype=float)


def _with_labels(adapter, n_models):
    """The user's adapter (data only) followed by the routing of the model label."""
    from sklearn.base import clone

    from ..adapters import Adapter

    adapter = clone(adapter)
    return Adapter(steps=[*(adapter.steps or []), *label_steps(MODEL_INDEX, n_models)],
                   dtype=adapter.dtype)
