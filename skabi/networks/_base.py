"""Base classes of the network hyperparameter holders and the modules they build.

A *holder* (:class:`InferenceNetwork`, :class:`SummaryNetwork`) is a scikit-learn
``BaseEstimator`` that only stores hyperparameters; ``build`` validates them and returns
a fresh ``torch.nn.Module`` (float32, on CPU). The modules know tensors only.
"""

from __future__ import annotations

import difflib
import math
from abc import abstractmethod
from numbers import Integral

import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import (Interval, InvalidParameterError, StrOptions,
                                             make_constraint, validate_parameter_constraints)
from torch import Tensor, nn

from .._validation import NumberInterval
from ..exceptions import ShapeError

__all__ = [
    "InferenceNetwork",
    "SummaryNetwork",
    "InferenceModule",
    "SummaryModule",
    "NumberInterval",
    "block_rows",
]

_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------------------
# hyperparameter validation (scikit-learn's ``_parameter_constraints``, used by ``build``)
# --------------------------------------------------------------------------------------
def _validated(constraints: dict, params: dict, caller_name: str) -> dict:
    """Check ``params`` against ``constraints``; return them as plain Python values.

    Each parameter goes through scikit-learn's ``validate_parameter_constraints``, which
    raises its ``InvalidParameterError`` (a ``ValueError``) naming the parameter,
    ``caller_name``, the value got and what is expected; a near miss of a string option
    adds a "Did you mean" hint. Values satisfying an integer (real) interval come back as
    ``int`` (``float``) and booleans as ``bool``, so that numpy scalars from a parameter
    grid reach torch as Python numbers.
    """
    out = dict(params)
    for name, value in params.items():
        if name not in constraints:
            continue
        try:
            validate_parameter_constraints({name: constraints[name]}, {name: value},
                                           caller_name=caller_name)
        except InvalidParameterError as err:
            options = [o for c in constraints[name] if isinstance(c, StrOptions)
                       for o in sorted(c.options)]
            close = difflib.get_close_matches(str(value), options, n=1)
            if not close:
                raise
            raise InvalidParameterError(f"{err} Did you mean {close[0]!r}?") from None
        for raw in constraints[name]:
            constraint = make_constraint(raw)
            if constraint.is_satisfied_by(value):
                if isinstance(constraint, Interval):
                    out[name] = int(value) if constraint.type is Integral else float(value)
                elif isinstance(raw, str) and raw == "boolean":
                    out[name] = bool(value)
                break
    return out


_BUILD_ARGUMENTS = {
    "dim": [NumberInterval(Integral, 1, None, closed="left")],
    "condition_dim": [NumberInterval(Integral, 0, None, closed="left")],
    "feature_dim": [NumberInterval(Integral, 1, None, closed="left")],
}


class _Holder(BaseEstimator):
    """Validation shared by the holders: ``_parameter_constraints`` checked in ``build``."""

    #: scikit-learn constraints of every ``__init__`` parameter (see ``_validate_params``).
    _parameter_constraints: dict = {}

    def _validate_params(self) -> dict:
        """Validate the hyperparameters against ``_parameter_constraints``; return them.

        Call it at the top of ``build``: the holder stores anything, and ``build`` refuses
        what it cannot build from.

        Returns
        -------
        dict
            ``get_params(deep=False)``, numbers as Python ``int``/``float``.

        Raises
        ------
        ValueError
            scikit-learn's ``InvalidParameterError``, naming the parameter, the class, the
            value got and what is expected.
        """
        return _validated(self._parameter_constraints, self.get_params(deep=False),
                          type(self).__name__)

    def fit_candidates(self, *, bank: bool) -> list:
        """The holders a fit trains, to keep the one with the lowest validation loss.

        ``bank``: whether the fit can choose (a bank in memory with validation simulations
        and early stopping, in one process, without a checkpoint). The default: this holder
        alone. A holder that leaves a hyperparameter to the fit (``"auto"``) returns
        copies with it set.
        """
        return [self]

    def _validate_build_arguments(self, **arguments) -> tuple:
        """Validate ``dim``, ``condition_dim`` or ``feature_dim`` of ``build``; return them.

        Raises
        ------
        ValueError
            scikit-learn's ``InvalidParameterError``, naming the argument and
            ``<class>.build``.
        """
        checked = _validated({k: _BUILD_ARGUMENTS[k] for k in arguments}, arguments,
                             f"{type(self).__name__}.build")
        return tuple(checked.values())


# --------------------------------------------------------------------------------------
# holders
# --------------------------------------------------------------------------------------
class InferenceNetwork(_Holder):
    """Base class of the inference-network hyperparameter holders.

    Subclasses store their keyword hyperparameters in ``__init__`` (nothing else), list
    their scikit-learn constraints in ``_parameter_constraints`` and implement
    :meth:`build`, which starts with ``self._validate_params()``.

    Examples
    --------
    >>> from skabi.networks import CouplingFlow, InferenceNetwork
    >>> isinstance(CouplingFlow(), InferenceNetwork)
    True
    """

    @abstractmethod
    def build(self, dim: int, condition_dim: int) -> InferenceModule:
        """Validate the hyperparameters and return a fresh float32 module on CPU.

        Parameters
        ----------
        dim : int
            Number of inference variables (>= 1).
        condition_dim : int
            Number of conditions (>= 0; 0 means unconditional).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement build.")


class SummaryNetwork(_Holder):
    """Base class of the summary-network hyperparameter holders.

    Subclasses store their keyword hyperparameters in ``__init__`` (nothing else), list
    their scikit-learn constraints in ``_parameter_constraints`` (extending this class's,
    which holds ``summary_dim``) and implement :meth:`build`, which starts with
    ``self._validate_params()``. Every summary network has a ``summary_dim`` parameter.

    Examples
    --------
    >>> from skabi.networks import DeepSet, SummaryNetwork
    >>> isinstance(DeepSet(summary_dim=4), SummaryNetwork)
    True
    """

    _parameter_constraints: dict = {
        "summary_dim": [NumberInterval(Integral, 1, None, closed="left")],
    }

    @abstractmethod
    def build(self, feature_dim: int) -> SummaryModule:
        """Validate the hyperparameters and return a fresh float32 module on CPU.

        Parameters
        ----------
        feature_dim : int
            Number of features ``F`` of each element of the input ``(B, N, F)``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement build.")


# --------------------------------------------------------------------------------------
# modules
# --------------------------------------------------------------------------------------
def block_rows(device: torch.device | str, n_rows: int) -> int:
    """Rows per block when ``n_rows`` draws go through a network block by block.

    On CPU: 1024 rows per torch thread, a cache-blocking size (the hidden activations of
    a block stay in cache, 2-3x faster than one huge batch), not a memory bound.
    Elsewhere: all ``n_rows`` at once.

    Parameters
    ----------
    device : torch.device or str
        Where the rows are.
    n_rows : int
        Number of rows to process.

    Returns
    -------
    int
        Block size, at least 1.

    Examples
    --------
    >>> import torch
    >>> from skabi.networks._base import block_rows
    >>> block_rows("cpu", 10) == 1024 * max(1, torch.get_num_threads())
    True
    >>> block_rows(torch.device("meta"), 10)
    10
    """
    if torch.device(device).type == "cpu":
        return 1024 * max(1, torch.get_num_threads())
    return max(1, int(n_rows))


class InferenceModule(nn.Module):
    """A conditional density ``q(theta | condition)`` on ``R^dim``.

    Subclasses implement :meth:`log_prob`, :meth:`sample` and :meth:`loss`.

    Attributes
    ----------
    dim : int
        Number of inference variables.
    condition_dim : int
        Number of conditions (0 for an unconditional density).
    cheap_log_prob : bool
        Class attribute: True when log densities of draws cost about as much as drawing
        them (what ``log_q="auto"`` of the estimator asks the fitted module).

    Examples
    --------
    >>> import torch
    >>> from skabi.networks import CouplingFlow, InferenceModule
    >>> net = CouplingFlow(depth=2).build(dim=3, condition_dim=0)
    >>> isinstance(net, InferenceModule), net.dim, net.condition_dim
    (True, 3, 0)
    >>> net.sample(5).shape
    torch.Size([1, 5, 3])
    """

    #: log densities of draws cost about as much as drawing them
    cheap_log_prob: bool = True

    def __init__(self, dim: int, condition_dim: int):
        super().__init__()
        self.dim = dim
        self.condition_dim = condition_dim

    @abstractmethod
    def log_prob(self, theta: Tensor, condition: Tensor | None = None) -> Tensor:
        """Log density of ``theta`` (B, dim) given ``condition`` (B, condition_dim): (B,)."""

    @abstractmethod
    def sample(self, num_samples: int, condition: Tensor | None = None, *,
               generator: torch.Generator | None = None) -> Tensor:
        """Draws of shape (B, num_samples, dim); (1, num_samples, dim) without condition."""

    @abstractmethod
    def loss(self, theta: Tensor, condition: Tensor | None = None) -> Tensor:
        """Scalar training loss on a batch."""

    # helpers -------------------------------------------------------------------------
    def _reference(self) -> Tensor:
        return next(self.parameters())

    def _check_theta(self, theta: Tensor, name: str = "theta") -> None:
        if theta.dim() < 1 or theta.shape[-1] != self.dim:
            raise ShapeError(
                f"{name!r} has shape {tuple(theta.shape)}; {type(self).__name__} expects "
                f"(batch, {self.dim})."
            )

    def _check_condition(self, condition: Tensor | None, batch: int | None) -> Tensor | None:
        """Validate ``condition``; return it, or None when there is none."""
        if condition is None:
            if self.condition_dim > 0:
                raise ShapeError(
                    f"{type(self).__name__} was built with condition_dim={self.condition_dim} "
                    "and needs a 'condition' tensor; got None."
                )
            return None
        if condition.dim() != 2 or condition.shape[-1] != self.condition_dim or (
                batch is not None and condition.shape[0] != batch):
            want = "batch" if batch is None else str(batch)
            raise ShapeError(
                f"'condition' has shape {tuple(condition.shape)}; {type(self).__name__} "
                f"expects ({want}, {self.condition_dim})."
            )
        return condition if self.condition_dim > 0 else None

    @staticmethod
    def _chunked(fn, z: Tensor, condition: Tensor | None, rows: int | None = None) -> Tensor:
        """Apply ``fn(z_rows, condition_rows)`` to draws ``z`` (B, S, dim) block by block.

        The B * S rows are processed in blocks of ``rows`` (default :func:`block_rows`:
        1024 per torch thread on CPU, so that the hidden activations stay in cache; all at
        once elsewhere). In one call the condition is broadcast as (B, 1, condition_dim).
        """
        b, s, d = z.shape
        if rows is None:
            rows = block_rows(z.device, b * s)
        if b * s <= rows:
            return fn(z, None if condition is None else condition[:, None])
        zf = z.reshape(b * s, d)
        cf = None if condition is None else condition.repeat_interleave(s, dim=0)
        out = torch.empty_like(zf)
        for i in range(0, b * s, rows):
            out[i:i + rows] = fn(zf[i:i + rows], None if cf is None else cf[i:i + rows])
        return out.reshape(b, s, d)

    @staticmethod
    def _normal_log_prob(z: Tensor) -> Tensor:
        return -0.5 * (z.square().sum(-1) + z.shape[-1] * _LOG_2PI)


class SummaryModule(nn.Module):
    """A learned summary statistic ``(B, N, F) -> (B, summary_dim)``.

    Attributes
    ----------
    feature_dim : int
        Number of input features ``F``.
    summary_dim : int
        Size of the summary vector.

    Examples
    --------
    >>> import torch
    >>> from skabi.networks import DeepSet, SummaryModule
    >>> net = DeepSet(summary_dim=3).build(feature_dim=2)
    >>> isinstance(net, SummaryModule), net.summary_dim
    (True, 3)
    >>> x, mask = torch.randn(4, 10, 2), torch.ones(4, 10, dtype=torch.bool)
    >>> net(x, mask).shape
    torch.Size([4, 3])
    """

    def __init__(self, feature_dim: int, summary_dim: int):
        super().__init__()
        self.feature_dim = feature_dim
        self.summary_dim = summary_dim

    def _check_input(self, x: Tensor, mask: Tensor | None) -> Tensor | None:
        """Validate ``x`` and ``mask``; return the mask as bool (or None)."""
        if x.dim() != 3 or x.shape[-1] != self.feature_dim:
            raise ShapeError(
                f"'x' has shape {tuple(x.shape)}; {type(self).__name__} expects "
                f"(batch, n, {self.feature_dim})."
            )
        if mask is None:
            return None
        if tuple(mask.shape) != tuple(x.shape[:2]):
            raise ShapeError(
                f"'mask' has shape {tuple(mask.shape)}; expected {tuple(x.shape[:2])} "
                "(batch, n) to match 'x'."
            )
        return mask if mask.dtype == torch.bool else mask.bool()
