"""One row per observation of an exchangeable dataset: :class:`AsObservations`."""

from __future__ import annotations

import numpy as np

from ..bank import batch_size_of, is_ragged
from ..exceptions import ShapeError
from ._base import Transform

__all__ = ["AsObservations", "observation_counts"]


def observation_counts(keys, data):
    """Observations per dataset of the variables ``keys`` present in ``data`` (an int
    array of shape ``(B,)``), or None when none of them is present.

    Raises ``ShapeError`` when two of them disagree, naming both.
    """
    counts, first = None, None
    for k in keys:
        if k not in data:
            continue
        v = data[k]
        if is_ragged(v):
            this = np.array([np.shape(p)[0] for p in v])
        else:
            shape = np.shape(v)
            if len(shape) < 2:
                raise ShapeError(
                    f"AsObservations expects {k!r} of shape (B, N, ...): N observations of "
                    f"each of B datasets; got shape {shape}.")
            this = np.full(shape[0], shape[1])
        if counts is not None and not np.array_equal(counts, this):
            raise ShapeError(
                f"AsObservations: {k!r} and {first!r} differ in their numbers of observations "
                f"per dataset ({this[:5].tolist()} vs {counts[:5].tolist()}); the observations "
                "of one dataset must be split together.")
        counts, first = this, k
    return counts


class AsObservations(Transform):
    """Split every dataset into its observations: one row per observation.

    The variables in ``keys`` hold ``N`` exchangeable observations per dataset,
    ``(B, N, ...)`` (or a list of ``B`` arrays ``(N_i, ...)`` when the datasets differ in
    size); they become ``(sum N_i, F)``, one row per observation (a scalar observation,
    ``(B, N)``, gains a feature axis of length 1, as with :class:`AsSet`). Every other variable
    with a batch axis (the parameters, context) is repeated for each observation of its
    dataset; batch scalars (``N``) stay as they are. An
    :class:`~skabi.AmortizedLikelihood` with this step first learns the density of ONE
    observation given the parameters; the density of a dataset is the sum over its
    observations.

    It must be the first step (the rows it makes are what the later steps see). Its
    inverse is the identity: the rows of observation variables come back as rows;
    :class:`~skabi.AmortizedLikelihood` groups them into datasets again. Where only some
    of ``keys`` are present (covariates without the modelled variable, at sample time),
    those are split.

    Parameters
    ----------
    keys : str or list of str
        The per-observation variables.

    Attributes
    ----------
    keys_ : list of str
    dtypes_ : dict of str to str
    expanded_ : dict of str to bool
        Whether a variable gained a feature axis (the inverse removes it).

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters import AsObservations
    >>> batch = {"x": np.arange(6.0).reshape(2, 3), "mu": np.array([[0.0], [1.0]]), "N": 3}
    >>> rows = AsObservations("x").fit_transform(batch)
    >>> rows["x"][:, 0].tolist(), rows["mu"][:, 0].tolist(), rows["N"]
    ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 0.0, 0.0, 1.0, 1.0, 1.0], 3)
    """

    _parameter_constraints = {"keys": [str, list, tuple]}
    _ragged = True
    _lenient = True
    _new_rows = True   # the rows after this step are observations, not datasets

    def __init__(self, keys):
        self.keys = keys

    def _check_inputs(self, data, keys):
        observation_counts(keys, data)

    def _log_det_jac_present(self, data, keys):
        total = int(observation_counts(keys, data).sum())
        return {k: np.zeros(total) for k in keys}   # a relabelling: volume preserving

    def _fit_present(self, data, keys):
        self.expanded_ = {k: bool(np.ndim(data[k][0]) == 1 if is_ragged(data[k])
                                  else np.ndim(data[k]) == 2) for k in keys}

    def _user_rows(self, data):
        """The user's variables after this step, one row per observation (for the
        adapter's record of what ``inverse_transform`` returns)."""
        return {k: (np.asarray(v)[..., 0] if self.expanded_.get(k) else v)
                for k, v in data.items()}

    def _transform_present(self, data, keys):
        counts = observation_counts(keys, data)
        n = len(counts)
        for k, v in list(data.items()):
            if k in keys:
                rows = (np.concatenate([np.asarray(p) for p in v]) if is_ragged(v)
                        else np.asarray(v).reshape(-1, *np.shape(v)[2:]))
                data[k] = rows[:, None] if rows.ndim == 1 else rows
            elif batch_size_of(v) is None:
                continue   # a batch scalar (meta) stays
            elif is_ragged(v):
                raise ShapeError(
                    f"AsObservations: {k!r} holds datasets of different sizes but is not one "
                    f"of the observation variables {list(keys)!r}; add it to keys (or drop it).")
            elif batch_size_of(v) != n:
                raise ShapeError(
                    f"AsObservations: {k!r} has {batch_size_of(v)} rows but the observation "
                    f"variables {list(keys)!r} hold {n} datasets.")
            else:
                data[k] = np.repeat(np.asarray(v), counts, axis=0)
        return data

    def _inverse_present(self, data, keys):
        for k in keys:
            if self.expanded_.get(k):
                data[k] = np.asarray(data[k])[..., 0]
        return data
