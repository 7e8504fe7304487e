"""Reading simulation banks batch by batch, without loading them: :func:`open_bank`."""

import copy
import math
import os
import warnings

import numpy as np

from .._validation import as_numpy_rng, check_positive_int
from ..bank import as_rows
from ..exceptions import DamagedBankError
from .integrity import BlockVerifier, check_record, parse_state
from .write import STATE_ATTR, batch_sizes, group_name

__all__ = ["BankReader", "open_bank"]

_SHUFFLE_BATCHES = 8  # a shuffle window holds at least this many batches' rows


class _Group:
    """One group of a bank: columns of fixed shapes, meta variables as scalars.

    ``columns`` maps each variable with a simulation axis to a column (an
    :class:`_XarrayColumn` or :class:`_ZarrColumn`); ``rows`` is the number of committed
    rows (rows beyond belong to a batch a writer has not committed yet); ``verifier``
    (a :class:`~skabi.storage.integrity.BlockVerifier`) checks the blocks read against
    the commit record's checksums.
    """

    kept = None  # the stored rows the group reads (after on_nonfinite="drop"); None: all

    def __init__(self, name, columns, meta, rows=None, verifier=None):
        self.name, self.verifier = name, verifier
        if not columns:
            raise ValueError(f"Group {name!r} of the bank has no variable with a simulation axis.")
        sizes = {k: c.n for k, c in columns.items()}
        if rows is None:
            rows = min(sizes.values())
            if len(set(sizes.values())) > 1:
                raise ValueError(
                    f"Variables of group {name!r} of the bank have different numbers of "
                    f"simulations {sizes!r}; every variable needs one row per simulation.")
        short = {k: n for k, n in sizes.items() if n < rows}
        if short:
            raise DamagedBankError(
                f"The bank says group {name!r} holds {rows} committed simulations, but "
                f"variables {short!r} have fewer rows: the bank is damaged.")
        self.columns, self.arrays = columns, list(columns)
        self.meta = meta
        self.n = int(rows)
        self.in_memory = all(c.in_memory for c in columns.values())
        self.block = self.n if self.in_memory else max(c.chunk_rows for c in columns.values())
        missing = [] if verifier is None else verifier.missing(columns)
        if missing:
            raise DamagedBankError(
                f"Variables {missing!r} of group {name!r} are in the commit record of the bank "
                f"{verifier.where} but not in the bank: it is damaged.")

    @classmethod
    def from_dataset(cls, name, ds, rows=None, verifier=None):
        """A group from an xarray Dataset (in memory or opened lazily from disk); with a
        ``verifier`` (a bank opened from its path) ``rows`` must all be there."""
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
        if rows is None:
            rows = int(ds.sizes[dim])
        meta = {k: _scalar(v.values) for k, v in ds.data_vars.items() if v.ndim == 0}
        columns = {k: _XarrayColumn(ds[k], dim) for k in arrays}
        if verifier is None:  # an xarray object: the user may have cut it since
            rows = min(rows, int(ds.sizes[dim]))
        return cls(name, columns, meta, rows, verifier)

    def read(self, index):
        """Rows ``index`` (a slice or sorted int array) as a batch dict."""
        if self.kept is not None:
            index = self.kept[index]
        out = {key: as_rows(value, key) for key, value in self._read_checked(index).items()}
        out.update(self.meta)
        return out

    def finite_rows(self):
        """A boolean mask of the rows whose every float value is finite (read a block at
        a time)."""
        keep = np.ones(self.n, dtype=bool)
        step = self.n if self.in_memory else self.block
        for start in range(0, self.n, step):
            batch = self.read(slice(start, min(start + step, self.n)))
            for key in self.arrays:
                values = batch[key]
                if values.dtype.kind in "fc":
                    rows = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
                    keep[start:start + len(values)] &= rows
        return keep

    def subset(self, rows):
        """The group reduced to its rows ``rows`` (sorted ints)."""
        out = copy.copy(self)
        out.kept = rows if self.kept is None else self.kept[rows]
        out.n = len(rows)
        return out

    def _read_checked(self, index):
        """The stored rows ``index`` of every variable, their blocks checked (once each)
        against the commit record when it has checksums."""
        if self.verifier is None or self.in_memory:
            return {key: self.columns[key].read(index) for key in self.arrays}
        try:
            data = {key: self.columns[key].read(index) for key in self.arrays}
        except Exception:  # noqa: BLE001 - a damaged chunk: the check below names it
            data = None
        self.verifier.check_read(index, data, {k: self.columns[k].read for k in self.arrays})
        if data is None:
            data = {key: self.columns[key].read(index) for key in self.arrays}
        return data

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


class _XarrayColumn:
    """A variable of an xarray Dataset, read row by row along ``dim``."""

    def __init__(self, var, dim):
        self.var, self.dim, self.n = var, dim, int(var.sizes[dim])
        self.in_memory = var.variable._in_memory
        self.chunk_rows = None if self.in_memory else _xarray_chunk_rows(var, dim)

    def read(self, index):
        return np.asarray(self.var.isel({self.dim: index}).values)


class _ZarrColumn:
    """An array of a Zarr store, read directly (no xarray), so that a reader sees the
    committed rows while a writer grows the arrays one after the other."""

    in_memory = False

    def __init__(self, arr):
        self.arr, self.n, self.chunk_rows = arr, int(arr.shape[0]), int(arr.chunks[0])

    def read(self, index):
        if isinstance(index, slice):
            return self.arr[index]
        return self.arr.get_orthogonal_selection((np.asarray(index),))


def _xarray_chunk_rows(var, dim):
    """Rows per storage chunk along the simulation axis (the unit read from disk)."""
    enc = var.encoding
    chunks = enc.get("preferred_chunks", {}).get(dim)
    if chunks is None:
        sizes = enc.get("chunks") or enc.get("chunksizes")
        chunks = sizes[0] if sizes else None
    if chunks is None and var.chunks:
        chunks = var.chunks[0][0]
    return int(chunks) if chunks else 256


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

    def without_nonfinite(self):
        """The bank without its simulations that hold NaN or inf (``on_nonfinite="drop"``).

        Reads the bank once, a storage block at a time, and warns with the number of
        simulations left out.

        Returns
        -------
        BankReader
            A reader of the finite simulations (the same files; close either).

        Raises
        ------
        ValueError
            Every simulation holds NaN or inf.
        """
        groups, dropped = [], 0
        for group in self._groups:
            keep = group.finite_rows()
            dropped += int((~keep).sum())
            groups.append(group.subset(np.flatnonzero(keep)))
        total = self.n_simulations
        if dropped == total:
            raise ValueError(f"Every one of the bank's {total} simulations holds NaN or inf; "
                             "nothing is left to train on.")
        if dropped:
            warnings.warn(f"on_nonfinite='drop': {dropped} of the bank's {total} simulations "
                          "hold NaN or inf and are left out.", UserWarning, stacklevel=2)
        return BankReader(groups, source=self._source)

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
    source : str, os.PathLike, xarray.Dataset, xarray.DataTree or BankReader
        A ``.zarr`` directory written by :func:`skabi.storage.simulate` (or a ``.nc``
        file in its layout), or an xarray object in that layout: a Dataset whose
        variables have a leading ``"simulation"`` dimension (0-d variables are meta), or
        a DataTree whose groups are such Datasets. A BankReader is returned as is.
        A bank opened from its path is checked against its commit record: a damaged
        record, a missing group or rows, and (for banks with checksums) every block read
        whose data differ from the checksum committed with it raise
        :class:`~skabi.exceptions.DamagedBankError`, naming the variable and the rows.

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

    if isinstance(source, BankReader):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"No simulation bank at {path!r}.")
        if os.path.isdir(path):
            reader = _open_skabi_zarr(path)
            if reader is not None:
                return reader
        tree = _open_tree(path)
        try:
            state = _record(tree.attrs, repr(path), strict=True)
            return _tree_reader(tree, state, repr(path), opened=tree)
        except BaseException:
            tree.close()
            raise
    if isinstance(source, xr.Dataset):
        rows = _committed(source.attrs)
        return BankReader([_Group.from_dataset("", source, _rows(rows, ""))])
    if isinstance(source, xr.DataTree):
        return _tree_reader(source, _record(source.attrs, "given", strict=False), "given")
    raise TypeError(
        "open_bank expects a path to a .zarr or .nc bank, an xarray Dataset or DataTree; "
        f"got {type(source).__name__}."
    )


def _tree_reader(tree, state, where, opened=None):
    """A reader of the groups of a DataTree; ``opened``: the tree when read from a path
    (the commit record is then trusted: every committed row must be there, and blocks
    with checksums are checked)."""
    rows = None if state is None else state["group_rows"]
    groups = []
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        if any(v.ndim > 0 for v in ds.data_vars.values()):
            name = node.path.strip("/")
            verifier = None if opened is None else _verifier(state, name, where)
            groups.append(_Group.from_dataset(name, ds, _rows(rows, name), verifier))
    if not groups:
        raise ValueError("The DataTree holds no variables with a simulation axis.")
    if opened is not None:
        _check_groups(state, [g.name for g in groups], where)
    return BankReader(groups, source=opened)


def _record(attrs, where, strict):
    """The commit record of a bank (None without one); ``strict``: checked against the
    bank's other root attributes too (a bank read from its path)."""
    if STATE_ATTR not in attrs:
        return None
    if strict:
        return check_record(attrs, where, batch_sizes)
    return parse_state(attrs[STATE_ATTR], where)


def _verifier(state, name, where):
    """The checker of group ``name``'s blocks (None without checksums in the record)."""
    entry = None if state is None else state.get("checksums", {}).get(name)
    if entry is None or not state["group_rows"].get(name):
        return None
    return BlockVerifier(name, entry, state["group_rows"][name], where)


def _check_groups(state, names, where):
    """Every group the record commits rows to is in the bank."""
    if state is None:
        return
    lost = sorted(k for k, n in state["group_rows"].items() if n and k not in names)
    if lost:
        raise DamagedBankError(
            f"The commit record of the bank {where} lists groups {lost!r} with committed "
            f"simulations, but the bank has no such groups (it has {sorted(names)!r}): it is "
            "damaged. Remove it and simulate it again.")


def _open_skabi_zarr(path):
    """A Zarr bank written by :func:`skabi.storage.simulate`, read with zarr directly.

    The commit record is read first, then each array is cut to the rows it commits: a
    writer may be growing the arrays of its next batch one after the other meanwhile, and
    the reader sees neither those rows nor groups it has not committed. ``None`` when the
    store is not a skabi bank (it is then opened with xarray).
    """
    import zarr

    try:
        root = zarr.open_group(path, mode="r")
    except Exception as exc:  # not a Zarr group at all: xarray says what it is
        if os.path.isfile(os.path.join(path, "zarr.json")):
            raise DamagedBankError(
                f"The metadata {os.path.join(path, 'zarr.json')!r} of the bank {path!r} "
                f"cannot be read ({type(exc).__name__}: {exc}): the bank is damaged.") from exc
        return None
    attrs = dict(root.attrs)
    if STATE_ATTR not in attrs:
        return None
    state = check_record(attrs, repr(path), batch_sizes)
    rows = state["group_rows"]
    groups = []
    with warnings.catch_warnings():  # a writer's temporary files, met while listing
        warnings.filterwarnings("ignore", message=".*not recognized as a component")
        for name, node in [("", root), *sorted(root.groups())]:
            if rows.get(name):  # else: a group whose first batch is not committed yet
                groups.append(_zarr_group(name, node, rows[name], state, repr(path)))
    _check_groups(state, [g.name for g in groups], repr(path))
    return BankReader(groups)


def _zarr_group(name, node, rows, state, where):
    """Group ``name`` of a skabi Zarr bank, its meta variables checked against its name."""
    columns, meta = {}, {}
    try:
        for key, arr in node.arrays():
            if arr.ndim == 0:
                meta[key] = _scalar(arr[()])
            else:
                columns[key] = _ZarrColumn(arr)
    except Exception as exc:  # noqa: BLE001 - damaged array metadata or meta chunk
        raise DamagedBankError(f"Group {name!r} of the bank {where} cannot be read "
                               f"({type(exc).__name__}: {exc}): it is damaged.") from exc
    if group_name(meta) != name:
        raise DamagedBankError(
            f"Group {name!r} of the bank {where} holds the meta variables {meta!r}, which "
            f"name group {group_name(meta)!r}: its meta variables are damaged.")
    return _Group(name, columns, meta, rows, _verifier(state, name, where))


def _rows(committed, name):
    """Committed rows of group ``name``: all when the bank has no commit record, none for
    a group the record does not list."""
    return None if committed is None else committed.get(name, 0)


def _open_tree(path):
    """Open a bank on disk with xarray (netCDF, or Zarr written by another tool)."""
    import xarray as xr

    try:
        if os.path.isdir(path):
            return xr.open_datatree(path, engine="zarr", consolidated=False, chunks=None)
        return xr.open_datatree(path, engine="h5netcdf", chunks=None)
    except ValueError as exc:
        if "conflicting sizes" not in str(exc):
            raise
        raise ValueError(
            f"The variables of the bank {path!r} have different numbers of simulations "
            f"({exc}); every variable needs one row per simulation.") from None


def _committed(attrs):
    """Rows per group recorded by simulate (rows beyond are an uncommitted batch);
    ``None`` for a bank without the record (not written by simulate)."""
    state = _record(attrs, "given", strict=False)
    return None if state is None else state["group_rows"]
