"""AmortizedMultilevelPosterior: amortized posteriors of hierarchical models, for the
hyperparameters and every group at once."""

import numpy as np
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted

from . import base as shared
from .base import AmortizedEstimator
from .._bayesflow import bayesflow_spellings
from .._validation import check_positive_int
from ..adapters.multilevel import MultilevelAdapter
from ..exceptions import MissingKeyError
from ..inputs import multilevel_observations
from ..training import defaults
from ..training.multilevel import (build_multilevel, check_multilevel_networks,
                                  draw_multilevel, level_names, log_prob_multilevel)
from ..training.roles import check_roles

__all__ = ["AmortizedMultilevelPosterior"]


@bayesflow_spellings
class AmortizedMultilevelPosterior(AmortizedEstimator):
    """Amortized posterior of a two-level (hierarchical) model: global and group parameters.

    Learns the joint posterior by its factorisation ``p(global | data) prod_j p(local_j |
    global, data)`` (Habermann et al. 2024, "Amortized Bayesian multilevel models"): a
    group summary network reads each group's observations, a global summary network
    (a set network over groups, masked over padded groups) reads the set of group
    summaries with the groups' known covariates, a global inference network learns
    ``q(global | global summary)`` and one local inference network, shared by all
    groups, ``q(local_j | global, group summary_j, covariates_j, global summary)``.

    The loss of a batch is ``-log q(global)`` averaged over its datasets plus ``-log
    q(local_j | global, ...)`` averaged over its groups: each term is a proper scoring
    rule of its own conditional, so any positive weights have the same minimiser; the
    mean over groups (rather than the sum) keeps the two terms of one scale whatever
    ``J``, so the shared summary networks serve both levels. Training conditions the
    local network on the true global parameters; :meth:`sample` draws the global
    parameters first, then every group's given each global draw, for any number of
    groups.

    Parameters
    ----------
    adapter : MultilevelAdapter
        One adapter per level (:class:`~skabi.adapters.MultilevelAdapter`).
    inference_network : CouplingFlow or FlowMatching, default=None
        The global inference network; ``None`` means ``CouplingFlow()``.
    local_inference_network : CouplingFlow or FlowMatching, default=None
        The local inference network, shared by the groups; ``None`` means
        ``CouplingFlow()``.
    summary_network : DeepSet, SetTransformer, TimeSeriesNetwork or None, default=None
        Reads each group's observations (the local adapter's ``summary_variables``).
        ``None`` when the local adapter gives each group's data as
        ``inference_conditions`` (a group of one observation).
    global_summary_network : DeepSet or SetTransformer, default=None
        Reads the set of groups; ``None`` means ``DeepSet(summary_dim=16)``.
    epochs, batches_per_epoch, batch_size, learning_rate, lr_schedule, weight_decay, \
clip_grad_norm, validation_sims, early_stopping, patience, weight_averaging, \
standardize, pilot_size, \
rounds, replay_capacity, checkpoint_path, device, random_state, n_threads, verbose, \
warm_start, on_nonfinite
        Training, as for :class:`~skabi.AmortizedPosterior` (the same engine), except
        that ``"auto"`` takes the online values with a bank too (50 epochs of batches of
        64 at 2e-3 with a cosine decay, nothing held out; the posterior's bank values
        lowered the held-out log density by 0.18-0.35 nats at 10^4 simulations,
        ``benchmarks/family_defaults.py``). A batch holds ``batch_size`` datasets, each of
        ``J`` groups.

    Attributes
    ----------
    adapter_ : MultilevelAdapter
    approximator_ : torch.nn.Module
        The four networks and the standardization, as one module.
    summary_network_ : torch.nn.Module or None
    global_parameter_names_, local_parameter_names_ : list of str
    history_ : pandas.DataFrame
    candidates_ : pandas.DataFrame
        As for :class:`~skabi.AmortizedPosterior`.
    n_simulations_ : int
        Datasets used for training so far (pilot excluded).
    role_shapes_ : dict
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import AmortizedMultilevelPosterior, make_multilevel_simulator
    >>> from skabi.adapters import (MultilevelAdapter, make_adapter, AsSet, Rename,
    ...                             Constrain, Concatenate)
    >>> from skabi.networks import CouplingFlow, DeepSet
    >>> simulator = make_multilevel_simulator(
    ...     lambda rng: dict(mu=rng.normal(0, 5), tau=abs(rng.normal(0, 5))),
    ...     lambda mu, tau, rng: dict(theta=rng.normal(mu, tau)),
    ...     lambda theta, N, rng: dict(y=rng.normal(theta, 1, size=N)),
    ...     meta_fn=lambda rng: dict(J=int(rng.integers(2, 6)), N=int(rng.integers(1, 6))))
    >>> adapter = MultilevelAdapter(
    ...     make_adapter(Constrain("tau", lower=0),
    ...                  Concatenate(["mu", "tau"], into="inference_variables")),
    ...     make_adapter(AsSet("y"), Rename("y", "summary_variables"),
    ...                  Rename("theta", "inference_variables")))
    >>> est = AmortizedMultilevelPosterior(
    ...     adapter=adapter, inference_network=CouplingFlow(depth=2),
    ...     local_inference_network=CouplingFlow(depth=2),
    ...     summary_network=DeepSet(summary_dim=4, width=16),
    ...     global_summary_network=DeepSet(summary_dim=4, width=16),
    ...     epochs=1, batches_per_epoch=5, batch_size=16, pilot_size=32, random_state=0)
    >>> draws = est.fit(simulator).sample({"y": [np.zeros(3), np.ones(2), np.ones(5)]},
    ...                                   num_samples=50, return_type="numpy")
    >>> draws["mu"].shape, draws["theta"].shape
    ((1, 50, 1), (1, 50, 3))
    >>> held_out = simulator.sample(20, random_state=1)   # they hold mu, tau and theta
    >>> glob, local = est.log_prob(held_out, per_group=True)
    >>> glob.shape == (20,) and local.shape == (20, int(held_out["J"]))
    True
    >>> bool(np.isfinite(est.score(held_out)))
    True
    """

    _parameter_constraints = {
        **shared.TRAINING_CONSTRAINTS,
        "weight_averaging": shared.WEIGHT_AVERAGING,
        "inference_network": [HasMethods(["build"]), None],
        "local_inference_network": [HasMethods(["build"]), None],
        "global_summary_network": [HasMethods(["build"]), None],
    }
    _build = staticmethod(build_multilevel)
    _bank_defaults = defaults.BANK_ONLINE   # measured: benchmarks/family_defaults.py

    def __init__(self, *, adapter=None, inference_network=None, local_inference_network=None,
                 summary_network=None, global_summary_network=None, epochs="auto",
                 batches_per_epoch=100, batch_size="auto", learning_rate="auto",
                 lr_schedule="auto", weight_decay=0.0, clip_grad_norm=3.0,
                 validation_sims="auto", early_stopping="auto", patience="auto",
                 weight_averaging="auto", standardize=True,
                 pilot_size=256, rounds=None, replay_capacity=None, checkpoint_path=None,
                 device="auto", random_state=None, n_threads=1, verbose=False,
                 warm_start=False, on_nonfinite="raise"):
        self._store(locals())

    # ------------------------------------------------------------------ training
    def _check_adapter(self):
        if not isinstance(self.adapter, MultilevelAdapter):
            raise ValueError(
                "AmortizedMultilevelPosterior needs adapter=MultilevelAdapter(global_adapter, "
                f"local_adapter); got {type(self.adapter).__name__}.")

    def fit(self, X, y=None, *, resume=False):
        """Train on a multilevel simulator (online) or a bank of its batches (offline).

        Parameters
        ----------
        X : MultilevelSimulator or dict
            A simulator (:func:`~skabi.make_multilevel_simulator`) trains on fresh
            simulations every step; a dict is a bank of one number of groups (as
            ``simulator.sample(n)`` gives).
        y : None
            Ignored.
        resume : bool, default=False
            As for :meth:`skabi.AmortizedPosterior.fit`.

        Returns
        -------
        self
        """
        self._validate_params()
        self._check_adapter()
        return self._fit(X, y, resume=resume)

    def partial_fit(self, X, y=None):
        """Train one more epoch; initialises the estimator on the first call."""
        self._validate_params()
        self._check_adapter()
        return self._fit(X, y, partial=True)

    def _networks(self):
        from ..networks import CouplingFlow, DeepSet

        return {"inference_network": self.inference_network or CouplingFlow(),
                "local_inference_network": self.local_inference_network or CouplingFlow(),
                "summary_network": self.summary_network,
                "global_summary_network": self.global_summary_network
                or DeepSet(summary_dim=16)}

    def _initial_spec(self):
        return dict(adapter=self.adapter, networks=self._networks(), build=build_multilevel,
                    check=check_multilevel_networks, names=level_names)

    def _commit(self, state, n_features_in=None):
        super()._commit(state, n_features_in)
        glob, local = state.adapter.parameter_names()
        self.global_parameter_names_, self.local_parameter_names_ = glob, local

    def _fit_state(self):
        names = None
        if hasattr(self, "global_parameter_names_"):
            names = self.global_parameter_names_ + self.local_parameter_names_
        return super()._fit_state(names)

    # ------------------------------------------------------------------ inference
    def _observations(self, X, meta, **_):
        """The datasets ``X`` with ``meta`` merged in: a batch of one ``J`` or a list of
        datasets (:func:`skabi.inputs.multilevel_observations`)."""
        check_is_fitted(self, "approximator_")
        return multilevel_observations(X, meta, groups=self.adapter_.groups,
                                       owner=type(self).__name__)

    def sample(self, X, num_samples=1000, *, meta=None, random_state=None, return_type="arviz"):
        """Draw from the joint posterior of each dataset: global, then every group.

        Parameters
        ----------
        X : dict or list of dict
            A batch as the simulator gives it (global variables ``(K, ...)``, local ones
            ``(K, J, ...)``, one ``J``; it may hold the true parameters, which then appear
            in the output), or ONE dataset as a dict, or a list of them: local variables
            with a leading axis of that dataset's groups (``sigma`` of shape ``(J,)``, the
            data ``(J, N)`` or a list of ``J`` arrays when the groups differ in size).
            Datasets of different ``J`` and ``N`` are padded and masked.
        num_samples : int, default=1000
        meta : dict, optional
            Extra variables merged into the data (into every dataset of a list), e.g.
            ``{"N": 5}``, as for :meth:`skabi.AmortizedPosterior.sample`.
        random_state : None, int or numpy.random.Generator, default=None
            ``None`` uses the estimator's ``random_state``.
        return_type : {"arviz", "numpy"}, default="arviz"
            ``"arviz"``: a container with ``posterior`` (global variables over ``chain,
            draw, dataset``; local ones over a further ``group`` dim, NaN for the padded
            groups of datasets with fewer groups), ``observed_data`` (local data over
            ``group, observation``), ``constant_data`` and, when the data hold them,
            ``true_values``. ``"numpy"``: ``{name: (K, num_samples, ...)}``, local
            variables ``(K, num_samples, J, ...)``.

        Returns
        -------
        arviz.InferenceData, xarray.DataTree or dict of ndarray
        """
        check_is_fitted(self, "approximator_")
        num_samples = check_positive_int("num_samples", num_samples)
        if return_type not in ("arviz", "numpy"):
            raise ValueError(f"return_type must be 'arviz' or 'numpy'; got {return_type!r}.")
        data = self._observations(X, meta)
        levels, roles, _ = self.adapter_.transform_levels(data)
        check_roles(roles, self.role_shapes_, given_keys=self.adapter_.input_variables_,
                    need_theta=False)
        with self._threads():
            draws = draw_multilevel(self._fit_state(), roles, num_samples, self._rng(random_state))
        local = set(self.local_parameter_names_)
        draws = {k: (v[..., 0] if k in local and v.ndim == 4 and v.shape[-1] == 1 else v)
                 for k, v in draws.items()}
        if return_type == "numpy":
            return draws
        return self._container(draws, data)

    def _container(self, draws, data):
        from .._arviz import to_arviz

        adapter = self.adapter_
        local_names = set(adapter.local_variables_)
        if isinstance(data, dict):
            data = {k: np.asarray(v) for k, v in data.items()}
        else:
            data = _padded_datasets(data, local_names, adapter.groups)
        meta = [k for k, v in data.items() if np.ndim(v) == 0]
        truth, observed, dims = {}, {}, {}
        for k, v in data.items():
            if k in local_names:
                v = np.asarray(v, dtype=float)
                if v.ndim == 3 and v.shape[-1] == 1 and k in adapter.local_inputs_ \
                        and adapter.local_inputs_[k] == (1,):
                    v = v[..., 0]
                dims[k] = ["group"] + ([] if v.ndim == 2 else ["observation"])
            if k in draws:
                truth[k] = v
            else:
                observed[k] = v
        for k in self.local_parameter_names_:
            dims[k] = ["group"]
        return to_arviz(draws, true_values=truth or None, observed=observed,
                        constant_keys=meta, dims=dims)

    def log_prob(self, X, *, meta=None, per_group=False):
        """log q of the true parameters of each dataset, on the user's scale.

        The joint density ``log q(global | data) + sum_j log q(local_j | global, data)``
        of the parameters the datasets hold, with the log-Jacobians of both adapters'
        transforms (e.g. ``Constrain``), so it is a density of the parameters as the
        simulator draws them.

        Parameters
        ----------
        X : dict or list of dict
            Simulations holding the global and the local parameters, in any form
            :meth:`sample` accepts (a batch of one ``J``, one dataset, or a list of
            datasets of different ``J`` and ``N``).
        meta : dict, optional
            Extra variables merged into the data, as for :meth:`sample`.
        per_group : bool, default=False
            Return the two levels apart.

        Returns
        -------
        ndarray of shape (n_datasets,)
            Or, with ``per_group=True``, ``(global, local)``: ``log q(global | data)`` of
            shape (n_datasets,) and ``log q(local_j | global, data)`` of shape
            (n_datasets, J), NaN for the padded groups of datasets with fewer groups.

        Examples
        --------
        With ``est`` and ``simulator`` of the class example:

        >>> held_out = simulator.sample(20, random_state=1)  # doctest: +SKIP
        >>> est.score(held_out)                               # doctest: +SKIP
        """
        data = self._observations(X, meta)
        given = set(data) if isinstance(data, dict) else set().union(*data)
        missing = [k for k in (*self.global_parameter_names_, *self.local_parameter_names_)
                   if k not in given]
        if missing:
            raise MissingKeyError(
                f"log_prob needs the parameters of each dataset; {missing!r} are missing "
                f"(given: {sorted(given)!r}).")
        levels, roles, (ldj_global, ldj_local) = self.adapter_.transform_levels(
            data, log_det_jac=True)
        check_roles(roles, self.role_shapes_, given_keys=self.adapter_.input_variables_,
                    need_theta=True)
        with self._threads():
            lq_global, lq_local = log_prob_multilevel(self._fit_state(), roles)
        lq_global = lq_global + ldj_global
        lq_local = lq_local + ldj_local
        if per_group:
            return lq_global, np.where(levels.index >= 0, lq_local, np.nan)
        return lq_global + lq_local.sum(axis=1)

    def score(self, X, y=None):
        """Mean joint log q of the true parameters over held-out simulations (higher is
        better): :meth:`log_prob` averaged over datasets. ``y`` is ignored."""
        return float(np.mean(self.log_prob(X)))

    def levels(self, idata):
        """Per-level containers for the diagnostics of :mod:`skabi.diagnostics`.

        Parameters
        ----------
        idata : arviz.InferenceData or xarray.DataTree
            From :meth:`sample` of simulations (with ``true_values``).

        Returns
        -------
        dict
            ``"global"``: the global variables (one row per dataset); ``"local"``: the
            local variables with every real (dataset, group) pair as a dataset of its
            own, so that SBC, recovery and contraction read the groups' parameters as
            they read any parameter.
        """
        from .._arviz import split_levels

        check_is_fitted(self, "approximator_")
        return split_levels(idata, self.global_parameter_names_, self.local_parameter_names_)


def _padded_datasets(datasets, local_names, groups):
    """Variables of a list of datasets with a leading dataset axis, local ones padded with
    NaN to the most groups (and observations)."""
    out = {}
    for k in datasets[0]:
        if k == groups:
            continue
        values = [d[k] for d in datasets]
        if k in local_names:
            parts = [[np.asarray(g, dtype=float) for g in v] for v in values]
            trailing = max((p.shape for ps in parts for p in ps), key=len)
            size = [max(p.shape[i] if p.ndim > i else 1 for ps in parts for p in ps)
                    for i in range(len(trailing))]
            arr = np.full((len(parts), max(len(ps) for ps in parts), *size), np.nan)
            for b, ps in enumerate(parts):
                for j, p in enumerate(ps):
                    arr[(b, j, *(slice(0, s) for s in p.shape))] = p
            out[k] = arr
        elif all(np.ndim(v) == 0 for v in values):
            out[k] = np.asarray(values[0]) if len({float(v) for v in values}) == 1 \
                else np.asarray(values, dtype=float)
        else:
            out[k] = np.stack([np.asarray(v) for v in values])
    return out

