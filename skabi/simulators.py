"""Simulators: prior + likelihood as plain numpy functions, batched.

A simulator produces a *batch*: a ``dict[str, np.ndarray]`` with one entry per simulated
variable and a leading batch axis (``beta (B, 2)``, ``sigma (B, 1)``, ``x (B, N)``), plus
the meta variables (``N``) that are constant within the batch.

Two ways to write one:

* single-draw functions composed with :func:`~skabi.make_simulator` (as in the BayesFlow
  tutorials): ``prior() -> dict(beta=..., sigma=...)``,
  ``likelihood(beta, sigma, N) -> dict(x=..., y=...)``, ``meta() -> dict(N=...)``;
* a subclass of :class:`Simulator` whose :meth:`Simulator.simulate` draws a whole batch
  with vectorised numpy code.

Both compose: :func:`~skabi.make_simulator` accepts :class:`Simulator` instances among the
functions.
"""

import contextlib
import inspect

import numpy as np

from ._validation import as_numpy_rng, check_positive_int
from .bank import Batch, as_rows, concatenate_batches
from .exceptions import SimulatorError

__all__ = ["Simulator", "SequentialSimulator", "make_simulator"]

_RESERVED = ("rng", "batch_size")


def _name(fn):
    return getattr(fn, "__qualname__", None) or type(fn).__name__


@contextlib.contextmanager
def _seeded_global_numpy(rng):
    """Seed the legacy global ``np.random`` from ``rng`` and restore it afterwards.

    Lets user functions that call ``np.random.normal`` & co. be reproducible under a
    ``random_state`` without changing the global stream seen by the rest of the program.
    """
    state = np.random.get_state()
    np.random.seed(int(rng.integers(0, 2**32 - 1)))
    try:
        yield
    finally:
        np.random.set_state(state)


class _Call:
    """One function with the names of its arguments, matched against the draws so far."""

    def __init__(self, fn, *, skip=()):
        self.fn = fn
        self.name = _name(fn)
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError) as exc:  # builtins without a signature
            raise SimulatorError(f"Cannot read the signature of {self.name!r}: {exc}") from None
        self.required, self.optional, self.wants_rng = [], [], False
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in skip:
                continue
            if p.name == "rng":
                self.wants_rng = True
            elif p.default is p.empty:
                self.required.append(p.name)
            else:
                self.optional.append(p.name)

    def arguments(self, available, rng):
        try:
            kwargs = {a: available[a] for a in self.required}
        except KeyError:
            missing = [a for a in self.required if a not in available]
            raise SimulatorError(
                f"Function {self.name!r} needs argument(s) {missing!r}, which nothing drawn "
                f"before it provides; available keys are {sorted(available)!r}."
            ) from None
        for a in self.optional:
            if a in available:
                kwargs[a] = available[a]
        if self.wants_rng:
            kwargs["rng"] = rng
        return kwargs

    def checked(self, out, *, where=""):
        if not isinstance(out, dict):
            raise SimulatorError(
                f"Function {self.name!r} must return a dict of variables{where}; it returned "
                f"{type(out).__name__}."
            )
        return out


def _call_of(fn):
    """The :class:`_Call` of a function, or of a :class:`Simulator`'s ``simulate``."""
    if isinstance(fn, Simulator):
        return _Call(fn.simulate, skip=("batch_size",))
    return _Call(fn)


class Simulator:
    """Base class for batched simulators.

    Subclass it and implement :meth:`simulate` with vectorised numpy code; call
    :meth:`sample` to draw batches. A :class:`Simulator` can also stand among the functions
    given to :func:`~skabi.make_simulator`, where the arguments of its :meth:`simulate` are
    matched by name against the variables drawn before it (each with a leading batch axis).

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import Simulator
    >>> class Gaussian(Simulator):
    ...     def simulate(self, batch_size, rng):
    ...         theta = rng.normal(size=(batch_size, 2))
    ...         x = theta[:, None, :] + rng.normal(size=(batch_size, 10, 2))
    ...         return {"theta": theta, "x": x}
    >>> batch = Gaussian().sample(64, random_state=0)
    >>> batch["theta"].shape, batch["x"].shape
    ((64, 2), (64, 10, 2))
    """

    def simulate(self, batch_size, rng, **inputs):
        """Draw one batch.

        Parameters
        ----------
        batch_size : int
            Number of independent draws.
        rng : numpy.random.Generator
            The only source of randomness to use (keeps ``random_state`` meaningful).
        **inputs
            Variables drawn before this simulator when it is part of a composition; name
            them as explicit arguments to receive them.

        Returns
        -------
        dict of str to ndarray
            Arrays with leading axis ``batch_size``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement simulate(batch_size, rng).")

    def sample(self, batch_size, *, random_state=None, chunk_size=None):
        """Draw a batch of ``batch_size`` simulations.

        Parameters
        ----------
        batch_size : int
            Number of simulations.
        random_state : None, int or numpy.random.Generator, default=None
            Seed for this batch. The same seed gives an identical batch, also for user
            functions that draw with the global ``np.random`` functions (whose global
            state is seeded for the call and restored afterwards). ``None`` draws from the
            simulator's own stream (see ``random_state`` of :func:`~skabi.make_simulator`).
        chunk_size : int, optional
            Draw the simulations in batches of this many, each with its own meta variables
            (``N``), as training does: a bank whose datasets differ in size (their data
            ragged, one array per simulation; ``N`` one value per simulation). Without it
            the meta variables are drawn once for all ``batch_size`` simulations.

        Returns
        -------
        Batch
            A dict of one array per variable, leading axis ``batch_size``; meta variables
            as scalars. scikit-learn can split it (:class:`~skabi.bank.Batch`).
        """
        batch_size = check_positive_int("batch_size", batch_size)
        if chunk_size is not None:
            chunk_size = check_positive_int("chunk_size", chunk_size)
        rng, seeding = self._rng_and_seeding(random_state)
        with seeding:
            if chunk_size is None:
                return Batch(self._run(batch_size, rng))
            return concatenate_batches([self._run(min(chunk_size, batch_size - i), rng)
                                        for i in range(0, batch_size, chunk_size)])

    # ------------------------------------------------------------------ model selection
    #: ``(2,)``: to scikit-learn's searches a simulator is two rows, "train on fresh
    #: simulations" (row 0) and "the held-out simulations" (row 1); see
    #: :class:`skabi.model_selection.HeldOutSimulations`. (A class attribute: a subclass
    #: may set its own ``shape``, at the price of that protocol.)
    shape = (2,)
    __iter__ = None  # rows are for scikit-learn's indexing; a simulator is not a sequence

    def __getitem__(self, index):
        """Row 0: the simulator itself (online training); row 1: the held-out set that
        :class:`~skabi.model_selection.HeldOutSimulations` drew for it."""
        if isinstance(index, tuple):  # scikit-learn indexes as X[rows, ...]
            index = index[0]
        rows = sorted({int(i) for i in np.atleast_1d(np.arange(2)[index])})
        if rows == [1]:
            held_out = self.__dict__.get("_held_out")
            if held_out is None:
                raise ValueError(
                    "A simulator has no held-out simulations until a "
                    "skabi.model_selection.HeldOutSimulations splitter draws them: search "
                    "with GridSearchCV(est, grid, cv=HeldOutSimulations(n)).fit(simulator).")
            return held_out
        if rows == [0]:
            return self
        raise ValueError(
            "A simulator is split into 'train online' (row 0) and 'held out' (row 1) by "
            "skabi.model_selection.HeldOutSimulations; other splitters (KFold, cv=int) "
            "cannot split it: pass cv=HeldOutSimulations(n).")

    def sample_given(self, given, batch_size=None, *, random_state=None):
        """Simulate with some variables held at given values (predictive simulation).

        The functions that draw the given variables still run (their other outputs are
        kept), but what they return for a given variable is replaced by its given value
        before any later function reads it; functions that take a given variable as an
        argument (also an optional one, ``def likelihood(beta, sigma, N, rng, x=None)``)
        receive it. So ``given`` = posterior draws of the parameters plus the dataset's
        ``N`` gives posterior predictive data.

        Parameters
        ----------
        given : dict of str to ndarray
            Values with a leading axis of ``batch_size`` (one per simulation), or 0-d
            values (meta variables such as ``N``, one per batch).
        batch_size : int, optional
            Simulations; by default the leading axis of the given arrays.
        random_state : None, int or numpy.random.Generator, default=None

        Returns
        -------
        Batch
            All variables the simulator draws, given ones at their given values.

        Raises
        ------
        SimulatorError
            When a function returns a given variable together with variables it drew
            from its own value (a batched simulator that draws ``theta`` and ``x`` in one
            call without taking ``theta`` as an argument), or when nothing reads or draws
            a given variable: the simulation would not depend on it.

        Examples
        --------
        >>> import numpy as np
        >>> from skabi import make_simulator
        >>> def prior(rng):
        ...     return dict(mu=rng.normal())
        >>> def likelihood(mu, rng):
        ...     return dict(y=rng.normal(mu, 0.01, size=3))
        >>> sims = make_simulator([prior, likelihood]).sample_given(
        ...     {"mu": np.array([10.0, 100.0])}, random_state=0)
        >>> np.round(sims["y"].mean(axis=1)).tolist()
        [10.0, 100.0]
        """
        given = {k: np.asarray(v) for k, v in dict(given).items()}
        rows = {np.shape(v)[0] for v in given.values() if np.ndim(v) > 0}
        if batch_size is None:
            if len(rows) != 1:
                raise ValueError(
                    "sample_given needs batch_size, or given arrays with one common leading "
                    f"axis; got leading sizes {sorted(rows)!r}.")
            batch_size = rows.pop()
        batch_size = check_positive_int("batch_size", batch_size)
        for k, v in given.items():
            if np.ndim(v) > 0 and np.shape(v)[0] != batch_size:
                raise ValueError(f"given[{k!r}] has shape {np.shape(v)}; expected a leading "
                                 f"axis of batch_size={batch_size} (or a 0-d value).")
        rng, seeding = self._rng_and_seeding(random_state)
        with seeding:
            return Batch(self._run(batch_size, rng, given=given))

    def _rng_and_seeding(self, random_state):
        """The generator of one call and the context that seeds the global ``np.random``
        for it (the simulator's own stream, unseeded, when ``random_state`` is None)."""
        if random_state is None:
            return self._stream(), contextlib.nullcontext()
        rng = as_numpy_rng(random_state)
        return rng, _seeded_global_numpy(rng)

    def _stream(self):
        if getattr(self, "_rng", None) is None:
            self._rng = as_numpy_rng(getattr(self, "random_state", None))
        return self._rng

    def _run(self, batch_size, rng, given=None):
        call = _call_of(self)
        given = given or {}
        out = call.checked(self.simulate(batch_size, **call.arguments(given, rng)))
        out = _check_batch(out, batch_size, call.name)
        if not given:
            return out
        used = set()
        out = _hold_given(call, out, given, used)
        _check_all_used(given, used, out, call.name)
        return {**out, **_given_rows(given, out)}

    def __call__(self, batch_size, **kwargs):
        return self.sample(batch_size, **kwargs)


def _check_batch(out, batch_size, who):
    batch = {}
    for key, value in out.items():
        arr = np.asarray(value)
        if arr.ndim == 0 or arr.shape[0] != batch_size:
            raise SimulatorError(
                f"{who!r} returned {key!r} with shape {arr.shape}; a batched simulator must "
                f"return arrays with leading axis batch_size={batch_size}."
            )
        batch[key] = as_rows(arr, key)
    return batch


def _hold_given(call, out, given, used):
    """Replace the given variables among ``out``; refuse data drawn from their own values."""
    received = {a for a in call.required + call.optional if a in given}
    used |= received
    held = [k for k in out if k in given]
    if not held:
        return out
    drawn_here = [k for k in held if k not in received]
    others = [k for k in out if k not in given]
    if drawn_here and others:
        raise SimulatorError(
            f"{call.name!r} draws {drawn_here!r} and, in the same call, {others!r}; to "
            f"simulate at given values of {drawn_here!r}, it must take them as arguments "
            "(e.g. 'def simulate(self, batch_size, rng, theta=None)') or be split into a "
            "prior and a likelihood (make_simulator([prior, likelihood])).")
    used |= set(held)
    return {**out, **{k: _broadcast_given(given[k], out[k]) for k in held}}


def _broadcast_given(value, drawn):
    value = np.asarray(value)
    if value.ndim == 0:
        return value if np.ndim(drawn) == 0 else np.broadcast_to(value, np.shape(drawn)).copy()
    return as_rows(value)


def _like(value, drawn):
    """A given value in the shape the function drew it (a scalar sigma stays a scalar)."""
    value = np.asarray(value)
    if value.size == np.size(drawn) and value.shape != np.shape(drawn):
        return value.reshape(np.shape(drawn))
    return value


def _given_rows(given, out):
    """Given variables no function returned (read only, such as covariates), as rows."""
    return {k: (v if np.ndim(v) == 0 else as_rows(v, k)) for k, v in given.items()
            if k not in out}


def _check_all_used(given, used, out, who):
    unused = [k for k in given if k not in used and k not in out]
    if unused:
        raise SimulatorError(
            f"No function of the simulator ({who}) reads or draws {unused!r}: the "
            "simulations would not depend on the given values. Check the variable names.")


def _stack(key, draws, who):
    try:
        arr = np.stack([np.asarray(d) for d in draws])
    except ValueError:
        first = np.shape(draws[0])
        other = next((i for i, d in enumerate(draws) if np.shape(d) != first), None)
        if other is None:
            raise
        raise SimulatorError(
            f"Variable {key!r} from {who!r} has different shapes within one batch: draw 0 "
            f"has {first}, draw {other} has {np.shape(draws[other])}. Draw size variables "
            "such as N once per batch with meta_fn."
        ) from None
    return as_rows(arr, key)


class SequentialSimulator(Simulator):
    """Single-draw functions (and batched simulators) called in order.

    See :func:`~skabi.make_simulator`.

    Parameters
    ----------
    functions : list of callable or Simulator
        Called in order. A callable is called once per draw with the arguments it names
        (matched against everything drawn so far, the meta variables and ``rng``) and
        returns a dict of that draw's variables. A :class:`Simulator` draws the whole
        batch at once.
    meta_fn : callable, optional
        Called once per batch; its variables (e.g. ``N``) are constant within the batch
        and vary between batches.
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the simulator's own stream, used by :meth:`sample` calls without
        ``random_state``.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import SequentialSimulator
    >>> def prior(rng):
    ...     return dict(mu=rng.normal(), sigma=rng.gamma(2.0))
    >>> def likelihood(mu, sigma, N, rng):
    ...     return dict(x=rng.normal(mu, sigma, size=N))
    >>> simulator = SequentialSimulator([prior, likelihood], meta_fn=lambda: dict(N=7))
    >>> batch = simulator.sample(16, random_state=0)
    >>> batch["mu"].shape, batch["x"].shape, batch["N"]
    ((16, 1), (16, 7), 7)
    >>> np.array_equal(batch["x"], simulator.sample(16, random_state=0)["x"])
    True
    """

    def __init__(self, functions, meta_fn=None, random_state=None):
        self.functions = functions
        self.meta_fn = meta_fn
        self.random_state = random_state

    def _reset_calls_if_changed(self, functions):
        """Signatures are slow to read, so each function's :class:`_Call` is cached; the
        cache starts over when ``functions`` or ``meta_fn`` change and is not pickled."""
        key = (tuple(functions), self.meta_fn)
        if self.__dict__.get("_calls_key") != key:
            self._calls, self._calls_key = {}, key

    def _call(self, fn):
        try:
            if fn not in self._calls:
                self._calls[fn] = _call_of(fn)
            return self._calls[fn]
        except TypeError:  # an unhashable callable
            return _call_of(fn)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_calls", None)
        state.pop("_calls_key", None)
        return state

    def _run(self, batch_size, rng, given=None):
        given = given or {}
        used = set()
        functions = self.functions
        if callable(functions) and not isinstance(functions, (list, tuple)):
            functions = [functions]
        self._reset_calls_if_changed(functions)
        meta = {}
        if self.meta_fn is not None:
            call = self._call(self.meta_fn)
            meta = dict(call.checked(self.meta_fn(**call.arguments(given, rng)), where=" (meta_fn)"))
            if given:
                meta = _hold_given(call, meta, given, used)
        batch = {}
        draws = None  # per-draw dicts, made only when a single-draw function needs them
        for fn in functions:
            if isinstance(fn, Simulator):
                call = self._call(fn)
                available = {**given, **meta, **batch}
                out = call.checked(fn.simulate(batch_size, **call.arguments(available, rng)))
                new = _check_batch(out, batch_size, call.name)
                if given:
                    new = _hold_given(call, new, given, used)
                if draws is not None:
                    for i, draw in enumerate(draws):
                        draw.update({k: v[i] for k, v in new.items()})
            elif callable(fn):
                call = self._call(fn)
                if draws is None:
                    fixed = {k: v for k, v in given.items() if k not in batch and k not in meta}
                    draws = [{**{k: (v if np.ndim(v) == 0 else v[i]) for k, v in fixed.items()},
                              **meta, **{k: v[i] for k, v in batch.items()}}
                             for i in range(batch_size)]
                per_draw = [call.checked(fn(**call.arguments(draw, rng))) for draw in draws]
                keys = list(per_draw[0])
                for i, out in enumerate(per_draw):
                    if len(out) != len(keys) or list(out) != keys:
                        raise SimulatorError(
                            f"Function {call.name!r} returned keys {list(out)!r} in draw {i} "
                            f"but {keys!r} in draw 0; it must return the same variables "
                            "every time."
                        )
                new = {k: _stack(k, [out[k] for out in per_draw], call.name) for k in keys}
                if given:
                    new = _hold_given(call, new, given, used)
                for i, (draw, out) in enumerate(zip(draws, per_draw)):
                    draw.update(out)
                    draw.update({k: _like(given[k] if np.ndim(given[k]) == 0 else given[k][i],
                                          out[k]) for k in out if k in given})
            else:
                raise SimulatorError(
                    f"make_simulator expects functions or Simulator instances; got {fn!r}."
                )
            clash = sorted(set(new) & (set(batch) | set(meta)))
            if clash:
                raise SimulatorError(
                    f"{call.name!r} returned {clash!r}, already drawn before it; every "
                    "variable must come from one function."
                )
            batch.update(new)
        if given:
            _check_all_used(given, used, {**batch, **meta}, "make_simulator")
            return {**batch, **meta, **_given_rows(given, {**batch, **meta})}
        return {**batch, **meta}


def make_simulator(functions, meta_fn=None, *, random_state=None):
    """Compose single-draw functions into a batched simulator.

    Parameters
    ----------
    functions : callable, Simulator, or list of them
        Called in order for every draw. Each returns a dict of variables; its arguments
        are matched by name against everything drawn so far (and the meta variables). An
        argument named ``rng`` receives the ``numpy.random.Generator`` of the batch. Scalars
        become a trailing axis of length 1, so ``sigma`` drawn as a float gives ``(B, 1)``.
    meta_fn : callable, optional
        Drawn once per batch (e.g. the number of observations ``N``), so these variables
        are constant within a batch and vary between batches. Returned as given (scalars).
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the simulator's own stream; ``sample(..., random_state=...)`` overrides it
        for one call.

    Returns
    -------
    SequentialSimulator

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import make_simulator
    >>> def prior(rng):
    ...     return dict(beta=rng.normal([2, 0], [3, 1]), sigma=rng.gamma(1, 1))
    >>> def likelihood(beta, sigma, N, rng):
    ...     x = rng.normal(0, 1, size=N)
    ...     return dict(x=x, y=rng.normal(beta[0] + beta[1] * x, sigma))
    >>> def meta(rng):
    ...     return dict(N=int(rng.integers(5, 15)))
    >>> simulator = make_simulator([prior, likelihood], meta_fn=meta)
    >>> sims = simulator.sample(500, random_state=1)
    >>> sims["beta"].shape, sims["sigma"].shape, sims["x"].shape == (500, sims["N"])
    ((500, 2), (500, 1), True)
    """
    if isinstance(functions, (list, tuple)) and not functions:
        raise ValueError("make_simulator needs at least one function; got an empty list.")
    return SequentialSimulator(functions, meta_fn=meta_fn, random_state=random_state)
