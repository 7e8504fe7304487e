"""AmortizedPosterior: the public contract of amortized posterior estimation.

Parameters, validation, the methods users call and the scikit-learn tags; the mechanics
(sources, training, checkpoints, chunked drawing, persistence) are functions of the
engine, :mod:`skabi.training`, over a :class:`~skabi.training.state.FitState` that this
class commits at the end of a successful fit and nowhere else.
"""

import numbers

import numpy as np
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted

from .._bayesflow import bayesflow_spellings
from .._validation import NumberInterval, check_positive_int
from ..adapters.defaults import posterior_adapter
from ..inputs import array_bank
from ..training import inference
from ..training.model import build_approximator, check_networks
from . import base as shared
from .base import AmortizedEstimator

__all__ = ["AmortizedPosterior"]


@bayesflow_spellings
class AmortizedPosterior(AmortizedEstimator):
    """Amortized posterior estimation: train once on simulations, then sample any dataset.

    A summary network ``h`` and a conditional generative network ``q`` are trained on
    pairs ``(theta, x) ~ p(theta) p(x | theta)`` to minimise ``-E[log q(theta | h(x))]``
    (Radev et al. 2020, "BayesFlow"). After :meth:`fit`, :meth:`sample` draws from the
    approximate posterior of any number of new datasets in one call.

    Parameters
    ----------
    adapter : Adapter, default=None
        Maps a batch of simulations to ``inference_variables``, ``inference_conditions``
        and ``summary_variables``. ``None`` builds a default for banks given as
        ``fit(X, y)``: ``y`` is inferred, ``X`` is the data (a set when a summary
        network is given or ``X`` has rank 3, else direct conditions).
    inference_network : CouplingFlow or FlowMatching, default=None
        Hyperparameters of the generative network; ``None`` means ``CouplingFlow()``.
        Only the hyperparameters live here; the torch module is built in :meth:`fit`.
    summary_network : DeepSet, SetTransformer, TimeSeriesNetwork or None, default=None
        Hyperparameters of the summary network, needed when the adapter produces
        ``summary_variables``.
    epochs : int or "auto", default="auto"
        ``"auto"``: 50 online; with a bank in memory and early stopping, enough epochs
        for 8000 optimizer steps, 100 to 500 (a coupling flow's linear warm-up: 4000
        steps, 20 to 500 epochs), else 50. Every parameter set to ``"auto"`` takes a
        value for the kind of data :meth:`fit` gets, online (a simulator) or offline (a
        fixed bank), as the table of the user guide's training page lists
        (``skabi.training.defaults``); any other value is used as given.
    batches_per_epoch : int, default=100
        Optimizer steps per epoch in online training. Offline training (a bank) makes one
        pass over the bank per epoch instead.
    batch_size : int or "auto", default="auto"
        ``"auto"``: 64 online; 200 with a bank, at most a tenth of its training
        simulations (at least 16).
    learning_rate : float or "auto", default="auto"
        Initial learning rate of Adam. ``"auto"``: 2e-3 online, where with the cosine decay
        it trains measurably closer to the exact posterior than 1e-3 or 5e-4 at the
        tutorial budgets (a few thousand steps; ``benchmarks/README.md``); 5e-4 with a
        bank, which a high rate overfits within a few epochs. Lower it if the training
        loss jumps.
    lr_schedule : {"cosine", "constant", "auto"}, default="auto"
        ``"cosine"``: decay to zero over all steps of one :meth:`fit` call. ``"auto"``:
        cosine online, constant with a bank (early stopping decides the length).
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW) when positive.
    clip_grad_norm : float or None, default=3.0
        Clip the gradient norm of each step.
    validation_sims : int, float, dict, SimulationBank, tuple, "auto" or None, default="auto"
        Validation data whose loss is recorded each epoch. With a simulator: a number of
        simulations drawn once (in batches of ``batch_size``, so that variables drawn once
        per batch, such as ``N``, vary as in training). With a bank in memory: a number of
        its simulations, or a share in (0, 1), held out at random (the same ones for the
        same integer ``random_state``) and not trained on. Or a fixed bank of validation
        simulations; ``(X_val, y_val)`` after ``fit(X, y)`` with arrays. ``"auto"``: none
        online; a tenth of a bank in memory of at least 20 simulations.
    early_stopping : bool or "auto", default="auto"
        Stop when the validation loss has not improved for ``patience`` epochs and restore
        the best weights. Needs ``validation_sims``. ``"auto"``: on for a bank in memory
        with validation simulations, off online.
    patience : int or "auto", default="auto"
        Epochs without improvement before early stopping: ``"auto"`` 5 online, 20 with a
        bank.
    weight_averaging : float in [0, 1), "auto" or None, default="auto"
        Decay of an exponential moving average of the weights, updated every step;
        validation, early stopping and the fitted estimator use the averaged weights.
        ``"auto"``: none online, 0.99 with a bank (on the 10-D linear Gaussian problem at
        10^4 simulations it cut the KL divergence to the exact posterior about threefold).
    standardize : bool, default=True
        Standardize ``inference_variables``, ``inference_conditions`` and the features of
        ``summary_variables`` inside the model with means and sds of the pilot batch (on
        top of whatever the adapter does). Densities are reported on the adapter's scale.
    pilot_size : int, default=1024
        Simulations drawn once before training to fit the adapter (e.g. ``Standardize``
        statistics) and the standardization. Both are then frozen.
    device : str, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU; or any torch device string.
    rounds : int, default=None
        Round-based training with a simulator: the epochs are split into ``rounds``
        rounds; each simulates ``batches_per_epoch * batch_size`` new simulations once and
        reuses them for its epochs. Cheaper when simulation is expensive.
    replay_capacity : int, default=None
        Online training through an experience replay buffer of this many simulations:
        each step adds a fresh batch and trains on a batch drawn from the buffer.
    checkpoint_path : str or path, default=None
        Write the estimator there (atomically: temporary file, then rename) after every
        epoch, with the optimizer state, so ``fit(..., resume=True)`` can continue after a
        crash, losing at most the current epoch.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds simulation, initialisation, training and sampling: two fits with the same
        integer seed on the same machine give the same draws.
    n_threads : int or None, default=1
        CPU threads torch uses inside ``fit``, ``sample``, ``log_prob`` and ``score``
        (set on entry, restored on exit; nothing changes for the rest of the process).
        ``-1`` uses every core, ``None`` leaves torch's setting. One thread holds up when
        other processes compete for the cores, where torch's default (all cores) can be
        many times slower, and the networks here are too small to gain much from more
        (``benchmarks/README.md``, "CPU threads").
    verbose : bool, default=False
        Show a progress bar over the steps (updated about once a second) with the epoch,
        the running loss, the validation loss and the learning rate.
    warm_start : bool, default=False
        Continue training the fitted networks in :meth:`fit` instead of rebuilding them.
    on_nonfinite : {"raise", "drop"}, default="raise"
        Simulations of a bank (or rows of ``fit(X, y)`` arrays) holding NaN or inf, as
        failed simulations often do: ``"raise"`` names them and trains nothing;
        ``"drop"`` leaves them out with a warning that counts them. Online simulators
        must return finite values.
    summary_mmd_weight : float, default=0.0
        When positive, training adds ``summary_mmd_weight * MMD^2`` between the summary
        network's outputs and draws of N(0, I) (Schmitt et al. 2023), so that summaries of
        data the model can produce follow a known distribution; needed for a sharp
        :meth:`misspecification_test`. 1.0 is a good start; 0 (default) trains without it.

    Attributes
    ----------
    adapter_ : Adapter
        The adapter fitted on the pilot batch.
    inference_network_ : torch.nn.Module
    summary_network_ : torch.nn.Module or None
    approximator_ : torch.nn.Module
        Both networks and the standardization, as one module.
    networks_ : dict
        The network hyperparameters that built it, by name (``"inference_network"``,
        ``"summary_network"``), with any choice the fit made (``subnet_depth="auto"``)
        filled in.
    history_ : pandas.DataFrame
        One row per epoch, columns ``epoch``, ``loss``, ``val_loss``, ``lr``, ``seconds``.
        Epochs below 0 are the linear warm-up of a coupling flow fitted to a bank
        (:class:`~skabi.networks.CouplingFlow`, ``linear_warmup``).
    candidates_ : pandas.DataFrame
        The trainings the fit compared where it had a choice (``subnet_depth="auto"`` on
        a bank, ``Constrain(method="select")``), one row each: ``choice`` (what the
        candidate set, as parameter paths), ``val_loss`` (its best validation loss, on its
        own scale), ``val_log_density`` (the mean ``log q`` of the validation simulations
        on the user's scale, where methods were compared by it), ``epochs``, ``seconds``
        and ``kept``. No rows where the fit trained one network; a warm start keeps the
        rows of the fit it continues.
    n_simulations_ : int
        Simulations used for training so far (pilot and warm-up excluded).
    parameter_names_ : list of str
        The user's variables that are inferred.
    role_shapes_ : dict
        Last-axis size of each network input seen in training.
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import AmortizedPosterior, make_simulator
    >>> from skabi.networks import CouplingFlow, DeepSet
    >>> def prior(rng):
    ...     return dict(theta=rng.normal(size=2))
    >>> def likelihood(theta, rng):
    ...     return dict(x=theta + rng.normal(size=(20, 2)))
    >>> simulator = make_simulator([prior, likelihood])
    >>> from skabi.adapters import make_adapter, Rename
    >>> adapter = make_adapter(Rename("theta", "inference_variables"),
    ...                        Rename("x", "summary_variables"))
    >>> est = AmortizedPosterior(adapter=adapter, inference_network=CouplingFlow(depth=2),
    ...                          summary_network=DeepSet(summary_dim=4), epochs=2,
    ...                          batches_per_epoch=10, random_state=0)
    >>> est.fit(simulator).sample(simulator.sample(3), num_samples=100, return_type="numpy")["theta"].shape
    (3, 100, 2)
    """

    _parameter_constraints = {
        **shared.TRAINING_CONSTRAINTS,
        "inference_network": [HasMethods(["build"]), None],
        "summary_mmd_weight": [NumberInterval(numbers.Real, 0, None, closed="left")],
        "weight_averaging": shared.WEIGHT_AVERAGING,
    }
    _build = staticmethod(build_approximator)

    def __init__(self, *, adapter=None, inference_network=None, summary_network=None,
                 epochs="auto", batches_per_epoch=100, batch_size="auto", learning_rate="auto",
                 lr_schedule="auto", weight_decay=0.0, clip_grad_norm=3.0,
                 validation_sims="auto", early_stopping="auto", patience="auto",
                 weight_averaging="auto", standardize=True, pilot_size=1024, rounds=None,
                 replay_capacity=None, checkpoint_path=None, device="auto", random_state=None,
                 n_threads=1, verbose=False, warm_start=False, on_nonfinite="raise",
                 summary_mmd_weight=0.0):
        self._store(locals())

    # ------------------------------------------------------------------ training
    def fit(self, X, y=None, *, resume=False):
        """Train on a simulator (online) or on a fixed bank of simulations (offline).

        Parameters
        ----------
        X : Simulator, dict, list of dict, SimulationBank, xarray.Dataset/DataTree, path, \
DataFrame or ndarray
            A simulator (anything with ``sample(batch_size, random_state=...)``) trains on
            fresh simulations every step (or per round, see ``rounds``). A dict,
            :class:`~skabi.bank.SimulationBank` or DataFrame is a bank in memory; a list
            holds one dict per simulation, whose data may differ in size (they are padded
            and masked). A path to a bank written by :func:`skabi.storage.simulate` (Zarr
            or netCDF), or an xarray Dataset/DataTree, is streamed batch by batch without
            loading it whole. An ndarray is the simulated data of a bank whose parameters
            are ``y``; they are named ``"x"`` and ``"theta"`` for the adapter.
        y : ndarray of shape (n_simulations, D), optional
            Parameters, with ``X`` as an array.
        resume : bool, default=False
            Continue from the checkpoint at ``checkpoint_path`` (weights, optimizer and
            history) up to ``epochs`` epochs in all; start afresh if there is none yet.
            The cosine schedule follows the new total (with more epochs the learning rate
            continues to decay from the cosine of the new total at the step reached). Other
            networks or optimizer and batch settings than the checkpoint's are refused,
            naming them; a checkpoint without optimizer state warns, and so does one that
            already ran more than ``epochs`` epochs (it is returned as it is).

        Returns
        -------
        self

        Notes
        -----
        A fit that fails (an error) leaves a fitted estimator as it was. A fit interrupted
        by the user (Ctrl-C, ``KeyboardInterrupt``) keeps what it trained, as Keras and
        skorch do, with a warning: the weights trained so far, and a ``history_`` and
        ``n_simulations_`` that describe them (the epoch it stopped in is a row of its own,
        counting the steps it ran). Without ``warm_start`` that replaces an earlier fit.
        """
        return self._fit(X, y, resume=resume)

    def partial_fit(self, X, y=None):
        """Train one more epoch (online: ``batches_per_epoch`` steps; offline: one pass).

        Initialises the estimator on the first call, like :meth:`fit`, and validates the
        parameters on every call.
        """
        return self._fit(X, y, partial=True)

    def _networks(self):
        if self.inference_network is not None:
            inference = self.inference_network
        else:
            from ..networks import CouplingFlow

            inference = CouplingFlow()
        return {"inference_network": inference, "summary_network": self.summary_network}

    def _initial_spec(self):
        return dict(adapter=self.adapter, networks=self._networks(), build=build_approximator,
                    check=check_networks, default=posterior_adapter, densities=True)

    def _commit(self, state, n_features_in=None):
        """Make ``state`` the fitted estimator (the only place fitted attributes are set)."""
        super()._commit(state, n_features_in)
        self.inference_network_ = state.model.inference_network
        self.parameter_names_ = state.names

    # ------------------------------------------------------------------ inference
    def sample(self, X=None, num_samples=1000, *, conditions=None, meta=None, random_state=None,
               return_type="arviz", log_q="auto", dims=None, coords=None):
        """Draw from the approximate posterior of each dataset.

        Parameters
        ----------
        X : dict of arrays, list of dict, SimulationBank, xarray.Dataset, pandas.DataFrame \
or ndarray
            Several datasets as a dict of arrays with a leading dataset axis (plus batch
            scalars such as ``N``), e.g. validation simulations; they may hold the true
            parameters, which then appear in the output. A list holds one dict per
            dataset, without a leading axis; their sizes may differ (``x`` with 5
            observations in one and 12 in another: they are padded and masked, and each
            gets the draws it would get alone). A pandas DataFrame is ONE dataset whose
            rows are observations and whose columns are variables (each becomes an array
            of shape ``(1, n_rows)``); pass batch scalars through ``meta``. An ndarray is
            the data ``"x"`` of estimators fitted with ``fit(X, y)``. A 1-D array in a
            dict is one value per dataset; where training had more values per simulation
            (``x`` of shape (batch, N)) it is refused rather than guessed.
        num_samples : int, default=1000
            Draws per dataset.
        conditions : same types as ``X``, optional
            BayesFlow's name for the data (``approximator.sample(conditions=...)``); give
            either ``X`` or ``conditions``.
        meta : dict, optional
            Extra variables merged into the data, e.g. ``{"N": len(df)}``. Checked against
            the data where training showed a link (``N`` equal to the observations of
            ``x`` in every batch).
        random_state : None, int or numpy.random.Generator, default=None
            Seed of the draws; ``None`` uses the estimator's ``random_state`` (so repeated
            calls give the same draws when it is an int).
        return_type : {"arviz", "numpy"}, default="arviz"
            ``"arviz"``: the installed arviz's container (``InferenceData`` on arviz 0.x,
            ``xarray.DataTree`` on arviz >= 1.0) with groups ``posterior`` (dims chain,
            draw, dataset, ...), ``sample_stats`` (``log_q``), ``observed_data`` (dims
            dataset, observation, ...), ``constant_data`` (meta variables such as ``N``)
            and, when the data hold the parameters, ``true_values``. ``"numpy"``: a dict
            ``{name: (datasets, num_samples, ...)}`` (fastest).
        log_q : {"auto", True, False}, default="auto"
            Compute the log density of each draw (``sample_stats.log_q``); "auto" does so
            where the *fitted* network makes it cheap (coupling flows) and not for flow
            matching. Not computed with ``return_type="numpy"``, which returns draws only.
        dims : dict of str to list of str, optional
            Names of the trailing dims of variables in the container, as in ArviZ's
            converters: ``{"beta": ["coefficient"]}`` (default ``beta_dim_0``); for data,
            the observation dim first (default: ``observation``, shared by the variables
            of one set, see ``skabi._arviz``).
        coords : dict of str to array-like, optional
            Coordinate values of dims, e.g. ``{"coefficient": ["intercept", "slope"]}``
            (default: integers).

        Returns
        -------
        arviz.InferenceData, xarray.DataTree or dict of ndarray

        Notes
        -----
        Draws are independent, so the ``chain`` dim has length 1 and R-hat is meaningless.
        Memory: draws are made in chunks over datasets and draws and written into the
        result, so a call needs the result plus a fixed working set
        (``skabi.training.inference``).
        """
        if (X is None) == (conditions is None):
            raise TypeError("sample needs the data once: sample(X, ...) or, as in BayesFlow, "
                            f"sample(conditions=X, ...); got X={type(X).__name__} and "
                            f"conditions={type(conditions).__name__}.")
        X = X if conditions is None else conditions
        num_samples = check_positive_int("num_samples", num_samples)
        if return_type not in ("arviz", "numpy"):
            raise ValueError(f"return_type must be 'arviz' or 'numpy'; got {return_type!r}.")
        if log_q not in ("auto", True, False):
            raise ValueError(f"log_q must be 'auto', True or False; got {log_q!r}.")
        data = self._observations(X, meta)
        roles, _ = self._roles(data, need_theta=False, skip=self.parameter_names_)
        # "numpy" returns no log densities: do not spend a second pass on them.
        want = False if return_type == "numpy" else (
            self.approximator_.cheap_log_prob if log_q == "auto" else log_q)
        with self._threads():
            user, lq = inference.draw(self._fit_state(), roles, int(num_samples),
                                      self._rng(random_state), log_q=want)
        if return_type == "numpy":
            return user
        from .._arviz import to_arviz

        truth = {k: np.asarray(data[k]) for k in user if k in data}
        observed = {k: v for k, v in data.items() if k not in user}
        return to_arviz(user, true_values=truth or None, observed=observed, log_q=lq,
                        constant_keys=self._meta_keys(), dims=dims, coords=coords)

    def _meta_keys(self):
        """Variables that were batch scalars (meta, such as ``N``) in training."""
        seen = getattr(self.adapter_, "input_variables_", None) or {}
        return [k for k, shape in seen.items() if tuple(shape) == ()]

    def log_prob(self, X, *, meta=None):
        """log q(theta | x) of the true parameters for each dataset, on the user's scale.

        Includes the log-Jacobians of the adapter's transforms (e.g. ``Constrain``), so
        it is a density of the parameters as the simulator draws them.

        Returns
        -------
        ndarray of shape (n_datasets,)
        """
        data = self._observations(X, meta, frame_is_dataset=False)
        roles, ldj = self._roles(data, need_theta=True, log_det_jac=True)
        with self._threads():
            return inference.log_prob(self._fit_state(), roles) + ldj

    def latent(self, X, *, meta=None):
        """The inference network's latent draws of simulated pairs: ``z = f(theta; x)``.

        For an exact flow and pairs ``(theta, x)`` from the simulator, ``z`` is standard
        normal, N(0, I) (BayesFlow 1's latent-space check; plot it with
        :func:`skabi.diagnostics.plots.latent_space`). Structure, skew or a scale other
        than 1 show where the flow does not map the posterior onto its base distribution.

        Parameters
        ----------
        X : dict of arrays or SimulationBank
            Simulations that hold the parameters.
        meta : dict, optional

        Returns
        -------
        ndarray of shape (n_datasets, D)
            One latent vector per simulation, ``D`` the size of ``inference_variables``.
        """
        data = self._observations(X, meta, frame_is_dataset=False)
        roles, _ = self._roles(data, need_theta=True)
        with self._threads():
            return inference.outputs(self._fit_state(), roles, lambda m, b: m.latent(b))

    def summaries(self, X, *, meta=None):
        """The summary network's outputs for each dataset of ``X``.

        Returns
        -------
        ndarray of shape (n_datasets, summary_dim)
        """
        check_is_fitted(self, "approximator_")
        if self.summary_network_ is None:
            raise ValueError("This estimator has no summary network, so no summaries.")
        data = self._observations(X, meta)
        roles, _ = self._roles(data, need_theta=False, skip=self.parameter_names_)
        with self._threads():
            return inference.outputs(self._fit_state(), roles, lambda m, b: m.summaries(b))

    def misspecification_test(self, X, simulator=None, *, reference=None, num_reference=2000,
                              n_null=500, meta=None, random_state=None):
        """Could the model have produced these data? An MMD test in summary space.

        Compares the summaries of the observed datasets in ``X`` (one or many: one test
        for all) with those of ``num_reference`` datasets simulated with the same meta
        variables (``N``), with a null distribution from sets of simulated datasets of
        the same count (:func:`skabi.diagnostics.summary_mmd_test`; Schmitt et al. 2023).
        Sharpest after training with ``summary_mmd_weight > 0``.

        Parameters
        ----------
        X : dict of arrays, list of dict, DataFrame, ...
            Observed datasets, as for :meth:`sample`; all of one size.
        simulator : Simulator, optional
            The model; simulated with the meta variables of ``X``. Not stored.
        reference : dict of arrays, optional
            Simulations of the same size instead of ``simulator``.
        num_reference : int, default=2000
        n_null : int, default=500
        meta : dict, optional
        random_state : None, int or numpy.random.Generator, default=None
            Seed of the reference simulations and the null sets; ``None`` uses the
            estimator's ``random_state``.

        Returns
        -------
        skabi.diagnostics.MMDTest
            ``statistic``, ``p_value``, ``null`` and the summaries; ``reject(alpha)``.
        """
        from ..diagnostics import summary_mmd_test

        observed = self.summaries(X, meta=meta)
        rng = self._rng(random_state)
        if reference is None:
            if simulator is None:
                raise ValueError("Pass the simulator (or reference= simulations of the same "
                                 "size) to compare the observed summaries with.")
            data = self._observations(X, meta)
            fixed = {}
            for key in self._meta_keys():
                if key in data:
                    value = np.unique(np.asarray(data[key]))
                    if value.size != 1:
                        raise ValueError(
                            f"The observed datasets differ in {key!r} ({value.tolist()}); test "
                            "datasets of one size together, or pass reference= simulations.")
                    fixed[key] = value.reshape(())
            num_reference = check_positive_int("num_reference", num_reference)
            reference = simulator.sample_given(fixed, num_reference, random_state=rng) \
                if fixed else simulator.sample(num_reference, random_state=rng)
        return summary_mmd_test(observed, self.summaries(reference), n_null=n_null,
                                random_state=rng)

    def score(self, X, y=None):
        """Mean log q(theta | x) over held-out simulations: higher is better.

        ``X`` (and ``y``) as in :meth:`fit`, but holding fixed simulations.
        """
        if y is not None:
            X = array_bank(X, y)
            check_is_fitted(self, "approximator_")
            shared.check_n_features(self, X["x"])
        return float(np.mean(self.log_prob(X)))

    # ------------------------------------------------------------------ diagnostics
    def compute_default_diagnostics(self, X, num_samples=1000, *, meta=None, random_state=None):
        """Recovery and calibration of held-out simulations, one column per parameter element.

        Parameters
        ----------
        X : dict of arrays or SimulationBank
            Validation simulations that hold the true parameters.
        num_samples : int, default=1000
            Posterior draws per dataset.

        Returns
        -------
        pandas.DataFrame
            Rows: ``nrmse`` (RMSE of the posterior mean over the targets' range),
            ``contraction`` (median posterior contraction), ``median_abs_z`` (median
            absolute posterior z-score), ``calibration_error`` (largest deviation of the
            rank ECDF from uniform), ``calibration_band`` (its 95% bound for calibrated
            draws), ``coverage_90`` (coverage of central 90% intervals). TARP's joint
            test of all parameters (:func:`skabi.diagnostics.tarp`) is in
            ``frame.attrs["tarp"]``.
        """
        import pandas as pd

        from .. import diagnostics as dg

        idata = self.sample(X, num_samples, meta=meta, random_state=random_state, log_q=False)
        cal = dg.calibration_error(idata)
        rows = {
            "nrmse": dg.root_mean_squared_error(idata),
            "contraction": dg.posterior_contraction(idata, summary=True),
            "median_abs_z": dg.posterior_z_score(idata, summary=True),
            "calibration_error": cal["error"],
            "calibration_band": cal["band"],
            "coverage_90": dg.expected_coverage(idata, levels=(0.9,)).iloc[:, 0],
        }
        frame = pd.DataFrame({k: pd.Series(v) for k, v in rows.items()}).T
        frame.attrs["tarp"] = dg.tarp(idata).to_dict()
        return frame

    def plot_default_diagnostics(self, X, num_samples=1000, *, meta=None, random_state=None,
                                 variable_names=None):
        """The tutorial's diagnostic plots for held-out simulations.

        Returns
        -------
        dict of str to matplotlib.figure.Figure
            ``losses``, ``recovery``, ``calibration_ecdf`` (difference form),
            ``z_score_contraction``, ``tarp`` (expected coverage of the joint posterior)
            and, for coupling flows, ``latent_space`` (the flow's latent draws of ``X``
            against N(0, I), :meth:`latent`).
        """
        from ..diagnostics import plots

        idata = self.sample(X, num_samples, meta=meta, random_state=random_state, log_q=False)
        names = dict(variable_names=variable_names)
        figures = {
            "losses": plots.loss(self.history_),
            "recovery": plots.recovery(idata, **names),
            "calibration_ecdf": plots.calibration_ecdf(idata, difference=True, **names),
            "z_score_contraction": plots.z_score_contraction(idata, **names),
            "tarp": plots.tarp(idata),
        }
        if hasattr(self.inference_network_, "forward_transform"):
            figures["latent_space"] = plots.latent_space(self.latent(X, meta=meta))
        return figures
