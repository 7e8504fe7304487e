"""The training engine every amortized estimator shares.

Knows nothing of posteriors or of the estimator classes: it trains a torch module that
returns a loss on a batch of role tensors, from any source, and saves and loads the
:class:`~skabi.training.state.FitState` a fit produces.

Modules
-------
``state``        the :class:`FitState` record
``roles``        adapter output meets torch: checks, tensors, masks, batch preparation
``model``        the posterior approximator (summary + inference network + standardization)
``sources``      where batches come from: online, rounds, replay, memory bank, disk stream
``loop``         the optimisation loop: optimizer, schedule, clipping, early stopping
``fitting``      one fit: initial, warm-started and resumed states, then training
``inference``    the one chunk policy; chunked draws and log densities
``persistence``  save and load a state with the estimator's parameters; checkpoints
``threads``      CPU threads set and restored around a call
"""
