"""Adapters: map a simulated batch (``dict[str, ndarray]``) to the networks' inputs.

An :class:`Adapter` is a scikit-learn-style pipeline of named transforms; see
:func:`make_adapter`. Role keys: ``inference_variables``, ``inference_conditions``,
``summary_variables``.
"""

from ._base import Transform
from .adapter import ROLE_KEYS, TRANSFORMS, Adapter, make_adapter
from .as_set import AsSet, AsTimeSeries
from .as_tokens import AsTokens
from .broadcast import Broadcast
from .concatenate import Concatenate
from .constrain import Constrain
from .convert_dtype import ConvertDType
from .elementwise import Log, Sqrt
from .observations import AsObservations
from .multilevel import Levels, MultilevelAdapter, adapter_from_config
from .one_hot import OneHot
from .rename import Rename
from .select import Drop, Keep
from .standardize import Standardize

__all__ = [
    "Adapter",
    "make_adapter",
    "ROLE_KEYS",
    "TRANSFORMS",
    "Transform",
    "Broadcast",
    "AsSet",
    "AsTimeSeries",
    "AsTokens",
    "AsObservations",
    "Constrain",
    "Standardize",
    "Sqrt",
    "Log",
    "OneHot",
    "Concatenate",
    "Rename",
    "ConvertDType",
    "Keep",
    "Drop",
    "MultilevelAdapter",
    "Levels",
    "adapter_from_config",
]
