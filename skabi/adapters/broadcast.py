"""Repeat batch-constant meta variables over the batch: :class:`Broadcast`."""

from __future__ import annotations

import numpy as np

from ..bank import batch_size_of
from ..exceptions import ShapeError
from ._base import Transform

__all__ = ["Broadcast"]


class Broadcast(Transform):
    """Repeat scalar (batch-constant) variables along the batch axis: ``() -> (B, 1)``.

    Meta variables such as a sample size ``N`` are constant within a batch and come as a
    Python number or a shape-``()`` array; one that already holds a value per dataset,
    ``(B, 1)`` (datasets of different sizes), is passed through. The batch size ``B`` is taken from the variable
    ``to``, which must be present whenever the step runs (at sample time too).
    Not invertible.

    Parameters
    ----------
    keys : str or list of str
        The scalar variables to broadcast.
    to : str
        The variable whose leading (batch) axis gives ``B``.

    Attributes
    ----------
    keys_ : list of str
    dtypes_ : dict of str to str

    Raises
    ------
    ShapeError
        If a variable is not a scalar (saying the shape got), or ``to`` has no batch axis.

    Examples
    --------
    The sample size ``N`` of a batch becomes one value per dataset, e.g. to be
    concatenated into ``inference_conditions``:

    >>> import numpy as np
    >>> from skabi.adapters import Broadcast
    >>> batch = {"x": np.zeros((3, 5)), "N": 5}
    >>> out = Broadcast("N", to="x").fit_transform(batch)
    >>> out["N"].shape, out["N"].ravel().tolist()
    ((3, 1), [5, 5, 5])
    """

    invertible = False
    _ragged = True  # reads only the batch size of 'to'
    _parameter_constraints = {"keys": [str, list, tuple], "to": [str]}

    def __init__(self, keys, *, to):
        self.keys = keys
        self.to = to

    def _required_keys(self):
        return [self.to]

    def _check_inputs(self, data, keys):
        n = batch_size_of(data[self.to])
        if n is None:
            raise ShapeError(
                f"Broadcast takes the batch size from {self.to!r}, which has shape "
                f"{np.shape(data[self.to])}; expected (B, ...)."
            )
        for k in keys:
            shape = np.shape(data[k])
            if shape != () and shape != (n, 1):
                raise ShapeError(
                    f"Broadcast expects {k!r} of shape () (a scalar, constant within the "
                    f"batch) or ({n}, 1) (already one value per dataset, as a list of "
                    f"datasets of different sizes gives); got shape {shape}.")

    def _transform_present(self, data, keys):
        n = batch_size_of(data[self.to])
        for k in keys:
            x = np.asarray(data[k])
            data[k] = np.full((n, 1), x, dtype=x.dtype) if x.ndim == 0 else x.copy()
        return data
