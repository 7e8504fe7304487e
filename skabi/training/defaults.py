"""What the training parameters left at ``"auto"`` become, by the kind of data ``fit`` got.

Online training draws fresh simulations for every step, so it cannot overfit: it runs a
fixed number of steps at a high learning rate that decays to zero. A fixed bank in memory
is seen again every epoch, and a network trained as if online overfits it within a few
epochs (issue 19: on a 10-D linear Gaussian model at 10^4 simulations the held-out loss
was lowest after epoch 4 of 9, the KL divergence to the exact posterior 0.39 nats). For
such a bank ``fit`` holds out a tenth of it, trains at a lower, constant learning rate on
larger batches, averages the weights over the steps (an exponential moving average,
"Polyak averaging") and stops when the averaged weights stop improving on the held-out
simulations, keeping the best ones. ``benchmarks/offline_defaults.py`` measured each of
these choices; ``benchmarks/README.md`` has the figures.

=====================  ==============  ==========================================
parameter              online          bank in memory
=====================  ==============  ==========================================
``epochs``             50              enough for 8000 steps (100 to 500
                                       epochs) with early stopping, else 50; a
                                       coupling flow's linear warm-up at most 4000
                                       steps (20 to 500 epochs)
``batch_size``         64              200, at most a tenth of the training rows
``learning_rate``      2e-3            5e-4
``lr_schedule``        ``"cosine"``    ``"constant"``
``validation_sims``    None            0.1 (a tenth of the bank, held out)
``early_stopping``     False           True
``patience``           5               20
``weight_averaging``   None            0.99
=====================  ==============  ==========================================

The bank column is the posterior's and the likelihood's (and the joint's). An estimator
may hand the engine its own (``AmortizedEstimator._bank_defaults``): the point estimator,
the model comparison and the multilevel posterior use :data:`BANK_ONLINE`, the online
values, because the column above made some of their problems worse
(``benchmarks/family_defaults.py``).

A bank streamed from disk (too large for memory) takes the bank column except for the
validation split and early stopping, which stay off unless given. Any parameter set to a
value other than ``"auto"`` is used as given. With a bank, a coupling flow is also trained
twice, from a linear warm-up and from its identity start, and keeps the training that
validates better (``CouplingFlow(linear_warmup="select")``,
:func:`skabi.training.warmup.linear_warmup`); and a spline flow with
``subnet_depth="auto"`` is trained with two and with four hidden layers per subnet, the
better kept likewise (:func:`skabi.training.fitting.network_choices`; not by the joint
estimator, which trains two).
"""

from __future__ import annotations

import dataclasses

AUTO = "auto"

#: The values of the ``"auto"`` parameters, online and for a bank.
ONLINE = dict(epochs=50, batch_size=64, learning_rate=2e-3, lr_schedule="cosine",
              validation_sims=None, early_stopping=False, patience=5, weight_averaging=None)
BANK = dict(epochs=None, batch_size=200, learning_rate=5e-4, lr_schedule="constant",
            validation_sims=0.1, early_stopping=True, patience=20, weight_averaging=0.99)

#: The bank column of the point estimator, the model comparison and the multilevel
#: posterior: the online values. On banks of 10^3 and 10^4 simulations
#: (``benchmarks/family_defaults.py``, issue 30) :data:`BANK` made some problem worse for
#: each of them (point: R^2 -0.002 on two moons and the Gaussian mixture at 10^4; model
#: comparison: log loss +0.02 to +0.04 nats on normal against Laplace noise at 10^3;
#: multilevel: -0.18 to -0.35 nats at 10^4); for the first two, so did holding out a
#: tenth and keeping the best epoch with the online values. Their ``"auto"`` stays what
#: they trained with.
BANK_ONLINE = dict(ONLINE)

#: With a bank and early stopping, ``epochs="auto"`` runs enough whole epochs for this
#: many optimizer steps, within :data:`BANK_EPOCHS` (so more on banks of over ~18,000
#: simulations). 4000 until issue 28: on the eight problems of
#: ``benchmarks/reference_posteriors.py`` at 10^4 simulations, two moons, the Gaussian
#: mixture and SIR were still improving when 4000 steps ended them; 8000 lowered their
#: held-out -log q on every seed (two moons 0.05-0.07 nats, the mixture 0.006-0.025, SIR
#: 0.013-0.029), AR(1) moved by at most 0.003 either way, and the cells that early stopping
#: ends first train as before. At 10^3 (500 epochs instead of 400) early stopping ended
#: every measured cell before 400 (``benchmarks/README.md``).
BANK_STEPS = 8000
#: ... and the linear warm-up of a coupling flow (:mod:`skabi.training.warmup`) this many,
#: within :data:`BANK_WARMUP_EPOCHS`: at 10^3 simulations the warm-up is what reaches the
#: epoch cap, and a longer one moved the held-out loss of SIR by up to 0.06 nats (worse on
#: one seed of three).
BANK_WARMUP_STEPS = 4000
#: The bounds of those epochs: at least 100 for the training proper (20 until issue 28:
#: on SLCP at 10^5 simulations the held-out -log q after 20 epochs was 3.550, and the
#: validation loss still fell by about 0.03 nats an epoch; 100 epochs reached 2.968, with
#: training bit for bit the same up to epoch 20 and early stopping keeping the best), at
#: least 20 for the warm-up (a linear fit, done within a few epochs), at most 500.
BANK_EPOCHS = (100, 500)
BANK_WARMUP_EPOCHS = (20, 500)

#: A bank is split for validation only when it holds at least this many simulations.
MIN_BANK_FOR_SPLIT = 20


def _is_auto(value):
    return isinstance(value, str) and value == AUTO


def offline(kind):
    """Whether ``kind`` (of :func:`skabi.inputs.fit_input`) is a fixed bank."""
    return kind in ("bank", "stream")


def resolve_validation(settings, kind, n_simulations=None, bank=None):
    """``settings`` with ``validation_sims`` and ``early_stopping`` resolved (the split of
    the bank comes next, then :func:`resolve`); ``bank``: the estimator's bank column
    (default :data:`BANK`)."""
    bank = BANK if bank is None else bank
    spec = settings.validation_sims
    if _is_auto(spec):
        spec = None
        if kind == "bank" and (n_simulations or 0) >= MIN_BANK_FOR_SPLIT:
            spec = bank["validation_sims"]
    stop = settings.early_stopping
    if _is_auto(stop):
        stop = kind == "bank" and spec is not None
    auto = {name for name in ("validation_sims", "early_stopping")
            if _is_auto(getattr(settings, name))}
    return dataclasses.replace(settings, validation_sims=spec, early_stopping=bool(stop),
                               auto=settings.auto | auto)


def resolve(settings, kind, n_training=None, bank=None):
    """``settings`` with every other ``"auto"`` value replaced, for data of ``kind`` and
    ``n_training`` training simulations (a bank's rows after the validation split);
    ``bank``: the estimator's bank column (default :data:`BANK`)."""
    bank = BANK if bank is None else bank
    table = bank if offline(kind) else ONLINE
    changes, warmup = {}, {}   # the warm-up's cap is no parameter: not among "auto"
    for name, value in table.items():
        if _is_auto(getattr(settings, name, None)):
            changes[name] = value
    if table is BANK:   # its sizes scale with the bank (another column is used as given)
        if changes.get("batch_size") is not None and n_training:
            changes["batch_size"] = int(min(BANK["batch_size"], max(16, n_training // 10)))
        if "epochs" in changes:
            changes["epochs"] = ONLINE["epochs"]
            if settings.early_stopping and n_training:
                batch = changes.get("batch_size", settings.batch_size)
                steps = -(-n_training // batch)
                changes["epochs"] = _epochs(BANK_STEPS, steps, BANK_EPOCHS)
                warmup["warmup_epochs"] = _epochs(BANK_WARMUP_STEPS, steps,
                                                  BANK_WARMUP_EPOCHS)
    return dataclasses.replace(settings, auto=settings.auto | set(changes), **changes,
                               **warmup)


def _epochs(budget, steps_per_epoch, bounds):
    """The whole epochs of ``budget`` steps, within ``bounds`` (low, high)."""
    low, high = bounds
    return int(min(high, max(low, -(-budget // steps_per_epoch))))
