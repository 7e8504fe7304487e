"""How many rows one pass of a model takes: the chunk policy of the engine.

Everything that pushes many rows through a model (validation batches, log densities,
draws) cuts them into chunks of at most :data:`CHUNK_ELEMENTS` input values
(:func:`chunk_rows`). A module of its own so that :mod:`skabi.training.roles` (validation
batches) and :mod:`skabi.training.inference` (draws) both use it without importing each
other.
"""

import numpy as np

from ..adapters.roles import ALL_ROLES, MASKS

__all__ = ["CHUNK_ELEMENTS", "chunk_rows"]

#: Values of network input (or output) per chunk.
CHUNK_ELEMENTS = 2**20


def chunk_rows(roles, elements_per_row=None):
    """Rows per chunk: ``CHUNK_ELEMENTS`` over the values one row holds (at least 1).

    ``elements_per_row`` defaults to the size of one row of ``roles`` (all roles, masks
    included).

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.training.chunks import chunk_rows
    >>> chunk_rows({"summary_variables": np.zeros((10, 50, 4)),
    ...             "inference_variables": np.zeros((10, 4))})   # 2**20 // 204
    5140
    """
    if elements_per_row is None:
        elements_per_row = sum(int(np.prod(roles[r].shape[1:])) for r in (*ALL_ROLES, *MASKS)
                               if r in roles)
    return max(1, CHUNK_ELEMENTS // max(1, int(elements_per_row)))
