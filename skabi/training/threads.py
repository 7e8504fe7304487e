"""How many CPU threads torch uses inside a call: set on entry, restored on exit.

torch's intra-op threads busy-wait for work; on a machine where other processes compete
for the cores they spin against them, and a step that takes milliseconds idle can take
ten times longer. skabi's networks are small, so one thread per call loses little idle
and holds up under contention (``benchmarks/README.md``, "CPU threads").
"""

import contextlib
import os

import torch

__all__ = ["torch_threads", "resolve_threads"]


def resolve_threads(n_threads):
    """``None``: leave torch's setting; ``-1``: every core; ``-k``: all but ``k - 1``;
    ``k > 0``: ``k`` threads (as scikit-learn's ``n_jobs``)."""
    if n_threads is None:
        return None
    n = int(n_threads)
    if n < 0:
        n = max(1, (os.cpu_count() or 1) + 1 + n)
    return max(1, n)


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run the body with ``resolve_threads(n_threads)`` intra-op threads, then restore.

    Examples
    --------
    >>> import torch
    >>> from skabi.training.threads import torch_threads
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     inside = torch.get_num_threads()
    >>> inside, torch.get_num_threads() == before
    (1, True)
    """
    n = resolve_threads(n_threads)
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
