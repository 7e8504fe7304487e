"""Issue 19: posteriors from fixed banks of 10^3, 10^4 and 10^5 simulations against exact
or reference posteriors, scored by C2ST.

Problems (each with a sampler of its exact or reference posterior):

* ``linear_gaussian`` -- ``theta ~ N(0, 0.1 I_10)``, ``x ~ N(theta, 0.1 I_10)``; exact
  posterior ``N(x / 2, 0.05 I_10)``. The issue's failing case (C2ST 0.60 at 10^4).
* ``gaussian_mixture`` -- ``theta ~ U(-10, 10)^2``, ``x ~ 0.5 N(theta, I) + 0.5 N(theta,
  0.01 I)`` (the mixture task of Lueckmann et al. 2021, "Benchmarking simulation-based
  inference"); exact posterior: the same mixture centred at ``x``, cut to the box
  (rejection sampling).
* ``two_moons`` -- the crescent-shaped, bimodal posterior of Greenberg et al. 2019 /
  Lueckmann et al. 2021; reference by a fine grid of the exact likelihood (its density in
  polar coordinates) under the uniform prior, with jitter inside cells.
* ``slcp`` -- "simple likelihood, complex posterior" (Papamakarios et al. 2019): 5
  parameters, 4 draws of a 2-D Gaussian with parameter-dependent mean and covariance;
  four symmetric modes. Reference: independent draws of a sequential Monte Carlo sampler
  (tempered from the prior) of the exact likelihood (``slcp_reference``).
* ``slcp_set`` -- the same banks and observations, the four draws declared an exchangeable
  set (``AsSet``) for a ``DeepSet`` with second-order pooling (``moment_dim=4``): what a
  user who knows the draws are i.i.d. writes. Not in the default list of problems: the
  eight keep their flat, structure-blind inputs, as in the published benchmarks.
* ``slcp_tokens`` -- the same banks and observations, the flat vector of 8 numbers read
  as 8 tokens (``AsTokens``: each value with a one-hot code of its position) by a
  ``SetTransformer``: no structure declared beyond "these are 8 features", so the
  attention has to learn which features belong together. Not in the default list
  either (it adds a summary network to a flat problem).
* ``ar1`` -- a time series: ``phi ~ U(-0.95, 0.95)``, ``log sigma ~ N(-1, 0.5)``,
  ``x_t = phi x_{t-1} + sigma e_t``, T = 50 (conditional likelihood given ``x_0 = 0``);
  reference by a grid of the exact likelihood.
* ``heavy_tailed``, ``bernoulli_glm``, ``sir_ode`` -- the problems of other shapes of
  ``wider_suite.py`` (Student-t noise, a logistic regression on binary data, the SIR
  equations), with the reference samplers described there.

Each problem is trained with ``AmortizedPosterior`` as a new user would train on a bank:
the problem's adapter (``Standardize`` + ``Constrain`` where the prior is bounded), the
default spline ``CouplingFlow``, 10% of the bank held out (``validation_sims=0.1``),
``early_stopping=True``, no per-problem tuning. Scores: C2ST against 10,000 reference
draws on several observed datasets (0.5 is perfect), the best epoch (and the subnet
depth a spline flow kept) and the wall time.
Published NPE numbers for the sbibm tasks (Lueckmann et al. 2021, Fig. 3: NPE at 10^3 /
10^4 / 10^5 simulations, C2ST roughly 0.85-0.95 / 0.7-0.8 / 0.6-0.65 on SLCP, 0.6-0.7 /
0.55-0.6 / 0.52-0.55 on two moons and the mixture) are the comparison points.

Run ``python benchmarks/reference_posteriors.py [problem ...] [--budgets 1000 10000]
[--seeds 0] [--observations 5] [--network spline|flow_matching|diffusion] [--save-draws DIR]
[--constrain auto|map|reject|select] [--fast]``. ``--constrain map`` keeps the box
priors' bounds by the logit map (the default before 2026-12-08), ``reject`` by rejection
(``Constrain(method="reject")``); ``select`` (and ``auto``, the default, for a box) trains
with both and keeps the higher validation density on the user's scale.
Prints one markdown row per cell.
"""

from __future__ import annotations

import argparse
import pathlib
import time
import warnings

import numpy as np

import wider_suite
from skabi import AmortizedPosterior, make_adapter
from skabi.adapters import (AsSet, AsTimeSeries, AsTokens, Concatenate, Constrain, Rename,
                            Standardize)
from skabi.diagnostics import c2st
from skabi.networks import (CouplingFlow, DeepSet, DiffusionModel, FlowMatching,
                            SetTransformer, TimeSeriesNetwork)
from skabi.training import defaults

N_REF = 10_000


# ------------------------------------------------------------------------ linear Gaussian
def linear_gaussian_simulate(n, rng):
    theta = rng.normal(0.0, np.sqrt(0.1), size=(n, 10))
    return {"theta": theta, "x": theta + rng.normal(0.0, np.sqrt(0.1), size=(n, 10))}


def linear_gaussian_reference(x, n, rng):
    return x / 2 + np.sqrt(0.05) * rng.standard_normal((n, 10))


# ------------------------------------------------------------------------ Gaussian mixture
def mixture_simulate(n, rng):
    theta = rng.uniform(-10, 10, size=(n, 2))
    scale = np.where(rng.uniform(size=(n, 1)) < 0.5, 1.0, 0.1)
    return {"theta": theta, "x": theta + scale * rng.standard_normal((n, 2))}


def mixture_reference(x, n, rng):
    out = np.empty((0, 2))
    while len(out) < n:
        scale = np.where(rng.uniform(size=(4 * n, 1)) < 0.5, 1.0, 0.1)
        draw = x + scale * rng.standard_normal((4 * n, 2))
        out = np.concatenate([out, draw[np.all(np.abs(draw) < 10, axis=1)]])
    return out[:n]


# ------------------------------------------------------------------------ two moons
def _moons_offsets(theta):
    return np.stack([-np.abs(theta[:, 0] + theta[:, 1]) / np.sqrt(2),
                     (-theta[:, 0] + theta[:, 1]) / np.sqrt(2)], axis=1)


def two_moons_simulate(n, rng):
    theta = rng.uniform(-1, 1, size=(n, 2))
    a = rng.uniform(-np.pi / 2, np.pi / 2, size=n)
    r = rng.normal(0.1, 0.01, size=n)
    p = np.stack([r * np.cos(a) + 0.25, r * np.sin(a)], axis=1)
    return {"theta": theta, "x": p + _moons_offsets(theta)}


def _grid_draws(log_density, lows, highs, n, rng, size=800):
    """Draws from a 2-D density on a fine grid, jittered uniformly inside the cells."""
    g0 = np.linspace(lows[0], highs[0], size + 1)
    g1 = np.linspace(lows[1], highs[1], size + 1)
    c0, c1 = (g0[:-1] + g0[1:]) / 2, (g1[:-1] + g1[1:]) / 2
    t0, t1 = np.meshgrid(c0, c1, indexing="ij")
    logp = log_density(np.stack([t0.ravel(), t1.ravel()], axis=1))
    w = np.exp(logp - logp.max())
    idx = rng.choice(w.size, size=n, p=w / w.sum())
    i, j = np.unravel_index(idx, t0.shape)
    return np.stack([g0[i] + rng.uniform(size=n) * (g0[1] - g0[0]),
                     g1[j] + rng.uniform(size=n) * (g1[1] - g1[0])], axis=1)


def _moons_log_lik(theta, x):
    """log p(x | theta) of two moons up to a constant: the crescent's density at
    ``x - offsets(theta)``, ``N(r; 0.1, 0.01) / r`` in polar coordinates around (0.25, 0)."""
    p = x - _moons_offsets(theta)           # (r cos a + 0.25, r sin a)
    u, v = p[:, 0] - 0.25, p[:, 1]
    r = np.hypot(u, v)
    inside = u > 0                          # a in (-pi/2, pi/2)
    logp = -0.5 * ((r - 0.1) / 0.01) ** 2 - np.log(np.maximum(r, 1e-12))
    return np.where(inside, logp, -np.inf)


def two_moons_reference(x, n, rng):
    return _grid_draws(lambda theta: _moons_log_lik(theta, x), (-1, -1), (1, 1), n, rng,
                       size=1200)


def two_moons_log_posterior(theta, x, n_radius=200, n_angle=400, chunk=256):
    """The exact ``log p(theta | x)`` of two moons, one row per simulation.

    The likelihood is the crescent's density at ``p = x - offsets(theta)``:
    ``N(r; 0.1, 0.01) / (pi r)`` in polar coordinates around ``(0.25, 0)``. On each side of
    the fold ``theta_1 + theta_2 = 0``, ``theta -> offsets(theta)`` is a rotation (and a
    reflection), so the integral of the likelihood over the prior's box is the
    crescent's mass whose two preimages (one per side) lie in the box. It is computed
    on a stratified grid of ``n_radius x n_angle`` points of the crescent (normal
    quantiles in ``r``, midpoints in ``a``); the grid of ``_grid_draws`` (1200 x 1200)
    gives the same mean over 2000 simulations to 3e-5.
    """
    from scipy.stats import norm

    r = 0.1 + 0.01 * norm.ppf((np.arange(n_radius) + 0.5) / n_radius)
    a = -np.pi / 2 + np.pi * (np.arange(n_angle) + 0.5) / n_angle
    rr, aa = (v.ravel() for v in np.meshgrid(r, a, indexing="ij"))
    crescent = np.stack([rr * np.cos(aa) + 0.25, rr * np.sin(aa)], axis=1)
    log_mass = np.empty(len(x))
    for i in range(0, len(x), chunk):
        off = x[i:i + chunk, None, :] - crescent[None]      # offsets that explain x
        s, d = -np.sqrt(2) * off[..., 0], np.sqrt(2) * off[..., 1]
        inside = np.zeros(s.shape)
        for sign in (1, -1):                                # the two sides of the fold
            t1, t2 = (sign * s - d) / 2, (sign * s + d) / 2
            inside += (s >= 0) & (np.abs(t1) <= 1) & (np.abs(t2) <= 1)
        log_mass[i:i + chunk] = np.log(inside.mean(axis=1))
    # the constants _moons_log_lik leaves out: N(r; 0.1, 0.01)'s and the angle's 1 / pi
    return _moons_log_lik(theta, x) - np.log(0.01 * np.sqrt(2 * np.pi) * np.pi) - log_mass


# ------------------------------------------------------------------------ SLCP
def _slcp_moments(theta):
    mean = theta[:, :2]
    s1, s2 = theta[:, 2] ** 2, theta[:, 3] ** 2
    rho = np.tanh(theta[:, 4])
    return mean, s1, s2, rho


def slcp_simulate(n, rng):
    theta = rng.uniform(-3, 3, size=(n, 5))
    mean, s1, s2, rho = _slcp_moments(theta)
    z = rng.standard_normal((n, 4, 2))
    x1 = mean[:, None, 0] + s1[:, None] * z[..., 0]
    x2 = mean[:, None, 1] + s2[:, None] * (rho[:, None] * z[..., 0]
                                           + np.sqrt(1 - rho[:, None] ** 2) * z[..., 1])
    return {"theta": theta, "x": np.stack([x1, x2], axis=-1).reshape(n, 8)}


def _slcp_log_lik(theta, x):
    mean, s1, s2, rho = _slcp_moments(theta)
    pts = x.reshape(4, 2)
    d1 = (pts[None, :, 0] - mean[:, None, 0]) / s1[:, None]
    d2 = (pts[None, :, 1] - mean[:, None, 1]) / s2[:, None]
    q = (d1 ** 2 - 2 * rho[:, None] * d1 * d2 + d2 ** 2) / (1 - rho[:, None] ** 2)
    logdet = np.log(s1) + np.log(s2) + 0.5 * np.log(1 - rho ** 2)
    out = -0.5 * q.sum(axis=1) - 4 * logdet
    return np.where(np.all(np.abs(theta) < 3, axis=1), out, -np.inf)


def _orthant_signs(theta):
    """+1 or -1 per coordinate: the signs of theta_3 and theta_4, 1 elsewhere."""
    signs = np.ones_like(theta)
    signs[:, 2:4] = np.where(theta[:, 2:4] < 0, -1.0, 1.0)
    return signs


def _flip_signs(theta, rng):
    """Random signs of theta_3 and theta_4 (in place): the likelihood's exact symmetry."""
    theta[:, 2:4] *= rng.choice([-1.0, 1.0], size=(len(theta), 2))
    return theta


def _slcp_moves(theta, log_lik, x, beta, steps, rng):
    """``steps`` Metropolis-Hastings moves of every particle on ``prior * lik^beta``.

    The Gaussian proposal's covariance is the particles' own, after folding theta_3 and
    theta_4 to their absolute values (the four sign copies of a mode share one shape),
    scaled by 2.38^2 / 5, and mirrored into the orthant of the particle that moves; since
    it then depends on the orthant, the Hastings ratio corrects moves that cross one.
    Returns the particles, their log likelihoods and the number of accepted moves."""
    cov = np.cov((theta * _orthant_signs(theta)).T) * 2.38 ** 2 / 5 + 1e-12 * np.eye(5)
    chol, prec = np.linalg.cholesky(cov), np.linalg.inv(cov)
    accepted = 0
    for _ in range(steps):
        signs = _orthant_signs(theta)
        step = (rng.standard_normal(theta.shape) @ chol.T) * signs
        prop = theta + step
        back = step * _orthant_signs(prop)
        fwd = step * signs
        log_q = -0.5 * (np.einsum("ni,ij,nj->n", back, prec, back)
                        - np.einsum("ni,ij,nj->n", fwd, prec, fwd))
        prop_lik = _slcp_log_lik(prop, x)                 # -inf outside the prior's box
        ok = np.log(rng.uniform(size=len(theta))) < beta * (prop_lik - log_lik) + log_q
        theta[ok], log_lik[ok] = prop[ok], prop_lik[ok]
        accepted += int(ok.sum())
    return theta, log_lik, accepted


def _slcp_settle(theta, log_lik, x, moves, rng):
    """``moves`` moves on the posterior (``beta = 1``), the proposal re-fitted every 100.
    Returns the particles, their log likelihoods and the number of accepted moves."""
    accepted = 0
    for done in range(0, moves, 100):
        theta, log_lik, acc = _slcp_moves(theta, log_lik, x, 1.0, min(100, moves - done), rng)
        accepted += acc
    return theta, log_lik, accepted


def slcp_reference(x, n, rng, *, moves=50, final_moves=3000):
    """Independent draws from the SLCP posterior by a sequential Monte Carlo sampler.

    ``n`` particles from the uniform prior are tempered to the posterior (``prior *
    lik^beta``, each next ``beta`` the one that halves the effective sample size),
    resampled at each temperature, given random signs of theta_3 and theta_4 (the
    likelihood's exact symmetry, so the four modes keep equal weight) and moved ``moves``
    Metropolis-Hastings steps; at ``beta = 1`` they move ``final_moves`` more, the
    proposal re-fitted every 100. Each draw is the end of its own particle's path: no
    chain's draws are kept together, so the reference is not clumped.

    Two runs of it with other seeds are told apart by C2ST at 0.494-0.504 on the 15
    observations of seeds 0-2, and from a second sampler (prior importance resampling,
    then 2,000 such moves; ``slcp_reference_check.py``) at 0.495-0.505. It replaced
    (2026-12-07) a random-walk Metropolis from the true parameter (400 chains of 25 draws,
    one fixed step), whose clumped draws two of its own runs told apart at 0.54-0.57."""
    theta = rng.uniform(-3, 3, size=(n, 5))
    log_lik = _slcp_log_lik(theta, x)
    beta, accepted, proposed = 0.0, 0, 0

    def weights(next_beta):
        w = np.exp((next_beta - beta) * (log_lik - log_lik.max()))
        return w / w.sum()

    def ess(next_beta):
        return 1 / np.sum(weights(next_beta) ** 2)

    while beta < 1:
        lo, next_beta = beta, 1.0
        if ess(1.0) < n / 2:    # bisect: ess(lo) >= n / 2 > ess(next_beta)
            for _ in range(50):
                mid = (lo + next_beta) / 2
                lo, next_beta = (mid, next_beta) if ess(mid) >= n / 2 else (lo, mid)
        keep = rng.choice(n, size=n, p=weights(next_beta))
        theta, log_lik, beta = _flip_signs(theta[keep], rng), log_lik[keep], next_beta
        theta, log_lik, acc = _slcp_moves(theta, log_lik, x, beta, moves, rng)
        accepted, proposed = accepted + acc, proposed + moves * n
    theta, log_lik, acc = _slcp_settle(theta, log_lik, x, final_moves, rng)
    accepted, proposed = accepted + acc, proposed + final_moves * n
    if accepted < 0.01 * proposed:
        warnings.warn(f"SLCP reference: acceptance {accepted / proposed:.4f}; the particles "
                      "hardly moved, so the reference draws (and a C2ST against them) mean "
                      "little", stacklevel=2)
    return theta


def slcp_set_simulate(n, rng):
    """SLCP with its four draws as an exchangeable set, ``x`` of shape ``(n, 4, 2)``: the
    same random stream as :func:`slcp_simulate`, so the banks hold the same simulations."""
    sims = slcp_simulate(n, rng)
    return {**sims, "x": sims["x"].reshape(n, 4, 2)}


def slcp_set_adapter():
    """The four draws as a set for a summary network (what a user who knows they are
    exchangeable declares); standardized after :class:`AsSet`, so per coordinate."""
    return make_adapter(Constrain("theta", lower=-3, upper=3, method=CONSTRAIN["method"]), AsSet("x"), Standardize(["x"]),
                        Rename("theta", "inference_variables"),
                        Rename("x", "summary_variables"))


def slcp_tokens_adapter():
    """The flat vector of 8 numbers as 8 tokens for a set transformer, each feature
    standardized on its own first (nothing says which features are one draw)."""
    return make_adapter(Constrain("theta", lower=-3, upper=3, method=CONSTRAIN["method"]), Standardize(["x"]),
                        AsTokens("x"), Rename("theta", "inference_variables"),
                        Rename("x", "summary_variables"))


# ------------------------------------------------------------------------ AR(1)
T_AR = 50


def ar1_simulate(n, rng):
    phi = rng.uniform(-0.95, 0.95, size=n)
    log_sigma = rng.normal(-1.0, 0.5, size=n)
    e = rng.standard_normal((n, T_AR)) * np.exp(log_sigma)[:, None]
    x = np.zeros((n, T_AR))
    prev = np.zeros(n)
    for t in range(T_AR):
        prev = phi * prev + e[:, t]
        x[:, t] = prev
    return {"phi": phi, "log_sigma": log_sigma, "x": x[..., None]}


def ar1_reference(x, n, rng):
    series = x[:, 0]
    lagged = np.concatenate([[0.0], series[:-1]])

    def log_post(theta):
        phi, ls = theta[:, 0:1], theta[:, 1:2]
        resid = series[None, :] - phi * lagged[None, :]
        loglik = -0.5 * np.sum(resid ** 2, axis=1) / np.exp(2 * ls[:, 0]) - T_AR * ls[:, 0]
        return loglik - 0.5 * ((ls[:, 0] + 1.0) / 0.5) ** 2
    return _grid_draws(log_post, (-0.95, -3.5), (0.95, 1.5), n, rng, size=1000)


# ------------------------------------------------------------------------ the suite
#: How the box priors' bounds are kept (``--constrain``): ``Constrain(method=...)``
CONSTRAIN = {"method": "auto"}


def _setting(apply):
    """An argparse action that also hands the parsed value to ``apply``: for the module
    settings the problems and the engine read when they are built."""
    class Setting(argparse.Action):
        def __call__(self, parser, namespace, value, option_string=None):
            apply(value)
            setattr(namespace, self.dest, value)
    return Setting


def add_constrain(parser):
    """``--constrain {auto,map,reject,select}``: ``Constrain``'s method for the problems'
    box priors (both bounds), set when the arguments are parsed."""
    parser.add_argument("--constrain", choices=["auto", "map", "reject", "select"],
                        default="auto",
                        action=_setting(lambda value: CONSTRAIN.update(method=value)),
                        help="how the bounds of a box prior are kept")


def kept_methods(adapter):
    """The methods of a fitted adapter's ``Constrain`` steps (what ``"select"`` kept)."""
    return [step.method for _, step in adapter.steps if isinstance(step, Constrain)]


def _vector_adapter(low=None, high=None):
    steps = []
    if low is not None:
        steps.append(Constrain("theta", lower=low, upper=high, method=CONSTRAIN["method"]))
    steps += [Standardize(["x"]), Rename("theta", "inference_variables"),
              Rename("x", "inference_conditions")]
    return make_adapter(*steps)


PROBLEMS = {
    "linear_gaussian": dict(simulate=linear_gaussian_simulate,
                            reference=linear_gaussian_reference, adapter=_vector_adapter),
    "gaussian_mixture": dict(simulate=mixture_simulate, reference=mixture_reference,
                             adapter=lambda: _vector_adapter(-10, 10)),
    "two_moons": dict(simulate=two_moons_simulate, reference=two_moons_reference,
                      adapter=lambda: _vector_adapter(-1, 1)),
    "slcp": dict(simulate=slcp_simulate, reference=slcp_reference,
                 adapter=lambda: _vector_adapter(-3, 3)),
    # the same problem, its draws declared exchangeable: a DeepSet with second-order
    # pooling sees their means and covariance, the sufficient statistics (run only when
    # named: ``extra``)
    "slcp_set": dict(simulate=slcp_set_simulate, reference=slcp_reference,
                     adapter=slcp_set_adapter, extra=True,
                     summary=lambda: DeepSet(summary_dim=10, moment_dim=4)),
    # ... and its flat vector read as tokens that know their position (``AsTokens``)
    "slcp_tokens": dict(simulate=slcp_simulate, reference=slcp_reference,
                        adapter=slcp_tokens_adapter, extra=True,
                        summary=lambda: SetTransformer(summary_dim=32, num_blocks=3)),
    "ar1": dict(simulate=ar1_simulate, reference=ar1_reference, names=["phi", "log_sigma"],
                adapter=lambda: make_adapter(
                    Constrain("phi", lower=-0.95, upper=0.95, method=CONSTRAIN["method"]),
                    Concatenate(["phi", "log_sigma"], into="inference_variables"),
                    AsTimeSeries("x"), Rename("x", "summary_variables")),
                summary=lambda: TimeSeriesNetwork(summary_dim=8)),
    **wider_suite.PROBLEMS,
}


#: The settings of the "before" runs: what a new user set before skabi chose offline
#: defaults (10% held out, early stopping), with the online defaults of that time for the
#: rest (``--before``).
BEFORE = dict(epochs=200, validation_sims=0.1, early_stopping=True, patience=5,
              learning_rate=2e-3, batch_size=64, lr_schedule="cosine", weight_averaging=None)
#: ... and the flow as it was then: no linear warm-up.
BEFORE_FLOW = dict(linear_warmup=False)


def _parse(pairs):
    """``["a=1", "b=cosine"]`` -> ``{"a": 1, "b": "cosine"}`` (numbers, None, bools)."""
    out = {}
    for pair in pairs or ():
        key, value = pair.split("=", 1)
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                pass
        out[key] = {"None": None, "True": True, "False": False}.get(value, value)
    return out


#: ``--network``: the inference network (``--flow`` sets its parameters)
NETWORKS = {
    "spline": lambda **kw: CouplingFlow(**{"transform": "spline", **kw}),
    "flow_matching": lambda **kw: FlowMatching(**kw),
    "diffusion": lambda **kw: DiffusionModel(**kw),
}


def add_bank_steps(parser):
    """``--bank-steps N``: a candidate for ``skabi.training.defaults.BANK_STEPS`` (the step
    budget of ``epochs="auto"`` with a bank), set when the arguments are parsed."""
    parser.add_argument("--bank-steps", type=int,
                        action=_setting(lambda value: setattr(defaults, "BANK_STEPS", value)),
                        help="a candidate step budget of epochs=\"auto\" with a bank")


def add_save_draws(parser):
    """``--save-draws DIR``: keep each cell's draws, to score them again (against another
    reference, say) without training again."""
    parser.add_argument("--save-draws", metavar="DIR",
                        help="save each cell's draws as DIR/PROBLEM_BUDGET_SEED.npy")


def save_draws(directory, name, budget, seed, draws):
    """Write one cell's draws, ``(n_obs, n_draws, D)``, as
    ``DIRECTORY/PROBLEM_BUDGET_SEED.npy``."""
    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    np.save(path / f"{name}_{budget}_{seed}.npy", np.asarray(draws))


def cell_data(name, budget, seed, n_obs):
    """The bank, the observed datasets and the random stream of the reference draws of one
    cell: every method scored on the cell sees the same three."""
    problem = PROBLEMS[name]
    rng = np.random.default_rng(seed)
    bank = problem["simulate"](budget, rng)
    observed = problem["simulate"](n_obs, np.random.default_rng(10_000 + seed))
    return bank, observed, rng


def c2st_scores(name, draws, observed, rng):
    """C2ST of ``draws[i]`` (n_draws, D) against as many reference draws for observed
    dataset ``i``, the references taken from ``rng`` in order."""
    scores = []
    for i, sample in enumerate(draws):
        ref = PROBLEMS[name]["reference"](observed["x"][i], len(sample), rng)
        scores.append(float(c2st(sample, ref).iloc[0]))
    return scores


def run_cell(name, budget, seed, n_obs, *, fast=False, params=None, flow=None,
             history=False, network="spline", draws_dir=None):
    problem = PROBLEMS[name]
    bank, observed, rng = cell_data(name, budget, seed, n_obs)
    settings = dict(params or {})
    if fast:
        settings["epochs"] = 3
    est = AmortizedPosterior(adapter=problem["adapter"](),
                             inference_network=NETWORKS[network](**(flow or {})),
                             summary_network=problem.get("summary", lambda: None)(),
                             random_state=seed, **settings)
    t0 = time.perf_counter()
    est.fit(bank)
    seconds = time.perf_counter() - t0
    n_draws = 500 if fast else N_REF
    names = problem.get("names", ["theta"])
    out = est.sample({"x": observed["x"]}, n_draws, return_type="numpy", random_state=seed)
    draws = np.concatenate([out[k].reshape(n_obs, n_draws, -1) for k in names], axis=2)
    if draws_dir:
        save_draws(draws_dir, name, budget, seed, draws)
    scores = c2st_scores(name, draws, observed, rng)
    hist = est.history_
    if history:
        print(hist[["loss", "val_loss", "lr"]].round(4).to_string())
    warmup = int((hist["epoch"] < 0).sum())   # the linear warm-up's epochs come first
    main = hist.iloc[warmup:].reset_index(drop=True)
    best = int(main["val_loss"].idxmin()) + 1 if main["val_loss"].notna().any() else None
    kept = getattr(est.networks_["inference_network"], "subnet_depth", None)
    return scores, seconds, best, (f"{len(main)}" + (f" (+{warmup} warm-up)" if warmup else "")
                                   + (f", subnet depth {kept}" if kept is not None else "")
                                   + (f", kept {kept_methods(est.adapter_)}"
                                      if CONSTRAIN["method"] in ("auto", "select") else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("problems", nargs="*",
                        default=[name for name, p in PROBLEMS.items() if not p.get("extra")])
    parser.add_argument("--budgets", nargs="+", type=int, default=[1000, 10_000, 100_000])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--observations", type=int, default=5)
    parser.add_argument("--fast", action="store_true", help="3 epochs, 500 draws: smoke run")
    parser.add_argument("--set", nargs="*", metavar="KEY=VALUE",
                        help="AmortizedPosterior parameters, e.g. batch_size=128")
    parser.add_argument("--flow", nargs="*", metavar="KEY=VALUE",
                        help="the inference network's parameters, e.g. subnet_width=64")
    parser.add_argument("--network", choices=list(NETWORKS), default="spline",
                        help="inference network (default: the spline CouplingFlow)")
    parser.add_argument("--history", action="store_true", help="print the loss per epoch")
    parser.add_argument("--before", action="store_true",
                        help="the settings a user had to choose before the offline defaults")
    add_save_draws(parser)
    add_bank_steps(parser)
    add_constrain(parser)
    args = parser.parse_args()
    params = {**(BEFORE if args.before else {}), **_parse(args.set)}
    print("| problem | budget | seed | C2ST per observation | mean | best epoch / epochs | "
          "train s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.problems:
        for budget in args.budgets:
            for seed in args.seeds:
                scores, seconds, best, epochs = run_cell(
                    name, budget, seed, args.observations, fast=args.fast,
                    params=params, history=args.history, network=args.network,
                    draws_dir=args.save_draws,
                    flow={**(BEFORE_FLOW if args.before else {}), **_parse(args.flow)})
                print(f"| {name} | {budget} | {seed} | {' '.join(f'{s:.3f}' for s in scores)} "
                      f"| {np.mean(scores):.3f} | {best} / {epochs} | {seconds:.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
