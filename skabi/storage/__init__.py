"""Simulation banks at scale: produce them in parallel, store them on disk, stream them.

:func:`simulate` draws a bank of ``n`` simulations in batches, locally (joblib processes)
or on a Dask cluster, in memory or streamed to a Zarr directory, and resumes an
interrupted run. :func:`open_bank` reads a bank batch by batch without loading
it, for training.

Layout
------
Each simulator variable ``v`` of shape ``(B, *s)`` is a variable with dimensions
``("simulation", "v_dim_0", ...)``. A simulator without meta variables gives an
``xarray.Dataset``. A simulator with meta variables (``N`` drawn once per batch) gives
an ``xarray.DataTree`` with one child group per distinct meta tuple (``"N=7"``;
several meta variables joined by ``","``), each a Dataset of fixed shapes holding the
meta variables as 0-d variables. Nothing is padded, every training batch read from one
group has a constant ``N``, and no masks are needed.
"""

import json

import numpy as np

from .._validation import check_positive_int
from .._version import __version__
from ..exceptions import DamagedBankError, SimulatorError
from . import write as _w
from .integrity import BlockDigests, check_record
from .read import BankReader, open_bank

__all__ = ["simulate", "open_bank", "BankReader"]


def simulate(simulator, n, *, batch_size=256, n_jobs=1, client=None, path=None, format=None,
             random_state=None, progress=False):
    """Draw a simulation bank of ``n`` simulations, in parallel, optionally to disk.

    Parameters
    ----------
    simulator : Simulator
        Anything with ``sample(batch_size, random_state=...) -> dict``. Must pickle
        (cloudpickle: local functions are fine) when ``n_jobs != 1`` or ``client`` is given.
    n : int
        Number of simulations.
    batch_size : int, default=256
        Simulations per batch; ``ceil(n / batch_size)`` batches, the last one smaller.
        Meta variables (``N``) are drawn once per batch, and the disk chunks hold whole
        batches.
    n_jobs : int, default=1
        Local worker processes (joblib, loky); ``-1`` for all cores.
    client : dask.distributed.Client, optional
        Run the batches on this Dask cluster instead (``n_jobs`` is then ignored). At most
        twice as many batches as worker threads are in flight or waiting to be written.
    path : str or os.PathLike, optional
        Stream the bank to this Zarr directory (``*.zarr``) batch by batch, without
        holding it in memory. An existing bank at ``path`` written with the same
        arguments is resumed: only the missing batches are drawn. Each batch is
        committed with the sha256 of the blocks it wrote, which :func:`open_bank` checks.
        netCDF (``*.nc``) is no longer written (an HDF5 file killed mid-write is left
        unreadable, and a full disk crashes the interpreter): a complete netCDF bank
        written by an earlier skabi is opened read-only, anything else is refused.
    format : {"zarr", "netcdf"}, optional
        Overrides the format guessed from ``path``.
    random_state : None, int, numpy SeedSequence or Generator, default=None
        Batch ``i`` is drawn with the ``i``-th child of ``SeedSequence(random_state)``, so
        the bank depends neither on ``n_jobs`` nor on the backend, and a resumed run
        continues the same sequence. With ``None`` fresh entropy is drawn and recorded
        in the bank (attribute ``seed_entropy``), so resuming with ``None`` works too.
    progress : bool, default=False
        Show a tqdm progress bar over the batches.

    Returns
    -------
    xarray.Dataset or xarray.DataTree
        In memory when ``path`` is None, else the store opened lazily (dask-backed
        variables). See the module docstring for the layout. Attributes: ``n``,
        ``batch_size``, ``n_batches``, ``completed_batches``, ``seed_entropy``,
        ``random_state`` (when an int), ``meta_variables``, ``skabi_version``.

    Examples
    --------
    A bank in memory, then the same bank streamed to a Zarr directory (a temporary one
    here):

    >>> import os, tempfile
    >>> from skabi import make_simulator
    >>> from skabi.storage import simulate
    >>> simulator = make_simulator(lambda rng: dict(theta=rng.normal(size=2),
    ...                                             x=rng.normal(size=(5, 2))))
    >>> bank = simulate(simulator, 100, batch_size=32, random_state=0)
    >>> bank["theta"].shape, bank["x"].shape, bank.attrs["n_batches"]
    ((100, 2), (100, 5, 2), 4)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     on_disk = simulate(simulator, 100, batch_size=32, random_state=0,
    ...                        path=os.path.join(tmp, "bank.zarr"))
    ...     same = bool((on_disk["x"] == bank["x"]).all())
    ...     on_disk.close()
    >>> same
    True
    """
    n = check_positive_int("n", n)
    batch_size = check_positive_int("batch_size", batch_size)
    if not callable(getattr(simulator, "sample", None)):
        raise TypeError(
            f"simulator must have a sample(batch_size, random_state=...) method, such as the "
            f"result of make_simulator; got {type(simulator).__name__}."
        )
    sizes = _w.batch_sizes(n, batch_size)
    if path is None:
        return _draw_bank(simulator, n, sizes, batch_size, n_jobs, client, None, format,
                          random_state, progress)
    with _w.WriterLock(path):   # one writer per bank; a second is refused, not interleaved
        return _draw_bank(simulator, n, sizes, batch_size, n_jobs, client, path, format,
                          random_state, progress)


def _draw_bank(simulator, n, sizes, batch_size, n_jobs, client, path, format, random_state,
               progress):
    if path is None:
        store, state = _w.MemoryStore(), None
    else:
        fmt = _w.store_format(path, format)
        attrs = _w.read_attrs(path, fmt)
        if attrs is not None:
            state = check_record(attrs, repr(str(path)), _w.batch_sizes)
            _check_arguments(path, attrs, n, batch_size, random_state)
            if state["completed_batches"] >= len(sizes):  # complete: open it read-only
                return _open_complete(path, fmt, state)
        if fmt != "zarr":
            _w.refuse_netcdf(path, attrs)
        store = _w.open_store(path, fmt)
        state = _resume_state(store)
    try:
        if state is None:
            entropy = _w.root_entropy(random_state)
            state = {"completed_batches": 0, "group_rows": {}, "meta_variables": None}
            attrs = {
                "n": n, "batch_size": batch_size, "n_batches": len(sizes),
                "seed_entropy": str(entropy), "skabi_version": __version__,
            }
            if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
                attrs["random_state"] = (
                    int(random_state) if random_state < 2**63 else str(random_state)
                )
            store.commit({**attrs, **_state_attrs(state)})
        entropy = int(store.attrs["seed_entropy"])
        where = "in memory" if path is None else repr(str(path))
        _run(simulator, store, state, sizes, entropy, batch_size, n_jobs, client, progress,
             where)
    finally:
        store.close()
    if path is None:
        return store.result()
    return _open_written(path, fmt, state)


def _open_complete(path, fmt, state):
    """A complete bank opened read-only (rows a crashed writer left beyond the last commit
    of a Zarr bank are cut first)."""
    try:
        return _open_written(path, fmt, state)
    except ValueError as exc:
        if fmt != "zarr" or "conflicting sizes" not in str(exc):
            raise
    store = _w.open_store(path, fmt)
    try:
        _resume_state(store)
    finally:
        store.close()
    return _open_written(path, fmt, state)


def _state_attrs(state):
    meta = state["meta_variables"]
    return {
        "completed_batches": state["completed_batches"],
        "meta_variables": "" if meta is None else ",".join(meta),
        _w.STATE_ATTR: json.dumps(state),
    }


def _check_arguments(path, attrs, n, batch_size, random_state):
    mismatch = []
    if int(attrs["n"]) != n:
        mismatch.append(f"n (bank: {attrs['n']}, given: {n})")
    if int(attrs["batch_size"]) != batch_size:
        mismatch.append(f"batch_size (bank: {attrs['batch_size']}, given: {batch_size})")
    if random_state is not None:
        given = _w.root_entropy(random_state)
        if given != int(attrs["seed_entropy"]):
            stored = attrs.get("random_state", f"entropy {attrs['seed_entropy']}")
            mismatch.append(f"random_state (bank: {stored}, given: {random_state!r})")
    if mismatch:
        raise ValueError(
            f"{str(path)!r} holds a bank written with different arguments: "
            f"{'; '.join(mismatch)}. Pass the same arguments to resume it, or another path."
        )


def _resume_state(store):
    attrs = store.attrs
    if _w.STATE_ATTR not in attrs:
        return None
    state = check_record(attrs, repr(store.path), _w.batch_sizes)
    _check_committed_rows(store, state)
    # Undo whatever an interrupted batch wrote after the last commit.
    for name in store.group_names():
        store.truncate(name, state["group_rows"].get(name, 0))
    return state


def _check_committed_rows(store, state):
    """Every group of the record holds at least its committed rows (else growing it
    again would fill the lost rows with zeros)."""
    for name, rows in state["group_rows"].items():
        stored = store.array_rows(name)
        short = {k: v for k, v in stored.items() if v < rows}
        if rows and (not stored or short):
            what = f"variables {short!r} have fewer" if stored else "the group is missing"
            raise DamagedBankError(
                f"The commit record of the bank {store.path!r} says group {name!r} holds "
                f"{rows} simulations, but {what}: the bank is damaged. Remove it and "
                "simulate it again.")


def _run(simulator, store, state, sizes, entropy, batch_size, n_jobs, client, progress,
         where):
    start = state["completed_batches"]
    if start >= len(sizes):
        return
    # A bank begun before skabi recorded checksums goes on without them.
    digests = BlockDigests(state, store, where) if not start or "checksums" in state else None
    from tqdm.auto import tqdm

    bar = tqdm(total=len(sizes), initial=start, disable=not progress, unit="batch",
               desc="simulate")
    try:
        batches = _w.iterate_batches(simulator, sizes, start, entropy, n_jobs=n_jobs,
                                     client=client)
        for index, batch in batches:
            meta, arrays = _w.split_batch(batch)
            if not arrays:
                raise SimulatorError("The simulator returned no array with a leading batch axis.")
            if state["meta_variables"] is None:
                state["meta_variables"] = list(meta)
            elif list(meta) != state["meta_variables"]:
                raise SimulatorError(
                    f"Batch {index} has meta variables {list(meta)!r}, earlier batches "
                    f"{state['meta_variables']!r}; they must be the same in every batch."
                )
            name = _w.group_name(meta)
            rows = state["group_rows"].get(name, 0)
            store.append(name, meta, arrays, rows, batch_size)
            if digests is not None:
                digests.add(name, arrays, rows, _w.block_rows(arrays, batch_size))
            state["group_rows"][name] = rows + sizes[index]
            state["completed_batches"] = index + 1
            store.commit(_state_attrs(state))  # the batch counts only once this is written
            bar.update(1)
    finally:
        bar.close()


def _open_written(path, fmt, state):
    import xarray as xr

    path = str(path)
    engine = "zarr" if fmt == "zarr" else "h5netcdf"
    kwargs = {"consolidated": False} if fmt == "zarr" else {}
    rows = state["group_rows"]
    if state["meta_variables"]:
        tree = xr.open_datatree(path, engine=engine, chunks={}, **kwargs)
        for name, child in list(tree.children.items()):
            if child.sizes.get("simulation", 0) > rows.get(name, 0):
                tree[name] = child.isel(simulation=slice(0, rows.get(name, 0)))
        return tree
    ds = xr.open_dataset(path, engine=engine, chunks={}, **kwargs)
    if ds.sizes.get("simulation", 0) > rows.get("", 0):  # rows of an uncommitted batch
        ds = ds.isel(simulation=slice(0, rows.get("", 0)))
    return ds
