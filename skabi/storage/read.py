"""Reading simulation banks batch by batch, without loading them: :func:`open_bank`."""

import json
import math
import os

import numpy as np

from .._validation import as_numpy_rng, check_positive_int
from ..bank import as_rows
from .write import STATE_ATTR, WriterLock

__all__ = ["BankReader", "open_bank"]

_SHUFFLE_BATCHES = 8  # a shuffle window holds at least this many batches' rows


class _Group:
    """One group of a bank: a Dataset of fixed shapes, meta variables as 0-d variables."""

    def __init__(self, name, ds, rows=None):
        self.name = name
        arrays = [k for k, v in ds.data_vars.items() if v.ndim > 0]
        if not arrays:
            raise ValueError(f"Group {name!r} of the bank has no variable with a simulation axis.")
        dim = "simulation" if "simulation" in ds.dims else ds[arrays[0]].dims[0]
        odd = [k for k in arrays if ds[k].dims[0] != dim]
        if odd:
            raise ValueError(
                f"Variables {odd!r} of the bank do not have {dim!r} as first dimension; every "
                "variable needs the simulation axis first (or be 0-d meta)."
            )
        if rows is not None and rows < ds.sizes[dim]:
            ds = ds.isel({dim: slice(0, rows)})  # rows of an interrupted, uncommitted batch
        self.ds, self.dim, self.arrays = ds, dim, arrays
        self.meta = {k: _scalar(v.values) for k, v in ds.data_vars.items() if v.ndim == 0}
        self.n = int(ds.sizes[dim])
        self.in_memory = all(ds[k].variable._in_memory for k in arrays)
        self.block = self.n if self.in_memory else _chunk_rows(ds, dim, arrays)

    def read(self, index):
        """Rows ``index`` (a slice or sorted int array) as a batch dict."""
        sub = self.ds[self.arrays].isel({self.dim: index})
        out = {}
        for key in self.arrays:
            out[key] = as_rows(np.asarray(sub[key].values), key)
        out.update(self.meta)
        return out

    def _blocks(self, rng):
        """Contiguous blocks of storage chunks, in random order, each as a batch dict."""
        starts = np.arange(0, self.n, self.block)
        rng.shuffle(starts)
        for s in starts:
            yield self.read(slice(int(s), int(min(s + self.block, self.n))))

    def epoch(self, batch_size, rng):
        """Every row once, shuffled, in ``ceil(n / batch_size)`` batches."""
        if self.in_memory:
            perm = rng.permutation(self.n)
            for s in range(0, self.n, batch_size):
                yield self.read(np.sort(perm[s:s + batch_size]))
            return
        # Disk: read whole chunks in random order into a window of at least
        # _SHUFFLE_BATCHES batches, shuffle its rows, cut it into full batches; the rows
        # left over go into the next window, so only the epoch's last batch is smaller.
        per_window = max(2, math.ceil(_SHUFFLE_BATCHES * batch_size / self.block))
        window = []
        blocks = self._blocks(rng)
        while True:
            block = next(blocks, None)
            if block is not None:
                window.append(block)
            if window and (block is None or len(window) >= per_window):
                merged = _concat(window, self.arrays, self.meta)
                window = None  # drop the blocks: only the merged copy stays in memory
                m = len(merged[self.arrays[0]])
                perm = rng.permutation(m)
                full = m if block is None else m - m % batch_size
                for s in range(0, full, batch_size):
                    idx = perm[s:s + batch_size]
                    yield {k: (v[idx] if k in self.arrays else v) for k, v in merged.items()}
                rest = perm[full:]
                window = [{k: (v[rest] if k in self.arrays else v) for k, v in merged.items()}]
                del merged
                if not len(rest):
                    window = []
            if block is None:
                return

    def sample(self, size, rng):
        size = min(int(size), self.n)
        if self.in_memory:
            return self.read(np.sort(rng.choice(self.n, size, replace=False)))
        parts, got = [], 0
        for block in self._blocks(rng):  # whole chunks: no random reads across the store
            parts.append(block)
            got += len(block[self.arrays[0]])
            if got >= size:
                break
        merged = _concat(parts, self.arrays, self.meta)
        idx = rng.choice(got, size, replace=False)
        return {k: (v[idx] if k in self.arrays else v) for k, v in merged.items()}


def _scalar(values):
    value = np.asarray(values)[()]
    return value.item() if isinstance(value, np.generic) else value


def _concat(parts, arrays, meta):
    if len(parts) == 1:
        return parts[0]
    out = {k: np.concatenate([p[k] for p in parts]) for k in arrays}
    out.update(meta)
    return out


def _chunk_rows(ds, dim, arrays):
    """Rows per storage chunk along the simulation axis (the unit read from disk)."""
    rows = []
    for key in arrays:
        var = ds[key]
        enc = var.encoding
        chunks = enc.get("preferred_chunks", {}).get(dim)
        if chunks is None:
            sizes = enc.get("chunks") or enc.get("chunksizes")
            chunks = sizes[0] if sizes else None
        if chunks is None and var.chunks:
            chunks = var.chunks[0][0]
        if chunks:
            rows.append(int(chunks))
    return max(rows) if rows else 256


class BankReader:
    """Random access to a simulation bank in memory or on disk, for training.

    Made by :func:`open_bank`. A bank is one or more *groups*, each with fixed shapes and
    constant meta variables (``N``); every batch the reader returns comes from one group.
    On disk the reader loads only the rows it returns (plus the storage chunks holding
    them), never the whole bank.

    Examples
    --------
    A bank whose sample size ``N`` varies between batches has one group per ``N``; every
    batch comes from one group, so ``x`` always has a fixed shape within a batch:

    >>> from skabi import make_simulator
    >>> from skabi.storage import open_bank, simulate
    >>> def model(N, rng):
    ...     theta = rng.normal(size=2)
    ...     return dict(theta=theta, x=theta + rng.normal(size=(N, 2)))
    >>> simulator = make_simulator(model, meta_fn=lambda rng: dict(N=int(rng.integers(5, 10))))
    >>> reader = open_bank(simulate(simulator, 60, batch_size=20, random_state=0))
    >>> batches = list(reader.batches(8, rng=0))
    >>> len(reader), sum(len(b["theta"]) for b in batches)
    (60, 60)
    >>> all(b["x"].shape[1:] == (b["N"], 2) for b in batches)
    True
    """

    def __init__(self, groups, source=None):
        groups = [g for g in groups if g.n > 0]
        try:  # a fixed order whatever the backend: by meta values (N=5 before N=12)
            groups.sort(key=lambda g: tuple(g.meta.values()))
        except TypeError:
            groups.sort(key=lambda g: g.name)
        if not groups:
            raise ValueError("The simulation bank is empty.")
        self._groups = groups
        self._offsets = np.cumsum([0] + [g.n for g in groups])
        self._source = source

    @property
    def n_simulations(self):
        """Total number of simulations."""
        return int(self._offsets[-1])

    def __len__(self):
        return self.n_simulations

    @property
    def groups(self):
        """``[(name, meta dict, n_simulations), ...]``, one per group."""
        return [(g.name, dict(g.meta), g.n) for g in self._groups]

    def keys(self):
        """Names of the variables: arrays, then meta variables, each sorted by name.

        Sorted so that a bank lists its variables in the same order from memory, Zarr or
        netCDF (Zarr does not keep the order in which arrays were written).
        """
        g = self._groups[0]
        return [*sorted(g.arrays), *sorted(g.meta)]

    def pilot(self, size, rng=None):
        """Up to ``size`` simulations drawn at random from the largest group."""
        rng = as_numpy_rng(rng)
        group = max(self._groups, key=lambda g: g.n)
        return group.sample(size, rng)

    def batches(self, batch_size, rng=None):
        """One epoch: every simulation once, shuffled, in batches from one group each.

        Groups are interleaved at random in proportion to their number of batches.
        Yields batch dicts like ``Simulator.sample`` (arrays with a leading axis, meta
        variables as Python scalars).
        """
        batch_size = check_positive_int("batch_size", batch_size)
        rng = as_numpy_rng(rng)
        schedule = np.concatenate(
            [np.full(math.ceil(g.n / batch_size), i) for i, g in enumerate(self._groups)]
        )
        rng.shuffle(schedule)
        epochs = [g.epoch(batch_size, rng) for g in self._groups]
        for i in schedule:
            batch = next(epochs[i], None)
            if batch is not None:
                yield batch
        for epoch in epochs:  # nothing should be left; never drop simulations if there is
            yield from epoch

    def take(self, index):
        """Simulations ``index`` (int, slice, int array or boolean mask over all
        simulations, groups in the order of :attr:`groups`); all from one group."""
        total = self.n_simulations
        if isinstance(index, slice):
            idx = np.arange(*index.indices(total))
        else:
            idx = np.asarray(index)
            if idx.dtype == bool:
                if idx.shape != (total,):
                    raise IndexError(f"A boolean mask must have shape ({total},).")
                idx = np.flatnonzero(idx)
            idx = np.atleast_1d(idx).astype(np.int64)
            idx = np.where(idx < 0, idx + total, idx)
            if idx.size and (idx.min() < 0 or idx.max() >= total):
                raise IndexError(f"Index out of range for a bank of {total} simulations.")
        if idx.size == 0:
            raise IndexError("take needs at least one index.")
        which = np.searchsorted(self._offsets, idx, side="right") - 1
        if np.any(which != which[0]):
            names = sorted({self._groups[w].name for w in np.unique(which)})
            raise ValueError(
                f"The indices span groups {names!r} with different meta variables; take "
                "simulations from one group at a time (see BankReader.groups)."
            )
        group = self._groups[int(which[0])]
        rows = idx - self._offsets[which[0]]
        order = np.argsort(rows, kind="stable")
        uniq, inverse = np.unique(rows[order], return_inverse=True)
        out = group.read(uniq)
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        pick = inverse[back]
        return {k: (v[pick] if k in group.arrays else v) for k, v in out.items()}

    def close(self):
        """Close the files of a bank opened from a path."""
        if self._source is not None:
            self._source.close()

    def __repr__(self):
        groups = ", ".join(f"{name or 'all'}: {n}" for name, _, n in self.groups)
        return f"BankReader({self.n_simulations} simulations; {groups})"


def open_bank(source):
    """Open a simulation bank for training without loading it.

    Parameters
    ----------
    source : str, os.PathLike, xarray.Dataset or xarray.DataTree
        A ``.zarr`` directory or ``.nc`` file written by :func:`skabi.storage.simulate`,
        or an xarray object in that layout: a Dataset whose variables have a leading
        ``"simulation"`` dimension (0-d variables are meta), or a DataTree whose groups
        are such Datasets.

    Returns
    -------
    BankReader

    Examples
    --------
    >>> import os, tempfile
    >>> from skabi import make_simulator
    >>> from skabi.storage import open_bank, simulate
    >>> simulator = make_simulator(lambda rng: dict(theta=rng.normal(size=2),
    ...                                             x=rng.normal(size=5)))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "bank.zarr")
    ...     simulate(simulator, 100, batch_size=25, path=path, random_state=0).close()
    ...     reader = open_bank(path)
    ...     batch = next(reader.batches(32, rng=0))
    ...     reader.close()
    >>> reader
    BankReader(100 simulations; all: 100)
    >>> batch["theta"].shape, batch["x"].shape
    ((32, 2), (32, 5))
    """
    import xarray as xr

    opened = None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"No simulation bank at {path!r}.")
        opened = source = _open_tree(path)
    if isinstance(source, xr.Dataset):
        return BankReader([_Group("", source, _committed(source.attrs).get(""))])
    if isinstance(source, xr.DataTree):
        rows = _committed(source.attrs)
        groups = []
        for node in source.subtree:
            ds = node.to_dataset(inherit=False)
            if any(v.ndim > 0 for v in ds.data_vars.values()):
                name = node.path.strip("/")
                groups.append(_Group(name, ds, rows.get(name)))
        if not groups:
            raise ValueError("The DataTree holds no variables with a simulation axis.")
        return BankReader(groups, source=opened)
    raise TypeError(
        "open_bank expects a path to a .zarr or .nc bank, an xarray Dataset or DataTree; "
        f"got {type(source).__name__}."
    )


def _open_tree(path, tries=10, wait=0.2):
    """Open a bank on disk; while a writer is between the resizes of its arrays, xarray
    sees conflicting sizes: wait for it a little, then say what is going on."""
    import time

    import xarray as xr

    zarr = os.path.isdir(path)
    for attempt in range(tries):
        try:
            if zarr:
                return xr.open_datatree(path, engine="zarr", consolidated=False, chunks=None)
            return xr.open_datatree(path, engine="h5netcdf", chunks=None)
        except ValueError as exc:
            if "conflicting sizes" not in str(exc):
                raise
            if attempt + 1 < tries and os.path.exists(WriterLock(path).file):
                time.sleep(wait)
                continue
            lock = WriterLock(path)
            owner = lock.owner() if os.path.exists(lock.file) else None
            if owner and not lock.is_stale(owner):
                raise RuntimeError(
                    f"The bank {path!r} is being written by process {owner.get('pid')} on "
                    f"{owner.get('host')!r} and was caught between two arrays of a batch; "
                    "open it again in a moment, or after the writer finishes.") from None
            raise RuntimeError(
                f"The bank {path!r} holds rows beyond its last committed batch (a writer "
                "stopped in the middle of one): run simulate(...) with the same arguments "
                "on this path, which resumes it and cuts those rows.") from None


def _committed(attrs):
    """Rows per group recorded by simulate (rows beyond are an interrupted batch)."""
    state = attrs.get(STATE_ATTR)
    if state is None:
        return {}
    if isinstance(state, bytes):
        state = state.decode()
    return json.loads(state).get("group_rows", {})
