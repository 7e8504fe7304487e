"""The linear warm-up of a coupling flow fitted to a bank (``CouplingFlow(linear_warmup=)``).

Before the full training of a fresh fit, the flow's first layer (a shift and a log-scale
linear in the conditions) is trained alone: with the rest of the flow at its identity
start, the model is a Gaussian posterior whose mean and log-sd are linear in the data. The
full training then starts from it, and early stopping may keep it
(:func:`~skabi.training.loop.run_epochs` with ``baseline``). The warm-up's epochs come
first in the history, numbered below 0.
"""

import torch

from .loop import make_optimizer, run_epochs, unflatten_parameters

__all__ = ["warm_up", "warmup_flows", "linear_warmup", "main_epochs",
           "train_linear_once_active", "selects"]


def warm_up(state, source, settings, validation, epochs):
    """Before a fit trains ``state.model``: the linear warm-up where it applies (a fresh
    fit, :func:`warmup_flows`), then the linear layers set trainable where they are on.

    Returns the warm-up's history rows (empty when none ran).
    """
    model, rows = state.model, []
    flows = _fresh_fit_flows(state, source, settings)
    if flows:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(state.torch_seed + 2)
            rows = linear_warmup(model, flows, source, settings, validation, epochs)
        source.restart_schedule()   # a round schedule counts the training proper only
    train_linear_once_active(model)
    return rows


def selects(state, source, settings):
    """Whether this fit trains the flow both from the warm-up and from the identity start
    and keeps the one with the lower validation loss (``CouplingFlow(linear_warmup=
    "select")``, where a warm-up applies)."""
    return any(getattr(flow, "linear_warmup", None) == "select"
               for flow in _fresh_fit_flows(state, source, settings))


def _fresh_fit_flows(state, source, settings):
    """The flows :func:`warm_up` trains: those of :func:`warmup_flows`, in a fresh fit only
    (a fit that continues a trained model does not warm up again)."""
    return [] if state.history else warmup_flows(state.model, source, settings)


def _models(model):
    """The approximators of ``model``: itself, or the parts of a joint model."""
    parts = getattr(model, "parts", None)
    return list(parts.values()) if parts is not None else [model]


def warmup_flows(model, source, settings):
    """The flows a fresh fit of ``model`` on ``source`` warms up (linear layer first).

    Only where the warm-up can stop and be kept (early stopping on validation
    simulations), and only for approximators whose conditions are fixed features
    (``fixed_conditions``: no learned summaries, whose random start a linear fit would
    describe).
    """
    if not (settings.early_stopping and settings.validation_sims is not None):
        return []
    flows = []
    for part in _models(model):
        flow = getattr(part, "inference_network", None)
        choice = getattr(flow, "linear_warmup", False)
        if not hasattr(flow, "linear_parameters") or choice is False:
            continue
        if not getattr(part, "fixed_conditions", False):
            continue
        if choice is True or not source.online:
            flows.append(flow)
    return flows


def linear_warmup(model, flows, source, settings, validation, epochs):
    """Train the linear layer of ``flows`` (inference networks of ``model``) alone
    (``CouplingFlow(linear_warmup=...)``).

    The rest of the network stays at its identity start, so the model is a Gaussian
    posterior whose mean and log-sd are linear in the conditions; the flow computes it
    without its couplings. Same optimizer settings, batches and early stopping as the
    training that follows, at most ``epochs`` epochs. Afterwards the layer is switched
    on and trains with the rest.

    Returns its history rows, numbered ``-k .. -1`` (the training proper starts at
    epoch 0; :func:`main_epochs` counts only those). Interrupted with Ctrl-C, it lets the
    interrupt through: the fit fails as a whole and a fitted estimator stays as it was.
    """
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    linear = [p for flow in flows for p in flow.linear_parameters()]
    for p in linear:
        p.requires_grad_(True)
    for flow in flows:
        flow.linear_only = True
    parts = getattr(model, "parts", None)
    if parts is not None:   # a joint model: only the parts that warm up compute a loss
        model.active = {name for name, part in parts.items()
                        if getattr(part, "inference_network", None) in flows}
    try:
        opt, sched = make_optimizer(model, learning_rate=settings.learning_rate,
                                    weight_decay=settings.weight_decay,
                                    lr_schedule=settings.lr_schedule,
                                    total_steps=epochs * source.steps_per_epoch)
        rows, _ = run_epochs(model, opt, sched, source, epochs=epochs,
                             clip_grad_norm=settings.clip_grad_norm, validation=validation,
                             early_stopping=settings.early_stopping,
                             patience=settings.patience,
                             weight_averaging=settings.weight_averaging,
                             keep_on_interrupt=False)   # Ctrl-C here ends the whole fit
    finally:
        if parts is not None:
            model.active = None
        unflatten_parameters(model)
        for flow in flows:
            flow.linear_only = False
        for p in linear:
            p.requires_grad_(False)
        for p in frozen:
            p.requires_grad_(True)
    for flow in flows:
        flow.switch_linear_on()
    return [{**row, "epoch": i - len(rows)} for i, row in enumerate(rows)]


def main_epochs(history):
    """Epochs of the training proper in ``history`` (a linear warm-up's are numbered
    below 0)."""
    return sum(1 for row in history if row.get("epoch", 0) >= 0)


def train_linear_once_active(model):
    """The flow's linear layer trains once a warm-up switched it on (also when a fit
    continues a fitted or checkpointed model), and stays frozen at zero otherwise."""
    for part in _models(model):
        flow = getattr(part, "inference_network", None)
        if hasattr(flow, "linear_parameters"):
            for p in flow.linear_parameters():
                p.requires_grad_(flow.linear_on)
