"""Read each feature of a flat vector as a token: :class:`AsTokens`."""

from __future__ import annotations

import numpy as np

from ..exceptions import ShapeError
from ._base import Transform, _check_rank

__all__ = ["AsTokens"]


class AsTokens(Transform):
    """Turn a flat vector of ``F`` features into ``F`` tokens that know which feature they are.

    ``(B, F) -> (B, F, 1 + F)``: token ``j`` holds the value of feature ``j`` followed by a
    one-hot code of ``j``. An attention summary network
    (:class:`~skabi.networks.SetTransformer`) then reads the features as a sequence of
    tokens: its linear embedding of a token is the value times a learned vector plus a
    learned embedding of the feature, and its attention learns which features belong
    together. This is the tokenization of tabular transformers (Gorishniy et al. 2021,
    "Revisiting deep learning models for tabular data") and of simulation-based
    inference with one token per variable (Gloeckler et al. 2024, "All-in-one
    simulation-based inference").

    Use it for data given as one flat vector whose features have a structure that a
    plain network on the vector would have to learn from the simulations alone, such as
    several draws laid side by side: on SLCP (four 2-D draws as 8 features, banks of
    10^4 simulations) it lowered the held-out ``-log q`` by 0.56-0.92 nats over three
    seeds against the coupling flow on the flat vector (``benchmarks/README.md``). Where
    the draws are known to be exchangeable, declaring them a set (:class:`AsSet`) is
    better still.

    Put :class:`Standardize` before it, so that each feature is standardized on its own.
    The tokens take ``1 + F`` times the memory of the vector, so the step suits vectors
    of tens of features, not thousands. Volume preserving for the values (log-det 0); the
    inverse keeps the values and drops the codes.

    Parameters
    ----------
    keys : str or list of str
        The flat ``(B, F)`` variables.

    Attributes
    ----------
    keys_ : list of str
    dtypes_ : dict of str to str
    num_features_ : dict of str to int
        ``F`` of each variable, as seen in ``fit``.

    Raises
    ------
    ShapeError
        If a variable is not of rank 2, or has another number of features than in ``fit``
        (saying the shape got and expected).

    Examples
    --------
    >>> import numpy as np
    >>> from skabi.adapters import AsTokens
    >>> batch = {"x": np.array([[0.5, -1.0, 2.0]])}
    >>> step = AsTokens("x")
    >>> z = step.fit_transform(batch)
    >>> z["x"].shape
    (1, 3, 4)
    >>> z["x"][0]
    array([[ 0.5,  1. ,  0. ,  0. ],
           [-1. ,  0. ,  1. ,  0. ],
           [ 2. ,  0. ,  0. ,  1. ]])
    >>> np.array_equal(step.inverse_transform(z)["x"], batch["x"])
    True

    In an estimator, the tokens go to a set transformer:

    >>> from skabi import AmortizedPosterior, make_adapter
    >>> from skabi.adapters import Rename, Standardize
    >>> from skabi.networks import SetTransformer
    >>> adapter = make_adapter(Standardize(["x"]), AsTokens("x"),
    ...                        Rename("theta", "inference_variables"),
    ...                        Rename("x", "summary_variables"))
    >>> est = AmortizedPosterior(adapter=adapter,
    ...                          summary_network=SetTransformer(summary_dim=32, num_blocks=3))
    """

    _parameter_constraints = {"keys": [str, list, tuple]}

    def __init__(self, keys):
        self.keys = keys

    def _check_inputs(self, data, keys):
        for k in keys:
            x = data[k]
            _check_rank(self._owner, k, x, (2,), "(B, F)")
            expected = getattr(self, "num_features_", {}).get(k)
            if expected is not None and np.shape(x)[1] != expected:
                raise ShapeError(
                    f"{self._owner} expects {k!r} of shape (B, {expected}), the {expected} "
                    f"features seen in fit; got shape {np.shape(x)}.")

    def _fit_present(self, data, keys):
        for k in keys:
            _check_rank(self._owner, k, data[k], (2,), "(B, F)")
        self.num_features_ = {k: int(np.shape(data[k])[1]) for k in keys}

    def _forward(self, key, x):
        x = np.asarray(x)
        n, f = x.shape
        codes = np.broadcast_to(np.eye(f, dtype=x.dtype), (n, f, f))
        return np.concatenate([x[:, :, None], codes], axis=2)

    def _inverse(self, key, z):
        return z[..., 0]
