"""AmortizedJoint: a posterior and a likelihood trained in one run (JANA).

Both networks learn from the same simulations, batch for batch: the posterior
``q(theta | x)`` and the likelihood ``q(x | theta)`` of Radev et al. (2023), "JANA:
Jointly amortized neural approximation of complex Bayesian models". Together with the
prior density they give the marginal likelihood ``log p(x)`` of every observed dataset,
hence Bayes factors, without another fit. The training itself is the engine's
(:mod:`skabi.training.joint`); each half is an ordinary fitted estimator afterwards.
"""

from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted

from .._bayesflow import bayesflow_spellings
from . import base as shared
from .base import AmortizedEstimator
from .likelihood import AmortizedLikelihood
from .posterior import AmortizedPosterior

__all__ = ["AmortizedJoint"]

#: The training parameters of the joint fit (the templates' own are not used).
_TRAINING = ("epochs", "batches_per_epoch", "batch_size", "learning_rate", "lr_schedule",
             "weight_decay", "clip_grad_norm", "validation_sims", "early_stopping",
             "patience", "standardize", "pilot_size", "device", "random_state", "n_threads",
             "verbose", "on_nonfinite")


@bayesflow_spellings
class AmortizedJoint(AmortizedEstimator):
    """Joint amortized estimation: a posterior and a likelihood from one training run.

    One simulator (or bank) feeds both networks: every batch of simulations trains the
    posterior ``q(theta | x)`` and the likelihood ``q(x | theta)`` at once, and the loss
    is the sum of their negative log densities (JANA, Radev et al. 2023). The two share
    no weights, so each half learns what it would learn alone from the same
    simulations; the joint run simulates once, trains with one optimizer, validates and
    stops on the sum, and yields the pair that :meth:`log_marginal_likelihood` needs.

    Parameters
    ----------
    posterior : AmortizedPosterior, default=None
        A template: its adapter and networks (and ``summary_mmd_weight``) are used, its
        training parameters are not (the joint ones below are). ``None`` means
        ``AmortizedPosterior()``.
    likelihood : AmortizedLikelihood, default=None
        A template, likewise: its adapter (the data into ``inference_variables``, with
        :class:`~skabi.adapters.AsObservations` first for exchangeable observations) and
        inference network. ``None`` means ``AmortizedLikelihood()``.
    prior : dict of str to scipy.stats frozen distribution, or callable, default=None
        The prior density, for :meth:`log_marginal_likelihood` (see
        :func:`skabi.log_marginal_likelihood`); it can also be passed there.
    epochs, batches_per_epoch, batch_size, learning_rate, lr_schedule, weight_decay, \
clip_grad_norm, validation_sims, early_stopping, patience, weight_averaging, standardize, \
pilot_size, device, random_state, n_threads, verbose, on_nonfinite
        Training, as for :class:`~skabi.AmortizedPosterior` (the same ``"auto"`` values
        online and for banks); ``batch_size`` counts simulations, each of which gives the
        posterior one dataset and the likelihood all of its observations. ``n_threads``
        holds for :meth:`sample`, :meth:`log_marginal_likelihood` and :meth:`score` too
        (the fitted halves take it over at each call).

    Attributes
    ----------
    posterior_ : AmortizedPosterior
        The fitted posterior half (``sample``, ``log_prob``, diagnostics, ``save``).
    likelihood_ : AmortizedLikelihood
        The fitted likelihood half (``sample``, ``log_prob``, ``save``).
    history_ : pandas.DataFrame
        Per epoch, the summed losses (the halves carry the same history). The epochs of a
        linear warm-up (numbered below 0, fits on banks) hold the losses of the halves
        that warm up only: the others are frozen and not computed.
    n_simulations_ : int

    See Also
    --------
    skabi.log_marginal_likelihood : the estimator behind :meth:`log_marginal_likelihood`.
    skabi.add_log_likelihood : pointwise log likelihoods for ArviZ's LOO.

    Notes
    -----
    The templates' training parameters (``epochs``, ``learning_rate``, ...) do not
    apply; set those on the joint estimator. Each half's ``history_`` is the joint one.
    ``checkpoint_path``, ``warm_start`` and ``partial_fit`` are not offered: a joint fit
    runs start to end. :meth:`save` writes a folder with each half's own file.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> from skabi import (AmortizedJoint, AmortizedLikelihood, AmortizedPosterior,
    ...                    make_simulator)
    >>> from skabi.adapters import AsObservations, AsSet, Rename, make_adapter
    >>> from skabi.networks import CouplingFlow, DeepSet
    >>> simulator = make_simulator([lambda rng: dict(mu=rng.normal()),
    ...                             lambda mu, rng: dict(x=mu + rng.normal(size=5))])
    >>> posterior = AmortizedPosterior(
    ...     adapter=make_adapter(AsSet("x"), Rename("x", "summary_variables"),
    ...                          Rename("mu", "inference_variables")),
    ...     inference_network=CouplingFlow(depth=2), summary_network=DeepSet(summary_dim=4))
    >>> likelihood = AmortizedLikelihood(
    ...     adapter=make_adapter(AsObservations("x"), Rename("x", "inference_variables"),
    ...                          Rename("mu", "inference_conditions")),
    ...     inference_network=CouplingFlow(depth=2))
    >>> est = AmortizedJoint(posterior, likelihood, prior={"mu": stats.norm(0, 1)},
    ...                      epochs=2, batches_per_epoch=10, random_state=0).fit(simulator)
    >>> est.posterior_.sample({"x": np.zeros((2, 5))}, 100).posterior["mu"].shape
    (1, 100, 2)
    >>> est.log_marginal_likelihood({"x": np.zeros((2, 5))}, num_samples=50).shape
    (2, 5)
    """

    _parameter_constraints = {
        "posterior": [HasMethods(["fit", "sample", "log_prob"]), None],
        "likelihood": [HasMethods(["fit", "sample", "log_prob"]), None],
        "prior": [dict, callable, None],
        **{k: shared.TRAINING_CONSTRAINTS[k] for k in _TRAINING},
        "weight_averaging": shared.WEIGHT_AVERAGING,
    }

    def __init__(self, posterior=None, likelihood=None, *, prior=None, epochs="auto",
                 batches_per_epoch=100, batch_size="auto", learning_rate="auto",
                 lr_schedule="auto", weight_decay=0.0, clip_grad_norm=3.0,
                 validation_sims="auto", early_stopping="auto", patience="auto",
                 weight_averaging="auto", standardize=True, pilot_size=1024, device="auto",
                 random_state=None, n_threads=1, verbose=False, on_nonfinite="raise"):
        self._store(locals())

    # ------------------------------------------------------------------ training
    def _templates(self):
        """Unfitted copies of the two halves, checked."""
        posterior = (AmortizedPosterior() if self.posterior is None
                     else clone(self.posterior))
        likelihood = (AmortizedLikelihood() if self.likelihood is None
                      else clone(self.likelihood))
        for name, value, cls in (("posterior", posterior, AmortizedPosterior),
                                 ("likelihood", likelihood, AmortizedLikelihood)):
            if not isinstance(value, cls):
                raise TypeError(f"{name} must be an {cls.__name__} (a template of the "
                                f"{name} half); got {type(value).__name__}.")
            value._validate_params()
        return posterior, likelihood

    def fit(self, X, y=None):
        """Train both halves on a simulator (online) or a fixed bank (offline).

        Parameters
        ----------
        X : Simulator, dict, list of dict, SimulationBank, path, DataFrame or ndarray
            As for :meth:`skabi.AmortizedPosterior.fit`; an ndarray is the data ``"x"``
            of a bank whose parameters are ``y`` (``"theta"``).
        y : ndarray, optional
            Parameters, with ``X`` as an array.

        Returns
        -------
        self
        """
        from ..training import joint

        self._validate_params()
        posterior, likelihood = self._templates()
        params = {**self.get_params(deep=False), "rounds": None, "replay_capacity": None,
                  "checkpoint_path": None}
        with self._threads():
            parts = joint.fit(params, X, y, {"posterior": posterior._initial_spec(),
                                             "likelihood": likelihood._initial_spec()},
                              summary_mmd_weights={"posterior": posterior.summary_mmd_weight})
        n_in = shared.n_features(X, y)
        posterior._commit(parts["posterior"], n_in)
        likelihood._commit(parts["likelihood"], n_in)
        self.posterior_, self.likelihood_ = posterior, likelihood
        self.history_ = posterior.history_
        self.n_simulations_ = posterior.n_simulations_
        self._set_n_features(n_in)
        return self

    # ------------------------------------------------------------------ inference
    def sample(self, X=None, num_samples=1000, *, importance=False, prior=None, proposals=4,
               **kwargs):
        """Posterior draws: :meth:`skabi.AmortizedPosterior.sample` of the fitted
        ``posterior_``, or, with ``importance=True``, those draws corrected by the learned
        likelihood (:func:`skabi.importance_sample`).

        Parameters
        ----------
        X, num_samples, **kwargs
            As for :meth:`skabi.AmortizedPosterior.sample`; ``random_state=None`` uses
            the joint estimator's ``random_state``.
        importance : bool, default=False
            Resample ``proposals * num_samples`` posterior draws in proportion to
            ``p(theta) q(x | theta) / q(theta | x)``: draws of the learned likelihood's
            posterior where the posterior network covers it, with Pareto k per dataset in
            ``sample_stats``. Needs the prior density.
        prior : dict or callable, optional
            With ``importance``: the prior density; default: the ``prior`` parameter.
        proposals : int, default=4
            With ``importance``: proposal draws per result draw.
        """
        self._fitted_halves()
        if kwargs.get("random_state") is None:     # the joint estimator's seed
            kwargs["random_state"] = self.random_state
        if not importance:
            return self.posterior_.sample(X, num_samples, **kwargs)
        from ..importance import importance_sample

        unknown = sorted(set(kwargs) - {"conditions", "meta", "random_state", "dims",
                                        "coords"})
        if unknown:
            raise TypeError(f"sample(importance=True) does not take {unknown!r}.")
        conditions = kwargs.pop("conditions", None)
        if (X is None) == (conditions is None):
            raise TypeError("sample needs the data once: sample(X, ...) or, as in BayesFlow, "
                            f"sample(conditions=X, ...); got X={type(X).__name__} and "
                            f"conditions={type(conditions).__name__}.")
        return importance_sample(self.posterior_, self.likelihood_,
                                 X if conditions is None else conditions,
                                 self.prior if prior is None else prior, num_samples,
                                 proposals=proposals, **kwargs)

    def log_marginal_likelihood(self, X, num_samples=1000, *, prior=None, meta=None,
                                random_state=None):
        """``log p(x)`` of each observed dataset, with its Monte Carlo error.

        :func:`skabi.log_marginal_likelihood` with the two fitted halves.

        Parameters
        ----------
        X : dict of arrays, list of dict, SimulationBank or DataFrame
            Observed datasets.
        num_samples : int, default=1000
            Posterior draws per dataset.
        prior : dict or callable, optional
            The prior density; default: the ``prior`` parameter. One of them is needed.
        meta : dict, optional
        random_state : None, int or numpy.random.Generator, default=None

        Returns
        -------
        pandas.DataFrame
            One row per dataset: ``log_ml``, ``mc_se``, ``ess``, ``mean_estimate``,
            ``spread``.
        """
        from ..evidence import log_marginal_likelihood

        self._fitted_halves()
        return log_marginal_likelihood(self.posterior_, self.likelihood_, X,
                                       self.prior if prior is None else prior,
                                       num_samples=num_samples, meta=meta,
                                       random_state=(self.random_state if random_state is None
                                                     else random_state))

    def score(self, X, y=None):
        """Mean ``log q(theta | x) + log q(x | theta)`` over held-out simulations (the
        negative joint loss): higher is better.

        ``X`` (and ``y``) as in :meth:`fit`, holding fixed simulations.
        """
        posterior, likelihood = self._fitted_halves()
        return float(posterior.score(X, y) + likelihood.score(X, y))

    def _fitted_halves(self):
        """The fitted halves, set to run with this estimator's ``n_threads`` (its setting
        governs every call, as it governs ``fit``)."""
        check_is_fitted(self, "posterior_")
        for half in (self.posterior_, self.likelihood_):
            half.n_threads = self.n_threads
        return self.posterior_, self.likelihood_

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Save the fitted pair into the folder ``path`` (created if needed), as one unit.

        The folder holds ``posterior.skabi`` and ``likelihood.skabi`` (each the halves'
        own file, which :meth:`skabi.AmortizedPosterior.load` and
        :meth:`skabi.AmortizedLikelihood.load` read alone) and ``joint.json``, the joint
        training parameters with the SHA-256 digest of each half and of itself. The three
        are written under temporary names and renamed into place only when all are
        written, so an error while saving leaves the folder as it was; :meth:`load`
        refuses a folder whose halves are not the ones saved together. The ``prior`` is not
        saved (it may be any Python object): pass it to :meth:`load` again.
        """
        from ..training.bundle import save_bundle
        from ..training.persistence import _jsonable

        check_is_fitted(self, "posterior_")
        params = {k: _jsonable(v) for k, v in self.get_params(deep=False).items()
                  if k not in ("posterior", "likelihood", "prior")}
        if isinstance(self.validation_sims, (dict, tuple)) or hasattr(self.validation_sims,
                                                                       "to_dict"):
            params["validation_sims"] = None   # a bank is not a parameter to store
        save_bundle(path, {"posterior.skabi": self.posterior_.save,
                           "likelihood.skabi": self.likelihood_.save},
                    {"params": params}, name="joint.json", kind="skabi-joint")

    @classmethod
    def load(cls, path, *, prior=None, device="auto"):
        """Load a pair written by :meth:`save` (never runs pickled code); ``prior``: the
        prior density, which :meth:`save` does not store.

        The halves are checked against the digests ``joint.json`` holds: a damaged file, a
        half from another folder or one left by an interrupted save is refused.
        """
        import os

        from ..exceptions import LoadError
        from ..training.bundle import read_bundle
        from ..training.model import check_device

        check_device(device)
        config = read_bundle(path, name="joint.json", kind="skabi-joint",
                             owner="AmortizedJoint")
        if not isinstance(config.get("params"), dict):
            raise LoadError(f"{os.fspath(path)!r}: joint.json lacks the joint parameters "
                            "(a record of AmortizedJoint.save holds them).")
        posterior = AmortizedPosterior.load(os.path.join(path, "posterior.skabi"),
                                                  device=device)
        likelihood = AmortizedLikelihood.load(os.path.join(path, "likelihood.skabi"),
                                                    device=device)
        params = {k: v for k, v in config["params"].items() if k not in shared.NOT_RESTORED}
        try:
            est = cls(**params).set_params(prior=prior, device=device)
            est._validate_params()
        except (TypeError, ValueError) as exc:
            raise LoadError(f"{os.fspath(path)!r} holds parameters AmortizedJoint does not "
                            f"take: {exc}") from None
        est.posterior, est.likelihood = clone(posterior), clone(likelihood)
        est.posterior_, est.likelihood_ = posterior, likelihood
        est.history_, est.n_simulations_ = posterior.history_, posterior.n_simulations_
        if hasattr(posterior, "n_features_in_"):
            est.n_features_in_ = posterior.n_features_in_
        return est
