"""Simulations of several models at once, labelled by model: :class:`ModelMixture` and
:func:`simulate_models` (the training data of model comparison)."""

import numpy as np

from .bank import concatenate_batches
from .inputs import is_simulator
from .simulators import Simulator

__all__ = ["MODEL_INDEX", "ModelMixture", "simulate_models", "prior_probabilities"]

#: The variable holding the index of the model that simulated a row (in ``classes_``).
MODEL_INDEX = "model_index"


def prior_probabilities(model_prior, names):
    """Prior model probabilities in the order of ``names`` (uniform for None or
    ``"uniform"``)."""
    k = len(names)
    if isinstance(model_prior, str):
        if model_prior != "uniform":
            raise ValueError(f"model_prior={model_prior!r} is not a prior over models; "
                             "expected 'uniform', None (also uniform), a dict model -> "
                             f"probability or {k} probabilities (one per model "
                             f"{[str(n) for n in names]!r}).")
        model_prior = None
    if model_prior is None:
        return np.full(k, 1.0 / k)
    if isinstance(model_prior, dict):
        unknown = sorted(set(map(str, model_prior)) - set(map(str, names)))
        if unknown or len(model_prior) != k:
            raise ValueError(f"model_prior must give a probability to each model {list(names)!r}; "
                             f"got keys {list(model_prior)!r}.")
        lookup = {str(key): v for key, v in model_prior.items()}
        p = np.array([lookup[str(n)] for n in names], dtype=float)
    else:
        p = np.asarray(model_prior, dtype=float).ravel()
    if p.shape != (k,) or not np.all(np.isfinite(p)) or np.any(p <= 0) \
            or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"model_prior must hold {k} positive probabilities summing to 1 "
                         f"(one per model {list(names)!r}); got {model_prior!r}.")
    return p


def _named(simulators):
    """``{name: simulator}`` sorted by name from a dict or a list (names 0, 1, ...)."""
    if isinstance(simulators, dict):
        items = list(simulators.items())
    elif isinstance(simulators, (list, tuple)):
        items = list(enumerate(simulators))
    else:
        raise TypeError("Pass the models as a dict name -> simulator or a list of simulators; "
                        f"got {type(simulators).__name__}.")
    if len(items) < 2:
        raise ValueError(f"Model comparison needs at least two models; got {len(items)}.")
    bad = [name for name, sim in items if not is_simulator(sim)]
    if bad:
        raise TypeError(f"Models {bad!r} are not simulators (objects with "
                        "sample(batch_size, random_state=...)).")
    try:
        items.sort(key=lambda item: item[0])
    except TypeError:
        raise TypeError("Model names must be all strings or all numbers; got "
                        f"{[name for name, _ in items]!r}.") from None
    return dict(items)


class ModelMixture(Simulator):
    """Simulations from several models: each simulation comes from a model drawn from the
    model prior, and ``model_index`` says which (its position in the sorted names).

    Only the variables every model simulates are kept (the data and batch variables such
    as ``N``); parameters of one model alone are dropped. Where the models draw ``N``
    separately, a batch holds datasets of different sizes (padded and masked by
    ``AsSet``).

    Parameters
    ----------
    simulators : dict of name to simulator, or list of simulators
    model_prior : dict, array-like or "uniform", optional
        Probabilities of the models (uniform by default and for ``"uniform"``).

    Attributes
    ----------
    names : list
        The model names, sorted; ``model_index`` indexes them.

    Examples
    --------
    >>> import numpy as np
    >>> from skabi import make_simulator
    >>> from skabi.model_comparison import ModelMixture
    >>> m0 = make_simulator(lambda rng: dict(x=rng.normal(size=5)))
    >>> m1 = make_simulator([lambda rng: dict(mu=rng.normal()),
    ...                      lambda mu, rng: dict(x=mu + rng.normal(size=5))])
    >>> batch = ModelMixture({"zero": m0, "free": m1}).sample(6, random_state=0)
    >>> sorted(batch), batch["x"].shape
    (['model_index', 'x'], (6, 5))
    """

    def __init__(self, simulators, model_prior=None):
        self.simulators = _named(simulators)
        self.names = list(self.simulators)
        self.model_prior = model_prior
        self.probabilities = prior_probabilities(model_prior, self.names)
        self._keys = None

    def _common_keys(self):
        if self._keys is None:  # one probe simulation per model, on a stream of its own
            probe = np.random.default_rng(0)
            keys = [set(sim.sample(1, random_state=probe)) for sim in self.simulators.values()]
            common = set.intersection(*keys)
            if MODEL_INDEX in set.union(*keys):
                raise ValueError(f"A model simulates a variable named {MODEL_INDEX!r}, which "
                                 "model comparison uses for the model label; rename it.")
            if not common:
                raise ValueError("The models simulate no variable in common; model comparison "
                                 "needs the same data variables from every model.")
            self._keys = sorted(common)
        return self._keys

    def _run(self, batch_size, rng):
        keys = self._common_keys()
        counts = rng.multinomial(batch_size, self.probabilities)
        parts = []
        for k, sim in enumerate(self.simulators.values()):
            if counts[k]:
                batch = sim.sample(int(counts[k]), random_state=rng)
                part = {key: batch[key] for key in keys}
                part[MODEL_INDEX] = np.full(int(counts[k]), k)
                parts.append(part)
        return concatenate_batches(parts) if len(parts) > 1 else parts[0]


def simulate_models(simulators, n, *, model_prior=None, random_state=None, chunk_size=None):
    """A labelled bank for offline training, cross-validation and calibration checks.

    Parameters
    ----------
    simulators : dict of name to simulator, or list of simulators
    n : int
        Simulations in all.
    model_prior : dict, array-like or "uniform", optional
        Probabilities of the models (uniform by default and for ``"uniform"``).
    random_state : None, int or numpy.random.Generator
    chunk_size : int, optional
        Draw in batches of this many (each with its own ``N``), as
        :meth:`skabi.Simulator.sample`.

    Returns
    -------
    X : Batch
        The variables every model simulates, one row per simulation.
    y : ndarray of shape (n,)
        The name of the model of each row.

    Examples
    --------
    >>> from skabi import make_simulator
    >>> from skabi.model_comparison import simulate_models
    >>> m0 = make_simulator(lambda rng: dict(x=rng.normal(size=5)))
    >>> m1 = make_simulator(lambda rng: dict(x=1 + rng.normal(size=5)))
    >>> X, y = simulate_models({"a": m0, "b": m1}, 8, random_state=0)
    >>> X["x"].shape, sorted(set(y.tolist()))
    ((8, 5), ['a', 'b'])
    """
    mixture = ModelMixture(simulators, model_prior)
    batch = mixture.sample(n, random_state=random_state, chunk_size=chunk_size)
    labels = np.asarray(mixture.names)[np.asarray(batch.pop(MODEL_INDEX)).ravel()]
    return batch, labels
