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

__all__ = ["outputs", "draw", "log_prob", "warn_nonfinite"]

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
    inputs: (n,) float64."""
    return outputs(state, roles, lambda model, batch: model.log_prob(batch), warn=warn)


def _user_scale(adapter, theta, lq):
    """Draws (rows, k, D) back to the user's variables; log q with the adapter's log-det."""
    user = adapter.inverse_transform({"inference_variables": theta})
    if lq is not None:
        flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in user.items()}
        _, ldj = adapter.transform(flat, log_det_jac=True)
        lq = lq + ldj.reshape(lq.shape)
    return user, lq


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

    model, device, adapter = state.model, state.device, state.adapter
    n, dim = n_rows(roles), state.shapes["inference_variables"]
    check_result_size("num_samples", num_samples, n * num_samples * (dim + bool(log_q)),
                      what=f"{n} datasets x {num_samples} draws x {dim + bool(log_q)} values")
    per_chunk = max(1, chunks.CHUNK_ELEMENTS // dim)            # draws x datasets per chunk
    draws_per = min(num_samples, per_chunk)
    rows_per = max(1, per_chunk // draws_per) if draws_per == num_samples else 1
    rows_per = min(rows_per, chunk_rows(roles))   # the data of a chunk is bounded too
    gen = torch.Generator(device=device)
    gen.manual_seed(int(rng.integers(2**62)))
    out, lqs = None, (np.empty((n, num_samples)) if log_q else None)
    model.eval()
    with torch.no_grad():
        for i in range(0, n, rows_per):
            rows = min(rows_per, n - i)
            cond = model.conditions(to_tensors(roles, device, _dtype(model), slice(i, i + rows)))
            for j in range(0, num_samples, draws_per):
                k = min(draws_per, num_samples - j)
                if cond is None:
                    theta = model.sample_from_conditions(k * rows, None, generator=gen)
                    theta = theta.reshape(rows, k, dim)
                else:
                    theta = model.sample_from_conditions(k, cond, generator=gen)
                lq = model.log_prob_from_conditions(theta, cond).to(
                    "cpu", torch.float64).numpy() if log_q else None
                user, lq = _user_scale(adapter, theta.to("cpu", torch.float64).numpy(), lq)
                if out is None:  # the result, allocated once and filled chunk by chunk
                    out = {name: np.empty((n, num_samples, *v.shape[2:]), dtype=v.dtype)
                           for name, v in user.items()}
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
