"""AmortizedLikelihood: a learned density of the data given the parameters.

The same engine and adapter as :class:`~skabi.AmortizedPosterior`, with the roles read
the other way: ``inference_variables`` is the data, ``inference_conditions`` the
parameters (and context). An :class:`~skabi.adapters.AsObservations` step first in the
adapter splits each simulated set into its observations, so that the network learns the
density of ONE observation given the parameters; without it, ``inference_variables`` is
a whole dataset (flattened; its size is then fixed).
"""


import numpy as np
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted

from . import base as shared
from .base import AmortizedEstimator
from .._bayesflow import bayesflow_spellings
from ..adapters.defaults import likelihood_adapter
from .._validation import check_positive_int, check_result_size
from ..bank import batch_size_of, is_ragged
from ..inputs import array_bank
from ..training import inference
from ..training.model import (build_approximator, check_continuous,
                              check_likelihood_networks)

__all__ = ["AmortizedLikelihood"]


def _observation_step(adapter):
    """The :class:`~skabi.adapters.AsObservations` step of ``adapter`` (the first step),
    or None; one anywhere else is an error."""
    from ..adapters import AsObservations

    steps = list(getattr(adapter, "steps", None) or [])
    found = [i for i, (_, s) in enumerate(steps) if isinstance(s, AsObservations)]
    if not found:
        return None
    if found != [0]:
        raise ValueError(
            "AsObservations must be the first step of the adapter (and there must be one): "
            f"it is step(s) {found} of {[n for n, _ in steps]!r}; the steps after it see one "
            "row per observation.")
    return steps[0][1]


#: The adapter built for ``adapter=None`` (kept under its old name for one release).
default_likelihood_adapter = likelihood_adapter


def _check_observed(counts, keys):
    """Refuse datasets of 0 observations, naming them: the density of a dataset is the
    sum over its observations, and one of none is no dataset a likelihood can score (the
    network would see no row of it, and the sum of nothing says nothing about the
    parameters)."""
    empty = np.flatnonzero(np.asarray(counts) == 0)
    if empty.size:
        raise ValueError(
            f"Dataset(s) {empty[:10].tolist()} of {len(counts)} hold 0 observations of "
            f"{list(keys)!r}; a dataset needs at least one observation for a likelihood.")


def _repeat_rows(value, counts):
    """Repeat dataset ``i`` of a batch variable ``counts[i]`` times (meta stays)."""
    if batch_size_of(value) is None:
        return value
    if is_ragged(value):
        return [np.asarray(p) for p, c in zip(value, counts) for _ in range(int(c))]
    return np.repeat(np.asarray(value), counts, axis=0)


def _split(rows, counts):
    """Rows grouped by dataset: a 2-D array when the counts are equal, else a list."""
    parts = np.split(rows, np.cumsum(counts)[:-1])
    if len(set(np.asarray(counts).tolist())) <= 1:
        return np.stack(parts) if parts else rows.reshape(0, 0)
    return parts


@bayesflow_spellings
class AmortizedLikelihood(AmortizedEstimator):
    """Amortized likelihood estimation: a neural density ``q(x | theta)`` of the data.

    A conditional generative network is trained on pairs ``(theta, x) ~ p(theta)
    p(x | theta)`` to minimise ``-E[log q(x | theta)]`` (the likelihood half of JANA,
    Radev et al. 2023, "JANA: Jointly amortized neural approximation of complex Bayesian
    models"; Papamakarios et al. 2019, "Sequential neural likelihood"). After :meth:`fit`
    it is a fast surrogate of the simulator (:meth:`sample`) and a density
    (:meth:`log_prob`): pointwise log likelihoods for ArviZ's LOO
    (:func:`skabi.add_log_likelihood`) and, with a posterior, marginal likelihoods
    (:func:`skabi.log_marginal_likelihood`).

    The adapter is written as for :class:`~skabi.AmortizedPosterior` with the roles
    swapped: the data go into ``inference_variables``, the parameters (and context) into
    ``inference_conditions``.

    * **Exchangeable data** (a set of ``N`` i.i.d. observations per simulation): put
      :class:`~skabi.adapters.AsObservations` with the per-observation variables FIRST.
      Each simulated set is split into its observations with the parameters repeated, so
      the network learns the density of one observation and ``N`` does not enter it; a
      dataset's density is the sum over its observations. Per-observation covariates
      listed in ``AsObservations`` but routed into ``inference_conditions`` are context
      (``p(y_n | x_n, theta)``). A training batch of ``batch_size`` simulations holds
      all their observations.
    * **Whole datasets**: without ``AsObservations``, ``inference_variables`` is the
      whole dataset flattened (for instance a time series); its size is then fixed.

    Discrete data (integer dtypes, such as counts or choices) are refused with an error
    before training: a flow is a density of continuous values. Dequantize in the
    simulator (``counts + rng.uniform(size=counts.shape)``): the network then learns the
    density of that continuous relaxation, whose integral over ``[k, k + 1)`` is the
    probability of ``k``, and ``np.floor`` of its draws are counts again.

    Parameters
    ----------
    adapter : Adapter, default=None
        Data into ``inference_variables``, parameters into ``inference_conditions``.
        ``None`` builds a default for ``fit(X, y)``: ``X`` (the data) is modelled given
        ``y`` (the parameters), one observation at a time when ``X`` has rank 3 (sets).
    inference_network : CouplingFlow or FlowMatching, default=None
        ``None`` means ``CouplingFlow()``.
    epochs, batches_per_epoch, batch_size, learning_rate, lr_schedule, weight_decay, \
clip_grad_norm, validation_sims, early_stopping, patience, weight_averaging, standardize, \
pilot_size, rounds, replay_capacity, checkpoint_path, device, random_state, n_threads, \
verbose, warm_start, on_nonfinite
        Training, as for :class:`~skabi.AmortizedPosterior` (the same engine, and the
        same ``"auto"`` values: the online numbers with a simulator, the offline ones
        with a bank); ``batch_size`` counts simulations.

    Attributes
    ----------
    adapter_ : Adapter
    approximator_ : torch.nn.Module
    inference_network_ : torch.nn.Module
    data_names_ : list of str
        The user's variables that are modelled (``inference_variables``).
    observation_keys_ : list of str or None
        The variables split into observations (``AsObservations``), or None when whole
        datasets are modelled.
    networks_ : dict
        The network hyperparameters that built it, by name, with any choice the fit made
        (``subnet_depth="auto"`` of a spline flow fitted on a bank) filled in.
    history_ : pandas.DataFrame
    candidates_ : pandas.DataFrame
        As for :class:`~skabi.AmortizedPosterior`.
    n_simulations_ : int
    role_shapes_ : dict
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import AmortizedLikelihood, make_simulator
    >>> from skabi.adapters import make_adapter, AsObservations, Rename
    >>> from skabi.networks import CouplingFlow
    >>> simulator = make_simulator([lambda rng: dict(mu=rng.normal()),
    ...                             lambda mu, rng: dict(x=mu + rng.normal(size=10))])
    >>> adapter = make_adapter(AsObservations("x"), Rename("x", "inference_variables"),
    ...                        Rename("mu", "inference_conditions"))
    >>> lik = AmortizedLikelihood(adapter=adapter, inference_network=CouplingFlow(depth=2),
    ...                           epochs=2, batches_per_epoch=10, random_state=0)
    >>> lik = lik.fit(simulator)
    >>> lik.sample({"mu": np.array([[0.0], [5.0]])}, num_samples=3, n_obs=10)["x"].shape
    (2, 3, 10)
    >>> lik.log_prob(simulator.sample(4, random_state=1)).shape
    (4,)
    """

    _parameter_constraints = {**{k: v for k, v in shared.TRAINING_CONSTRAINTS.items()
                                 if k != "summary_network"},   # conditions on theta directly
                              "inference_network": [HasMethods(["build"]), None],
                              "weight_averaging": shared.WEIGHT_AVERAGING}
    _build = staticmethod(build_approximator)

    def __init__(self, *, adapter=None, inference_network=None, epochs="auto",
                 batches_per_epoch=100, batch_size="auto", learning_rate="auto",
                 lr_schedule="auto", weight_decay=0.0, clip_grad_norm=3.0,
                 validation_sims="auto", early_stopping="auto", patience="auto",
                 weight_averaging="auto", standardize=True, pilot_size=1024, rounds=None,
                 replay_capacity=None, checkpoint_path=None, device="auto", random_state=None,
                 n_threads=1, verbose=False, warm_start=False, on_nonfinite="raise"):
        self._store(locals())

    # ------------------------------------------------------------------ training
    def fit(self, X, y=None, *, resume=False):
        """Train on a simulator (online) or on a fixed bank of simulations (offline).

        Parameters
        ----------
        X : Simulator, dict, list of dict, SimulationBank, path, DataFrame or ndarray
            As for :meth:`skabi.AmortizedPosterior.fit`. An ndarray is the data ``"x"``
            of a bank whose parameters are ``y`` (``"theta"``).
        y : ndarray, optional
            Parameters, with ``X`` as an array.
        resume : bool, default=False
            Continue from the checkpoint at ``checkpoint_path``.

        Returns
        -------
        self
        """
        return self._fit(X, y, resume=resume)

    def partial_fit(self, X, y=None):
        """Train one more epoch; initialises the estimator on the first call."""
        return self._fit(X, y, partial=True)

    def _networks(self):
        if self.inference_network is not None:
            inference_network = self.inference_network
        else:
            from ..networks import CouplingFlow

            inference_network = CouplingFlow()
        return {"inference_network": inference_network}

    def _initial_spec(self):
        if self.adapter is not None:
            _observation_step(self.adapter)
        return dict(adapter=self.adapter, networks=self._networks(), build=build_approximator,
                    check=check_likelihood_networks, check_adapter=check_continuous,
                    default=likelihood_adapter, densities=True)

    def _commit(self, state, n_features_in=None):
        super()._commit(state, n_features_in)
        self.inference_network_ = state.model.inference_network
        self.data_names_ = state.names
        step = _observation_step(state.adapter)
        self.observation_keys_ = None if step is None else list(step.keys_)

    def _fit_state(self):
        return super()._fit_state(getattr(self, "data_names_", None))

    # ------------------------------------------------------------------ densities
    def _counts(self, data):
        from ..adapters.observations import observation_counts

        if self.observation_keys_ is None:
            return None
        counts = observation_counts(self.observation_keys_, data)
        if counts is None:
            raise ValueError(
                f"The data hold none of the observation variables {self.observation_keys_!r} "
                f"(keys {sorted(data)!r}).")
        _check_observed(counts, self.observation_keys_)
        return counts

    def _row_log_prob(self, X, meta):
        data = self._observations(X, meta, frame_is_dataset=False)
        counts = self._counts(data)   # before any work: a dataset of 0 observations
        roles, ldj = self._roles(data, need_theta=True, log_det_jac=True)
        with self._threads():
            rows = inference.log_prob(self._fit_state(), roles, warn=counts is None) + ldj
        if counts is not None:   # rows are observations: name their datasets
            start = np.r_[0, np.cumsum(counts)[:-1]]
            inference.warn_nonfinite("log q(x | theta)",
                                     np.logical_and.reduceat(np.isfinite(rows), start))
        return rows, counts

    def log_prob(self, X, *, meta=None, pointwise=False):
        """log q(x | theta) of each dataset, on the user's scale.

        Includes the log-Jacobians of the adapter's transforms of the data, so that it is
        a density of the data as the simulator produces them.

        Parameters
        ----------
        X : dict of arrays, list of dict, SimulationBank or DataFrame
            Datasets with their parameters (and context), e.g. held-out simulations.
        meta : dict, optional
            Batch scalars such as ``N``.
        pointwise : bool, default=False
            Return the log density of every observation instead of their sum (needs an
            adapter with :class:`~skabi.adapters.AsObservations`).

        Returns
        -------
        ndarray of shape (n_datasets,)
            Or, with ``pointwise``, ``(n_datasets, N)``; a list of ``(N_i,)`` arrays when
            the datasets differ in size.
        """
        rows, counts = self._row_log_prob(X, meta)
        if counts is None:
            if pointwise:
                raise ValueError(
                    "pointwise=True needs a likelihood of single observations: this one models "
                    "whole datasets (its adapter has no AsObservations step).")
            return rows
        if pointwise:
            return _split(rows, counts)
        return np.add.reduceat(rows, np.r_[0, np.cumsum(counts)[:-1]]) if len(rows) else rows

    def score(self, X, y=None):
        """Mean log q(x | theta) per dataset over held-out simulations: higher is better.

        ``X`` (and ``y``) as in :meth:`fit`, holding fixed simulations.
        """
        if y is not None:
            X = array_bank(X, y)
            check_is_fitted(self, "approximator_")
            shared.check_n_features(self, X["x"])
        return float(np.mean(self.log_prob(X)))

    # ------------------------------------------------------------------ surrogate
    def sample(self, X, num_samples=1, *, n_obs=None, meta=None, random_state=None,
               return_type="numpy"):
        """Synthetic datasets from the learned likelihood, on the user's scale.

        Parameters
        ----------
        X : dict of arrays, list of dict or SimulationBank
            Parameters (and context) of each dataset, with a leading dataset axis, e.g.
            ``{"beta": (K, 2), "sigma": (K, 1)}``. Per-observation covariates (variables
            of ``AsObservations`` that are not modelled) set the number of observations.
        num_samples : int, default=1
            Synthetic datasets per entry of ``X``.
        n_obs : int, optional
            Observations per synthetic dataset, for a likelihood of single observations
            when ``X`` holds no per-observation covariates.
        meta : dict, optional
            Batch scalars such as ``N``.
        random_state : None, int or numpy.random.Generator, default=None
            ``None`` uses the estimator's ``random_state``.
        return_type : {"numpy", "arviz"}, default="numpy"
            ``"numpy"``: the dict below. ``"arviz"``: the installed arviz's container
            (as :meth:`skabi.AmortizedPosterior.sample` returns) with the synthetic data
            in ``posterior_predictive`` (dims chain, draw, dataset, observation, ...;
            ``draw`` counts the synthetic datasets) and what they were drawn from
            (parameters, covariates, meta) in ``constant_data``.

        Returns
        -------
        dict of str to ndarray, arviz.InferenceData or xarray.DataTree
            ``{name: (K, num_samples, N, ...)}`` for single observations (a list of ``K``
            arrays ``(num_samples, N_i, ...)`` when covariates differ in size), or
            ``{name: (K, num_samples, ...)}`` for whole datasets.
        """
        if return_type not in ("numpy", "arviz"):
            raise ValueError(f"return_type must be 'numpy' or 'arviz'; got {return_type!r}.")
        out, data = self._synthetic(X, num_samples, n_obs, meta, random_state)
        if return_type == "numpy":
            return out
        from .._arviz import to_arviz

        return to_arviz(posterior_predictive=out, observed=data, constant_keys=list(data))

    def _synthetic(self, X, num_samples, n_obs, meta, random_state):
        """``(synthetic data, the data they were drawn from)`` (see :meth:`sample`)."""
        check_is_fitted(self, "approximator_")
        num_samples = check_positive_int("num_samples", num_samples)
        data = self._observations(X, meta)
        rng = self._rng(random_state)
        if self.observation_keys_ is None:
            roles, _ = self._roles(data, need_theta=False, skip=self.data_names_)
            with self._threads():
                user, _ = inference.draw(self._fit_state(), roles, num_samples, rng, log_q=False)
            return user, data
        from ..adapters.observations import observation_counts

        counts = observation_counts(self.observation_keys_, data)
        if counts is not None:
            _check_observed(counts, self.observation_keys_)
        k = next((batch_size_of(v) for v in data.values() if batch_size_of(v) is not None),
                 None)
        if k is None:
            raise ValueError("sample needs the parameters of each dataset with a leading "
                             f"dataset axis; got {sorted(data)!r}.")
        given = counts is not None
        if not given:
            if n_obs is None:
                raise ValueError("Pass n_obs (observations per synthetic dataset): the data "
                                 f"hold none of {self.observation_keys_!r} to count them.")
            n_obs = check_positive_int("n_obs", n_obs)
            counts = np.full(k, n_obs)
        elif n_obs is not None and np.any(counts != n_obs):
            raise ValueError(f"n_obs={n_obs} but the covariates hold {counts.tolist()} "
                             "observations per dataset; leave n_obs out.")
        width = sum(int(v) for v in self.role_shapes_.values())   # per observation row
        total = int(np.sum(counts)) * num_samples
        check_result_size("num_samples", num_samples, total * width,
                          what=f"{int(np.sum(counts))} observations x {num_samples} synthetic "
                               f"datasets x {width} values")
        rows = {key: _repeat_rows(v, np.full(k, num_samples)) for key, v in data.items()}
        if not given:
            rows = {key: _repeat_rows(v, np.full(k * num_samples, n_obs))
                    for key, v in rows.items()}
        roles, _ = self._roles(rows, need_theta=False, skip=self.data_names_)
        with self._threads():
            user, _ = inference.draw(self._fit_state(), roles, 1, rng, log_q=False)
        out = {}
        per = np.repeat(counts, num_samples)
        for name, v in user.items():
            v = v[:, 0]
            if len(set(counts.tolist())) == 1:
                out[name] = v.reshape(k, num_samples, int(counts[0]), *v.shape[1:])
            else:
                parts = np.split(v, np.cumsum(per)[:-1])
                out[name] = [np.stack(parts[i * num_samples:(i + 1) * num_samples])
                             for i in range(k)]
        return out, data
