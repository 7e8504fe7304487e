"""Neural networks of skabi: tensors in, tensors out.

Inference networks (conditional densities): :class:`CouplingFlow`, :class:`FlowMatching`,
:class:`DiffusionModel`.
Summary networks (data set -> vector): :class:`DeepSet`, :class:`SetTransformer`,
:class:`TimeSeriesNetwork`. Heads (conditions -> estimates or model logits):
:class:`DenseHead`. Each class is a scikit-learn hyperparameter holder whose
``build`` returns a fresh ``torch.nn.Module``. A network written outside skabi is saved
and loaded by name once registered (:func:`register_network`).
"""

from ._base import InferenceModule, InferenceNetwork, SummaryModule, SummaryNetwork
from .coupling_flow import CouplingFlow
from .deep_set import DeepSet
from .diffusion import DiffusionModel
from .flow_matching import FlowMatching
from .heads import DenseHead
from .set_transformer import SetTransformer
from .registry import register_network
from .time_series import TimeSeriesNetwork

for _cls in (CouplingFlow, FlowMatching, DiffusionModel, DeepSet, SetTransformer,
             TimeSeriesNetwork, DenseHead):
    register_network(_cls)
del _cls

__all__ = [
    "InferenceNetwork",
    "SummaryNetwork",
    "InferenceModule",
    "SummaryModule",
    "CouplingFlow",
    "FlowMatching",
    "DiffusionModel",
    "DeepSet",
    "SetTransformer",
    "TimeSeriesNetwork",
    "DenseHead",
    "register_network",
]
