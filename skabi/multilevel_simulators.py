"""Simulators of two-level (hierarchical) models: hyperparameters, groups, data.

A batch of a :class:`MultilevelSimulator` holds the global variables ``(B, ...)``, the
local variables of every group ``(B, J, ...)`` (parameters, covariates, the group's data
``(B, J, N, ...)``) and the meta variables (``J``, ``N``), drawn once per batch so that a
training batch needs no padding, and varying between batches.
"""

import numpy as np

from ._validation import as_numpy_rng
from .exceptions import SimulatorError
from .simulators import SequentialSimulator, Simulator, _call_of

__all__ = ["MultilevelSimulator", "make_multilevel_simulator"]


def _as_list(fns):
    if fns is None:
        return []
    return list(fns) if isinstance(fns, (list, tuple)) else [fns]


def _arguments(fns):
    names = set()
    for fn in fns:
        call = _call_of(fn)
        names.update(call.required, call.optional)
    return names


class MultilevelSimulator(Simulator):
    """Global, local and data functions drawn level by level; see
    :func:`make_multilevel_simulator`.

    Parameters
    ----------
    global_fn : callable, Simulator or list of them
        Draws the global variables of one dataset (hyperparameters, global covariates).
    local_fn : callable, Simulator or list of them
        Draws the variables of one group given the global ones (named as arguments).
    data_fn : callable, Simulator or list of them, optional
        Draws one group's data given its local (and the global) variables.
    meta_fn : callable
        Called once per batch; must return the number of groups under ``groups``
        (e.g. ``dict(J=int(rng.integers(2, 21)), N=int(rng.integers(1, 21)))``).
    groups : str, default="J"
    random_state : None, int or numpy.random.Generator, default=None

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import make_multilevel_simulator
    >>> simulator = make_multilevel_simulator(
    ...     lambda rng: dict(mu=rng.normal(0, 5), tau=abs(rng.normal(0, 5))),
    ...     lambda mu, tau, rng: dict(theta=rng.normal(mu, tau)),
    ...     lambda theta, N, rng: dict(y=rng.normal(theta, 1, size=N)),
    ...     meta_fn=lambda: dict(J=4, N=6))
    >>> batch = simulator.sample(8, random_state=0)
    >>> batch["mu"].shape, batch["theta"].shape, batch["y"].shape, batch["J"]
    ((8, 1), (8, 4, 1), (8, 4, 6), 4)
    """

    def __init__(self, global_fn, local_fn, data_fn=None, meta_fn=None, *, groups="J",
                 random_state=None):
        self.global_fn = global_fn
        self.local_fn = local_fn
        self.data_fn = data_fn
        self.meta_fn = meta_fn
        self.groups = groups
        self.random_state = random_state

    def _meta(self, rng):
        if self.meta_fn is None:
            raise SimulatorError(f"A multilevel simulator needs meta_fn returning the number "
                                 f"of groups {self.groups!r} of a batch.")
        call = _call_of(self.meta_fn)
        meta = dict(call.checked(self.meta_fn(**call.arguments({}, rng)), where=" (meta_fn)"))
        if self.groups not in meta:
            raise SimulatorError(f"meta_fn returned {sorted(meta)!r}; it must also return the "
                                 f"number of groups {self.groups!r}.")
        n = np.asarray(meta[self.groups])
        if n.ndim != 0 or not np.issubdtype(n.dtype, np.integer) or int(n) < 1:
            raise SimulatorError(f"meta_fn returned {self.groups}={meta[self.groups]!r}; "
                                 "expected an integer >= 1.")
        return meta

    def _run(self, batch_size, rng, given=None):
        if given:
            raise SimulatorError("sample_given is not available for a multilevel simulator.")
        rng = as_numpy_rng(rng)
        meta = self._meta(rng)
        n_groups = int(meta[self.groups])
        glob = SequentialSimulator(_as_list(self.global_fn),
                                   meta_fn=lambda: dict(meta))._run(batch_size, rng)
        glob = {k: v for k, v in glob.items() if k not in meta}
        local_fns = _as_list(self.local_fn) + _as_list(self.data_fn)
        wanted = _arguments(local_fns)
        rows = {k: np.repeat(v, n_groups, axis=0) for k, v in glob.items() if k in wanted}
        local = SequentialSimulator(local_fns, meta_fn=lambda: dict(meta))._run(
            batch_size * n_groups, rng, given=rows)
        out = dict(glob)
        for k, v in local.items():
            if k in meta or k in rows:
                continue
            if isinstance(v, list):
                raise SimulatorError(f"{k!r} differs in shape between the groups of a batch; "
                                     "draw size variables such as N once per batch (meta_fn).")
            out[k] = np.asarray(v).reshape(batch_size, n_groups, *np.shape(v)[1:])
        return {**out, **meta}


def make_multilevel_simulator(global_fn, local_fn, data_fn=None, *, meta_fn,
                              groups="J", random_state=None):
    """Compose a two-level simulator from single-draw functions (or batched simulators).

    For each dataset, ``global_fn`` draws the global variables; for each of its ``J``
    groups, ``local_fn`` draws the group's variables given them, and ``data_fn`` the
    group's data. Arguments are matched by name, as in :func:`~skabi.make_simulator`; an
    argument named ``rng`` receives the batch's generator. Known per-group covariates
    (eight schools' standard errors) are drawn by ``local_fn`` from the range the user
    chooses, and declared as local conditions in the adapter.

    Parameters
    ----------
    global_fn, local_fn : callable, Simulator or list of them
    data_fn : callable, Simulator or list of them, optional
    meta_fn : callable
        Drawn once per batch; returns the number of groups (``groups``, default ``"J"``)
        and any other batch constants such as the observations per group ``N``.
    groups : str, default="J"
    random_state : None, int or numpy.random.Generator, default=None

    Returns
    -------
    MultilevelSimulator
        Batches with global variables ``(B, ...)``, local ones ``(B, J, ...)`` and the
        meta variables as scalars.

    Examples
    --------
    >>> from skabi import make_multilevel_simulator
    >>> sim = make_multilevel_simulator(
    ...     lambda rng: dict(mu=rng.normal()),
    ...     lambda mu, rng: dict(theta=rng.normal(mu), sigma=rng.uniform(5, 20)),
    ...     lambda theta, sigma, rng: dict(y=rng.normal(theta, sigma, size=1)),
    ...     meta_fn=lambda rng: dict(J=int(rng.integers(2, 9))))
    >>> batch = sim.sample(3, random_state=0)
    >>> batch["y"].shape == (3, batch["J"], 1)
    True
    """
    return MultilevelSimulator(global_fn, local_fn, data_fn, meta_fn, groups=groups,
                               random_state=random_state)
