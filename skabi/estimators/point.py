"""AmortizedPointEstimator: neural Bayes estimators as a scikit-learn regressor."""

import os

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils._param_validation import HasMethods

from . import base as shared
from .base import AmortizedEstimator
from .._bayesflow import bayesflow_spellings
from ..adapters.defaults import posterior_adapter
from ..exceptions import LoadError
from ..inputs import array_bank
from ..training import defaults, inference
from ..training.heads import build_point_model, check_head_networks, parse_estimands

__all__ = ["AmortizedPointEstimator"]


@bayesflow_spellings
class AmortizedPointEstimator(RegressorMixin, AmortizedEstimator):
    """Amortized point estimation: posterior means, medians and quantiles in one pass.

    A summary network and a dense head are trained on pairs ``(theta, x) ~ p(theta)
    p(x | theta)`` to minimise a Bayes risk per estimand, so that the head's outputs
    approach the Bayes estimators of the prior and model (Sainsbury-Dale, Zammit-Mangion
    and Huser 2024, "Likelihood-free parameter estimation with neural Bayes
    estimators"): the squared error gives the posterior mean, the absolute error the
    posterior median and the pinball loss at level ``tau`` the posterior
    ``tau``-quantile.

    Prefer it to :class:`~skabi.AmortizedPosterior` when a few numbers per parameter are
    all that is needed (estimates, a credible interval from two quantiles, a plug-in
    for a later step) and speed matters: a forward pass per dataset instead of a
    thousand draws, a head instead of a flow, and no posterior shape to learn. Prefer
    the posterior for joint questions (correlations, functions of several parameters,
    multimodality, SBC, posterior predictive checks): quantiles are per parameter and
    say nothing of the joint distribution.

    Parameters
    ----------
    adapter : Adapter, default=None
        As for :class:`~skabi.AmortizedPosterior`: ``inference_variables`` are the
        parameters to estimate, ``summary_variables`` / ``inference_conditions`` the data.
    estimands : list of {"mean", "median"} or float, default=("mean",)
        What to learn, each for every parameter: ``"mean"`` (squared error), ``"median"``
        (absolute error, the 0.5 quantile) or a quantile level in (0, 1) (pinball loss).
        :meth:`predict` returns the first. The estimands are learned on the scale of
        ``inference_variables`` and taken back through the adapter's inverse: quantiles
        (and the median) carry over exactly through monotone transforms (``Log``,
        ``Constrain``, ``Standardize``); a mean does only through affine ones (after
        ``Log`` it is ``exp(E[log sigma | x])``).
    head : DenseHead, default=None
        Hyperparameters of the head; ``None`` means ``DenseHead()``.
    summary_network : DeepSet, SetTransformer, TimeSeriesNetwork or None, default=None
    epochs, batches_per_epoch, batch_size, learning_rate, lr_schedule, weight_decay, \
clip_grad_norm, validation_sims, early_stopping, patience, weight_averaging, \
standardize, pilot_size, \
rounds, replay_capacity, checkpoint_path, device, random_state, n_threads, verbose, \
warm_start, on_nonfinite
        Training, as for :class:`~skabi.AmortizedPosterior` (the same engine), except
        that ``"auto"`` takes the online values with a bank too (50 epochs of batches of
        64 at 2e-3 with a cosine decay, nothing held out): on the banks of
        ``benchmarks/family_defaults.py`` the posterior's bank values lowered R^2 on two
        moons and a Gaussian mixture at 10^4 simulations (by up to 0.002), although they
        raised it on SLCP and a linear Gaussian model in 11 of 12 cells (by up to 0.10).
        On a small bank of a hard problem, try ``validation_sims=0.1,
        early_stopping=True`` and compare held-out scores (``benchmarks/README.md`` has
        every seed).

    Attributes
    ----------
    adapter_ : Adapter
    approximator_ : torch.nn.Module
        Summary network, head and standardization, as one module.
    head_ : torch.nn.Module
    summary_network_ : torch.nn.Module or None
    estimand_labels_ : list of str
        ``"mean"``, ``"median"`` (the 0.5 quantile), ``"q0.05"``, ... in the order of
        ``estimands``.
    parameter_names_ : list of str
        The user's variables that are estimated.
    target_names_ : list of str
        One per output column of :meth:`predict`: ``"beta[0]"``, ``"beta[1]"``,
        ``"sigma"``.
    y_ndim_ : int or None
        The rank of ``y`` in ``fit(X, y)`` (None after a simulator or a bank).
    history_ : pandas.DataFrame
    candidates_ : pandas.DataFrame
        As for :class:`~skabi.AmortizedPosterior`.
    n_simulations_ : int
    role_shapes_ : dict
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import AmortizedPointEstimator, make_simulator
    >>> from skabi.adapters import make_adapter, AsSet, Rename
    >>> from skabi.networks import DeepSet, DenseHead
    >>> simulator = make_simulator([lambda rng: dict(mu=rng.normal()),
    ...                             lambda mu, rng: dict(x=mu + rng.normal(size=(10, 1)))])
    >>> adapter = make_adapter(AsSet("x"), Rename("x", "summary_variables"),
    ...                        Rename("mu", "inference_variables"))
    >>> est = AmortizedPointEstimator(adapter=adapter, estimands=("mean", 0.05, 0.95),
    ...                               summary_network=DeepSet(summary_dim=4),
    ...                               head=DenseHead(width=16), epochs=2,
    ...                               batches_per_epoch=10, random_state=0)
    >>> data = simulator.sample(3, random_state=1)
    >>> est.fit(simulator).predict(data).shape
    (3, 1)
    >>> est.predict_quantiles(data, [0.05, 0.95]).shape
    (3, 2, 1)
    """

    _parameter_constraints = {**shared.TRAINING_CONSTRAINTS,
                              "weight_averaging": shared.WEIGHT_AVERAGING,
                              "estimands": [list, tuple, str],
                              "head": [HasMethods(["build"]), None]}
    _build = staticmethod(build_point_model)
    _bank_defaults = defaults.BANK_ONLINE   # measured: benchmarks/family_defaults.py

    def __init__(self, *, adapter=None, estimands=("mean",), head=None, summary_network=None,
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
        """Train on a simulator (online) or on a fixed bank of simulations (offline).

        ``X``, ``y`` and ``resume`` as in :meth:`skabi.AmortizedPosterior.fit` (a
        simulator, a bank in any of its forms, or arrays ``X`` of data and ``y`` of
        parameters).

        Returns
        -------
        self
        """
        return self._fit(X, y, resume=resume)

    def partial_fit(self, X, y=None):
        """Train one more epoch; initialises the estimator on the first call."""
        return self._fit(X, y, partial=True)

    def _fit(self, X, y, **how):
        self._validate_params()
        parse_estimands(self.estimands)   # before anything is simulated
        super()._fit(X, y, **how)
        self.y_ndim_ = None if y is None else np.asarray(y).ndim
        return self

    def _networks(self):
        from ..networks import DenseHead

        return {"head": self.head if self.head is not None else DenseHead(),
                "summary_network": self.summary_network}

    def _initial_spec(self):
        return dict(adapter=self.adapter, networks=self._networks(), build=build_point_model,
                    check=check_head_networks, default=posterior_adapter,
                    params=self.get_params(deep=False))

    def _commit(self, state, n_features_in=None):
        super()._commit(state, n_features_in)
        self.head_ = state.model.head
        self.parameter_names_ = state.names
        self.estimand_labels_ = ["mean" if v < 0 else "median" if v == 0.5 else
                                 f"q{v:.6g}" for v in state.model.levels.tolist()]
        zeros = {"inference_variables": np.zeros((1, state.shapes["inference_variables"]))}
        self.target_names_ = _column_names(state.adapter.inverse_transform(zeros), state.names)

    # ------------------------------------------------------------------ prediction
    def _estimates(self, X, meta):
        """Estimates on the user's scale: ``(datasets, n_estimands, n_targets)``."""
        data = self._observations(X, meta)
        roles, _ = self._roles(data, need_theta=False, skip=self.parameter_names_)
        with self._threads():
            raw = inference.outputs(self._fit_state(), roles,
                                    lambda model, batch: model.estimate(batch))
        n, k, d = raw.shape
        user = self.adapter_.inverse_transform({"inference_variables": raw.reshape(n * k, d)})
        flat = [np.asarray(user[name], dtype=float).reshape(n * k, -1)
                for name in self.parameter_names_]
        return np.concatenate(flat, axis=1).reshape(n, k, -1)

    def predict(self, X, *, meta=None):
        """The first estimand (by default the posterior mean) of every dataset.

        Parameters
        ----------
        X : dict of arrays, list of dict, SimulationBank, DataFrame or ndarray
            Datasets, as for :meth:`skabi.AmortizedPosterior.sample`.
        meta : dict, optional
            Batch scalars such as ``N``.

        Returns
        -------
        ndarray of shape (n_datasets, n_targets)
            Columns in the order of ``target_names_``; ``(n_datasets,)`` after
            ``fit(X, y)`` with a 1-D ``y``, as scikit-learn's regressors do.
        """
        out = self._estimates(X, meta)[:, 0]
        return out[:, 0] if getattr(self, "y_ndim_", None) == 1 else out

    def predict_quantiles(self, X, q, *, meta=None):
        """Posterior quantiles of every parameter at the trained levels ``q``.

        Parameters
        ----------
        q : float, "median" or list of them
            Levels among the trained estimands; ``"median"`` is 0.5.

        Returns
        -------
        ndarray of shape (n_datasets, len(q), n_targets), or (n_datasets, n_targets) for a
        single float ``q``. Quantiles of a parameter never cross (they are sorted).
        """
        scalar = np.ndim(q) == 0
        wanted = np.atleast_1d(np.asarray(_quantile_levels(q), dtype=float))
        trained = np.asarray(self._levels_fitted(), dtype=float)
        missing = [float(v) for v in wanted if not np.any(np.isclose(trained, v))]
        if missing:
            have = sorted(float(v) for v in trained if v >= 0)
            raise ValueError(f"Quantile levels {missing} were not trained; this estimator "
                             f"learned {have}. Add them to estimands and fit again.")
        est = self._estimates(X, meta)
        idx = [int(np.flatnonzero(np.isclose(trained, v))[0]) for v in wanted]
        out = est[:, idx]
        return out[:, 0] if scalar else out

    def predict_frame(self, X, *, meta=None):
        """Every estimand of every dataset as a DataFrame: one row per dataset, columns
        ``(estimand, target)``.

        Returns
        -------
        pandas.DataFrame
        """
        import pandas as pd

        est = self._estimates(X, meta)
        columns = pd.MultiIndex.from_product([self.estimand_labels_, self.target_names_],
                                             names=["estimand", "target"])
        return pd.DataFrame(est.reshape(est.shape[0], -1), columns=columns)

    def _levels_fitted(self):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "approximator_")
        return [float(f"{v:.6g}") for v in self.approximator_.levels.tolist()]  # float32

    def score(self, X, y=None, sample_weight=None):
        """R^2 of :meth:`predict` against the true parameters (scikit-learn's ``r2_score``,
        averaged over the targets): higher is better.

        ``X`` holds held-out simulations with their parameters, or the data with ``y``
        the parameters (as in :meth:`fit`).
        """
        from sklearn.metrics import r2_score

        if y is not None:
            bank = array_bank(X, y).to_dict()
            X, truth = bank["x"], np.asarray(y, dtype=float)
        else:
            data = self._observations(X, None, frame_is_dataset=False)
            missing = [k for k in self.parameter_names_ if k not in data]
            if missing:
                raise ValueError(f"score needs the true parameters {missing!r} in X (or y).")
            n = len(np.asarray(data[self.parameter_names_[0]]))
            truth = np.concatenate([np.asarray(data[k], dtype=float).reshape(n, -1)
                                    for k in self.parameter_names_], axis=1)
            X = data
        pred = self.predict(X)
        if truth.ndim == 1 and pred.ndim == 2:
            pred = pred.ravel()
        return float(r2_score(truth, pred, sample_weight=sample_weight))

    # ------------------------------------------------------------------ persistence & sklearn
    def _save_extra(self):
        return {"y_ndim": getattr(self, "y_ndim_", None)}

    def _restore_extra(self, extra, path):
        if extra.get("y_ndim") not in (None, 1, 2):
            raise LoadError(f"{os.fspath(path)!r} is corrupt or was altered: y_ndim "
                            f"{extra.get('y_ndim')!r} is not None, 1 or 2.")
        self.y_ndim_ = extra.get("y_ndim")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True   # one column per parameter element
        return tags


def _quantile_levels(q):
    """``q`` of :meth:`AmortizedPointEstimator.predict_quantiles` as numbers: ``"median"``
    is 0.5; any other string, or a level outside [0, 1], is refused naming ``q``."""
    def level(v):
        if isinstance(v, str):
            if v != "median":
                raise ValueError(f"q={v!r} is not a quantile level; expected 'median' or "
                                 "numbers in [0, 1] (e.g. 0.05, 0.95).")
            return 0.5
        if isinstance(v, (bool, np.bool_)) or not np.isreal(v) or not np.isscalar(v) \
                or not 0 <= float(v) <= 1:
            raise ValueError(f"q={v!r} is not a quantile level; expected 'median' or numbers "
                             "in [0, 1].")
        return float(v)

    if isinstance(q, str) or np.ndim(q) == 0:
        return level(q)
    return [level(v) for v in q]


def _column_names(user, names):
    """``"beta[0]"``, ``"beta[1]"``, ``"sigma"``: one per flattened element (a variable
    of one element keeps its plain name)."""
    out = []
    for name in names:
        shape = np.shape(user[name])[1:]
        if int(np.prod(shape)) == 1:
            out.append(name)
            continue
        out += [f"{name}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape)]
    return out
