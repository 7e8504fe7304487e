"""Torch models with a dense head instead of a density: Bayes estimators and model logits.

Both reuse the approximator's conditions (summary network and standardized inputs), so a
summary network, masks and standardization behave exactly as for posteriors:

* :class:`PointModel` minimises a Bayes risk per estimand (squared error: the posterior
  mean; pinball loss at level tau: the tau-quantile) on the standardized parameters.
* :class:`ClassifierModel` minimises the cross-entropy of model indices (one-hot
  ``inference_variables``): its softmax is the posterior model probability under the
  model prior of the training simulations.
"""

import math
import numbers

import torch

from .model import Approximator, check_networks

__all__ = ["parse_estimands", "PointModel", "ClassifierModel", "build_point_model",
           "build_classifier", "check_head_networks"]


def parse_estimands(estimands):
    """``(labels, levels)`` of the estimands: ``"mean"`` has level NaN (squared error),
    ``"median"`` 0.5 and a number in (0, 1) is that quantile (pinball loss).

    Examples
    --------
    >>> from skabi.training.heads import parse_estimands
    >>> parse_estimands(("mean", 0.05, "median", 0.95))
    (['mean', 'q0.05', 'median', 'q0.95'], [nan, 0.05, 0.5, 0.95])
    """
    if isinstance(estimands, (str, numbers.Real)):
        estimands = (estimands,)
    try:
        items = list(estimands)
    except TypeError:
        items = None
    if not items:
        raise ValueError("estimands must be a non-empty list of 'mean', 'median' or "
                         f"quantile levels in (0, 1); got {estimands!r}.")
    labels, levels = [], []
    for item in items:
        if isinstance(item, str) and item in ("mean", "median"):
            labels.append(item)
            levels.append(math.nan if item == "mean" else 0.5)
        elif isinstance(item, numbers.Real) and not isinstance(item, bool) and 0 < item < 1:
            labels.append(f"q{float(item):g}")
            levels.append(float(item))
        else:
            raise ValueError(f"estimands: {item!r} is neither 'mean', 'median' nor a quantile "
                             "level in (0, 1) (such as 0.05).")
    seen = [lv for lv in levels if not math.isnan(lv)]
    if len(set(seen)) < len(seen) or labels.count("mean") > 1:
        raise ValueError(f"estimands {estimands!r} names an estimand twice ('median' is the "
                         "0.5 quantile).")
    return labels, levels


class PointModel(Approximator):
    """Bayes estimators of ``inference_variables`` given the conditions.

    ``levels`` as from :func:`parse_estimands`; the ``levels`` buffer holds -1 for the mean
    (a saved model holds no NaN). The head maps the conditions to ``len(levels) * dim``
    outputs on the standardized scale; :meth:`estimate` returns them on the scale of
    ``inference_variables``, shape ``(B, n_estimands, dim)``, quantiles of each parameter sorted (so they never cross).
    """

    def __init__(self, head, summary_network, dim, n_conditions, n_features, levels):
        super().__init__(None, summary_network, dim, n_conditions, n_features)
        self.head = head
        levels = [-1.0 if math.isnan(v) else v for v in levels]
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.float32))

    def _raw(self, batch):
        out = self.head(self.conditions(batch))
        return out.reshape(out.shape[0], len(self.levels), self.dim)

    def loss(self, batch):
        z = self._z(batch["inference_variables"])[:, None, :]
        err = z - self._raw(batch)
        tau = self.levels[None, :, None].to(err.dtype)
        pinball = torch.maximum(tau * err, (tau - 1) * err)
        risk = torch.where(tau < 0, err.square(), pinball)
        return risk.sum(dim=(1, 2)).mean()

    def estimate(self, batch):
        out = self._raw(batch) * self.theta_std + self.theta_mean
        quantile = self.levels >= 0
        if int(quantile.sum()) > 1:  # sorting quantile estimates never makes them worse
            order = torch.argsort(self.levels[quantile])
            idx = torch.nonzero(quantile).flatten()
            ranked = out[:, idx[order]].sort(dim=1).values
            out = out.clone()
            out[:, idx[order]] = ranked
        return out


class ClassifierModel(Approximator):
    """Logits of the models given the conditions; the targets (one-hot model indices in
    ``inference_variables``) are not standardized."""

    def __init__(self, head, summary_network, n_models, n_conditions, n_features):
        super().__init__(None, summary_network, n_models, n_conditions, n_features)
        self.head = head

    @torch.no_grad()
    def set_standardization(self, batch):
        super().set_standardization({k: v for k, v in batch.items()
                                     if k != "inference_variables"})

    def logits(self, batch):
        return self.head(self.conditions(batch))

    def loss(self, batch):
        log_p = torch.log_softmax(self.logits(batch), dim=-1)
        return -(batch["inference_variables"] * log_p).sum(dim=-1).mean()


def _summary(networks, shapes):
    summary = networks.get("summary_network")
    if summary is None:
        return None, 0
    module = summary.build(shapes["summary_variables"])
    return module, int(module.summary_dim)


def build_point_model(networks, shapes, params):
    """A :class:`PointModel` from ``head`` and ``summary_network``, with the estimands of
    ``params["estimands"]``."""
    _, levels = parse_estimands(params["estimands"])
    summary, summary_dim = _summary(networks, shapes)
    n_cond, dim = shapes.get("inference_conditions", 0), shapes["inference_variables"]
    head = networks["head"].build(summary_dim + n_cond, dim * len(levels))
    return PointModel(head, summary, dim, n_cond, shapes.get("summary_variables", 0), levels)


def build_classifier(networks, shapes, params=None):
    """A :class:`ClassifierModel` from ``head`` and ``summary_network``; as many models as
    ``inference_variables`` has columns."""
    summary, summary_dim = _summary(networks, shapes)
    n_cond, n_models = shapes.get("inference_conditions", 0), shapes["inference_variables"]
    head = networks["head"].build(summary_dim + n_cond, n_models)
    return ClassifierModel(head, summary, n_models, n_cond, shapes.get("summary_variables", 0))


def check_head_networks(networks, shapes, roles):
    """As :func:`~skabi.training.model.check_networks`, and a head needs data: an adapter
    that routes none into the networks is an error here, not a warning."""
    if "summary_variables" not in shapes and "inference_conditions" not in shapes \
            and "inference_variables" in shapes:
        raise ValueError(
            "The adapter routes no data into the networks: it produces only "
            f"{sorted(r for r in roles if r in shapes)!r}, neither 'summary_variables' nor "
            "'inference_conditions'. Rename or concatenate the data into one of them.")
    check_networks(networks, shapes, roles)
