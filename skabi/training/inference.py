"""Using a fitted state: draws and log densities, in chunks of bounded size.

One chunk policy for everything that pushes many rows through the model (validation
batches, log densities, draws), :mod:`skabi.training.chunks`: a chunk holds at most
:data:`~skabi.training.chunks.CHUNK_ELEMENTS` input values, and draws are chunked on both
the dataset and the draw axis, each chunk taken back to the user's scale and written
straight into the result. The peak memory of :func:`draw` is therefore the result plus a
fixed working set (a few chunks' worth, measured at 12-35 MiB for 4 parameters:
``benchmarks/README.md``), whatever the number of datasets and draws.
"""

import numpy as np
import torch

from . import chunks
from .chunks import chunk_rows
from .roles import n_rows, to_tensors

__all__ = ["outputs", "draw", "log_prob", "warn_nonfinite", "SUPPORT_DRAWS", "MIN_ACCEPTANCE"]

#: Draws per dataset that estimate the share of the network's mass inside the bounds of
#: ``Constrain(method="reject")``, by which ``log_prob`` divides the density.
SUPPORT_DRAWS = 1000
#: Below this share of draws inside those bounds (after at least ``10 / MIN_ACCEPTANCE``
#: tries for a dataset), ``draw`` stops with a ``SupportError``.
MIN_ACCEPTANCE = 1e-3


def _dtype(model):
    return next(model.parameters()).dtype


def warn_nonfinite(what, rows_ok):
    """Warn, naming the datasets, where ``rows_ok`` (one bool per dataset) is False:
    results that are NaN or infinite come from inputs far outside what the network saw
    in training (they overflow inside it), and are not an answer.

    Examples
    --------
    >>> import numpy as np, warnings
    >>> from skabi.training.inference import warn_nonfinite
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_nonfinite("log_q", np.array([True, False, True]))
    >>> print(caught[0].message)
    log_q is NaN or infinite for 1 of 3 datasets (datasets [1]): their inputs lie far outside what the network saw in training and overflow inside it; the results for those datasets are not usable. Check the data's scale (units) against the simulations.
    """
    import warnings

    bad = np.flatnonzero(~np.asarray(rows_ok, dtype=bool))
    if bad.size:
        warnings.warn(
            f"{what} is NaN or infinite for {bad.size} of {len(rows_ok)} datasets (datasets "
            f"{bad[:10].tolist()}{' ...' if bad.size > 10 else ''}): their inputs lie far "
            "outside what the network saw in training and overflow inside it; the results "
            "for those datasets are not usable. Check the data's scale (units) against the "
            "simulations.", UserWarning, stacklevel=4)


def _finite_rows(array):
    """One bool per row (first axis): every value of the row is finite."""
    array = np.asarray(array)
    if array.dtype.kind not in "fc" or array.size == 0:
        return np.ones(len(array), dtype=bool)
    return np.isfinite(array.reshape(len(array), -1)).all(axis=1)


def outputs(state, roles, method, *, warn=True):
    """``method(model, batch)`` on the datasets of ``roles`` in chunks, as float64 numpy
    rows ``(n, ...)`` (log densities, point estimates, model logits); a warning names the
    rows that are NaN or infinite (``warn=False``: the caller names them)."""
    model = state.model
    n, step = n_rows(roles), chunk_rows(roles)
    out = None
    model.eval()
    with torch.no_grad():
        for i in range(0, n, step):
            t = to_tensors(roles, state.device, _dtype(model), slice(i, i + step))
            part = method(model, t).double().cpu().numpy()
            if out is None:
                out = np.empty((n, *part.shape[1:]))
            out[i:i + step] = part
    if out is not None and warn:
        warn_nonfinite("The network's output", _finite_rows(out))
    return out


def log_prob(state, roles, *, warn=True):
    """log q of ``inference_variables`` given the rest, on the scale of the network
    inputs: (n,) float64.

    Where the adapter rejects draws outside bounds (``Constrain(method="reject")``), the
    density is that of the accepted draws: divided by the share of the network's mass
    inside the bounds, estimated per dataset from :data:`SUPPORT_DRAWS` draws (seeded, so
    the result is repeatable; at least one draw is counted inside)."""
    lp = outputs(state, roles, lambda model, batch: model.log_prob(batch), warn=warn)
    if getattr(state.adapter, "rejects_draws", False):
        conditions = {k: v for k, v in roles.items() if k != "inference_variables"}
        lp = lp - np.log(acceptance(state, conditions, SUPPORT_DRAWS, np.random.default_rng(0)))
    return lp


def acceptance(state, roles, num_draws, rng):
    """Share of ``num_draws`` draws per dataset inside the bounds the adapter keeps by
    rejection: (n,) float64, at least ``1 / num_draws``."""
    inside = np.zeros(n_rows(roles))
    for i, rows, _, _, theta, _ in _chunks(state, roles, num_draws, rng, log_q=False):
        _, mask = state.adapter._inverse({"inference_variables": theta}, support=True)
        inside[i:i + rows] += mask.sum(axis=1)
    return np.maximum(inside, 1) / num_draws


def _user_scale(adapter, theta, lq, support=False):
    """Draws (rows, k, D) back to the user's variables; log q with the adapter's log-det;
    with ``support``, also which draws lie inside the bounds kept by rejection."""
    user, inside = adapter._inverse({"inference_variables": theta}, support=support)
    if lq is not None:
        flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in user.items()}
        if inside is None:
            ldj = adapter.transform(flat, log_det_jac=True)[1]
        else:   # only the draws inside: those outside are rejected, never returned
            keep = inside.ravel()
            ldj = np.full(lq.size, np.nan)
            if keep.any():
                ldj[keep] = adapter.transform({k: v[keep] for k, v in flat.items()},
                                              log_det_jac=True)[1]
        lq = lq + ldj.reshape(lq.shape)
    return (user, lq, inside) if support else (user, lq)


def _chunks(state, roles, num_samples, rng, *, log_q):
    """Draws in chunks on both axes: yields ``(i, rows, j, k, theta, lq)`` for datasets
    ``i:i + rows`` and draws ``j:j + k``; ``theta`` (rows, k, D) on the network scale as
    float64 numpy, ``lq`` its log density there (or None)."""
    model, device = state.model, state.device
    n, dim = n_rows(roles), state.shapes["inference_variables"]
    per_chunk = max(1, chunks.CHUNK_ELEMENTS // dim)            # draws x datasets per chunk
    draws_per = min(num_samples, per_chunk)
    rows_per = max(1, per_chunk // draws_per) if draws_per == num_samples else 1
    rows_per = min(rows_per, chunk_rows(roles))   # the data of a chunk is bounded too
    gen = torch.Generator(device=device)
    gen.manual_seed(int(rng.integers(2**62)))
    model.eval()
    for i in range(0, n, rows_per):
        rows = min(rows_per, n - i)
        with torch.no_grad():    # not around the yields: the caller's grad mode is its own
            cond = model.conditions(to_tensors(roles, device, _dtype(model), slice(i, i + rows)))
        for j in range(0, num_samples, draws_per):
            k = min(draws_per, num_samples - j)
            with torch.no_grad():
                if cond is None:
                    theta = model.sample_from_conditions(k * rows, None, generator=gen)
                    theta = theta.reshape(rows, k, dim)
                else:
                    theta = model.sample_from_conditions(k, cond, generator=gen)
                lq = model.log_prob_from_conditions(theta, cond).to(
                    "cpu", torch.float64).numpy() if log_q else None
            yield i, rows, j, k, theta.to("cpu", torch.float64).numpy(), lq


def draw(state, roles, num_samples, rng, *, log_q):
    """``num_samples`` draws per dataset on the user's scale, and their log densities.

    Parameters
    ----------
    state : FitState
    roles : dict
        The adapter's output for the datasets (no ``inference_variables`` needed).
    rng : numpy.random.Generator
        Seeds torch's generator for the draws.
    log_q : bool
        Also compute the log density of every draw (on the user's scale).

    Returns
    -------
    draws : dict of str to ndarray
        ``{name: (datasets, num_samples, ...)}``.
    log_q : ndarray of shape (datasets, num_samples) or None
    """
    from .._validation import check_result_size

    adapter = state.adapter
    n, dim = n_rows(roles), state.shapes["inference_variables"]
    check_result_size("num_samples", num_samples, n * num_samples * (dim + bool(log_q)),
                      what=f"{n} datasets x {num_samples} draws x {dim + bool(log_q)} values")
    if getattr(adapter, "rejects_draws", False):
        out, lqs = _draw_inside(state, roles, num_samples, rng, log_q=log_q)
    else:
        out, lqs = None, (np.empty((n, num_samples)) if log_q else None)
        for i, rows, j, k, theta, lq in _chunks(state, roles, num_samples, rng, log_q=log_q):
            user, lq = _user_scale(adapter, theta, lq)
            if out is None:  # the result, allocated once and filled chunk by chunk
                out = _allocate(user, n, num_samples)
            for name, v in user.items():
                out[name][i:i + rows, j:j + k] = v
            if log_q:
                lqs[i:i + rows, j:j + k] = lq
    ok = np.ones(n, dtype=bool)
    for v in (out or {}).values():
        ok &= _finite_rows(v)
    warn_nonfinite("A draw", ok)
    if log_q:
        warn_nonfinite("log_q", _finite_rows(lqs) | ~ok)   # one warning per dataset
    return out, lqs


def _allocate(user, n, num_samples):
    return {name: np.empty((n, num_samples, *v.shape[2:]), dtype=v.dtype)
            for name, v in user.items()}


def _draw_inside(state, roles, num_samples, rng, *, log_q):
    """:func:`draw` where the adapter rejects draws outside bounds: each dataset's draws
    are made in rounds until ``num_samples`` lie inside; ``log_q`` is divided by the share
    of the mass inside, estimated as :func:`log_prob` does."""
    from ..exceptions import SupportError

    adapter, n = state.adapter, n_rows(roles)
    out, lqs = None, (np.empty((n, num_samples)) if log_q else None)
    filled = np.zeros(n, dtype=np.int64)
    tried, accepted = np.zeros(n), np.zeros(n)
    todo = np.arange(n)
    while todo.size:
        part = {k: v[todo] for k, v in roles.items()}
        # one round: as many draws as still missing, at least 100, for every dataset left
        need = int(max(100, (num_samples - filled[todo]).max()))
        for i, rows, _, k, theta, lq in _chunks(state, part, need, rng, log_q=log_q):
            user, lq, inside = _user_scale(adapter, theta, lq, support=True)
            if out is None:
                out = _allocate(user, n, num_samples)
            for r in range(rows):
                row = todo[i + r]
                keep = np.flatnonzero(inside[r])
                tried[row] += k
                accepted[row] += keep.size
                keep = keep[:num_samples - filled[row]]
                at = slice(filled[row], filled[row] + keep.size)
                for name, v in user.items():
                    out[name][row, at] = v[r, keep]
                if log_q:
                    lqs[row, at] = lq[r, keep]
                filled[row] += keep.size
        low = (tried >= 10 / MIN_ACCEPTANCE) & (accepted < MIN_ACCEPTANCE * tried)
        low &= filled < num_samples
        if low.any():
            bad = np.flatnonzero(low)
            raise SupportError(
                f"Fewer than {MIN_ACCEPTANCE:g} of the draws lie inside the bounds of "
                f"{adapter._rejecting_steps()!r} (Constrain with method='reject') for {bad.size} of {n} datasets "
                f"(datasets {bad[:10].tolist()}{' ...' if bad.size > 10 else ''}; shares "
                f"{np.round(accepted[bad[:10]] / tried[bad[:10]], 6).tolist()}): the network "
                "puts almost all its mass outside the support there. Check those data "
                "against the simulations, or use method='map'.")
        todo = np.flatnonzero(filled < num_samples)
    if log_q:   # divided by the share inside, estimated as log_prob estimates it
        lqs -= np.log(acceptance(state, roles, SUPPORT_DRAWS, np.random.default_rng(0)))[:, None]
    return out, lqs
