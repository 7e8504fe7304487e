"""Model selection with a simulator: scikit-learn's searches, fresh simulations to train on.

:class:`HeldOutSimulations` is a scikit-learn cross-validation splitter for a simulator.
It draws one fixed held-out set of simulations (once per splitter and simulator) and
gives scikit-learn one split: "train on fresh simulations" / "score on the held-out set".
Every candidate of a search then trains online, as ``fit(simulator)`` does, and is scored
by ``score`` (the mean log density of the held-out parameters) on the same simulations,
so scores compare. The search itself is scikit-learn's own (``GridSearchCV``,
``RandomizedSearchCV``, ``HalvingGridSearchCV`` with ``resource="epochs"``), ``n_jobs``
included: a splitter rather than a search wrapper, so that every search scikit-learn has,
and every one it will have, works unchanged.

For banks (fixed simulations) no splitter is needed: a :class:`~skabi.bank.Batch` (what
``simulator.sample`` returns), a :class:`~skabi.bank.SimulationBank` or arrays split with
any scikit-learn splitter.
"""

import numbers

import numpy as np
from sklearn.model_selection import BaseCrossValidator

from ._validation import check_positive_int

__all__ = ["HeldOutSimulations"]

_HELD_OUT_STREAM = 0x48454C44  # keeps the held-out stream apart from int-seeded training


class HeldOutSimulations(BaseCrossValidator):
    """One split of a simulator: train on fresh simulations, score on a fixed held-out set.

    Parameters
    ----------
    n_test : int, default=500
        Held-out simulations, drawn once.
    chunk_size : int or None, default=64
        Drawn in batches of this many, each with its own meta variables (``N``), as in
        training, so the held-out set covers the sizes training sees (datasets of
        different sizes are padded and masked). ``None`` draws them as one batch.
    random_state : int, default=0
        Seed of the held-out set: the same seed gives the same set, whatever the
        simulator's own stream (and other simulations than an estimator with the same
        ``random_state`` trains on).

    Notes
    -----
    The held-out set is drawn whenever the search calls :meth:`split` and kept on the
    simulator object (private attribute ``_held_out``), where scikit-learn's indexing of
    the simulator (row 1) finds it, also in joblib worker processes. Only this splitter
    can split a simulator: scikit-learn's default (``cv=None``, 5 folds) stops with
    "Cannot have number of splits n_splits=5 greater than the number of samples:
    n_samples=2".

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skabi import AmortizedPosterior, make_adapter, make_simulator
    >>> from skabi.adapters import Rename
    >>> from skabi.model_selection import HeldOutSimulations
    >>> from skabi.networks import CouplingFlow
    >>> simulator = make_simulator(lambda rng: dict(theta=rng.normal(size=2),
    ...                                             x=rng.normal(size=3)))
    >>> est = AmortizedPosterior(
    ...     adapter=make_adapter(Rename("theta", "inference_variables"),
    ...                          Rename("x", "inference_conditions")),
    ...     inference_network=CouplingFlow(), epochs=1, batches_per_epoch=5,
    ...     pilot_size=32, random_state=0)
    >>> search = GridSearchCV(est, {"inference_network__depth": [1, 2]},
    ...                       cv=HeldOutSimulations(100))
    >>> search.fit(simulator).best_params_ in [{"inference_network__depth": d} for d in (1, 2)]
    True
    """

    def __init__(self, n_test=500, *, chunk_size=64, random_state=0):
        self.n_test = n_test
        self.chunk_size = chunk_size
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None):
        """One split."""
        return 1

    def split(self, X, y=None, groups=None):
        """Draw the held-out set of simulator ``X`` (once) and yield ``([0], [1])``."""
        n_test = check_positive_int("n_test", self.n_test)
        chunk = None if self.chunk_size is None else check_positive_int("chunk_size",
                                                                        self.chunk_size)
        if not (isinstance(self.random_state, numbers.Integral)
                and not isinstance(self.random_state, bool)):
            raise ValueError("HeldOutSimulations needs an int random_state, so that every "
                             f"candidate is scored on the same simulations; got "
                             f"{self.random_state!r}.")
        if not callable(getattr(X, "sample", None)) or getattr(X, "shape", None) != (2,):
            raise TypeError(
                "HeldOutSimulations splits a simulator (a skabi.Simulator, e.g. from "
                f"make_simulator); got {type(X).__name__}. Banks of fixed simulations split "
                "with any scikit-learn splitter (cv=5).")
        # drawn anew on every split (the same set for a given seed and simulator), from a
        # stream of its own: the same seed as the estimator's draws other simulations
        rng = np.random.default_rng([int(self.random_state), _HELD_OUT_STREAM])
        X._held_out = X.sample(n_test, random_state=rng, chunk_size=chunk or n_test)
        yield np.array([0]), np.array([1])

    def _iter_test_indices(self, X=None, y=None, groups=None):  # pragma: no cover - split
        yield [1]
