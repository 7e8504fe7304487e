"""Producing simulation banks: batches drawn in parallel, streamed to Zarr.

See :func:`skabi.storage.simulate` for the layout and the resume protocol.
"""

import json
import math
import numbers
import os
import socket
from pathlib import Path

import numpy as np

from ..bank import as_rows

STATE_ATTR = "skabi_state"  # JSON: {"completed_batches": k, "group_rows": {group: rows}}
_TARGET_CHUNK_BYTES = 2**20


# --------------------------------------------------------------------------- arguments

def root_entropy(random_state):
    """The root entropy of the bank's seed sequence (an int) from ``random_state``."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int; got {random_state!r}.")
        return int(random_state)
    if isinstance(random_state, np.random.SeedSequence):
        if random_state.spawn_key:
            raise ValueError("random_state: pass a root SeedSequence (without spawn_key).")
        return int(random_state.entropy)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise ValueError(
        "random_state must be None, an int, a numpy SeedSequence, Generator or RandomState; "
        f"got {random_state!r}."
    )


def _batch_seed(entropy, index):
    """Seed of batch ``index``: the ``index``-th child of ``SeedSequence(entropy)``."""
    return np.random.SeedSequence(entropy, spawn_key=(index,))


def batch_sizes(n, batch_size):
    n_batches = math.ceil(n / batch_size)
    return [min(batch_size, n - i * batch_size) for i in range(n_batches)]


def _draw(simulator, size, entropy, index):
    """Draw batch ``index`` (runs in worker processes; module level so it pickles)."""
    batch = simulator.sample(size, random_state=_batch_seed(entropy, index))
    return index, batch


# --------------------------------------------------------------------------- batches
def split_batch(batch):
    """``(meta, arrays)``: meta are the 0-d values (constant within the batch)."""
    meta, arrays = {}, {}
    for key, value in batch.items():
        if np.ndim(value) == 0:
            meta[key] = value.item() if isinstance(value, (np.generic, np.ndarray)) else value
        else:
            arrays[key] = as_rows(value, key)
    return meta, arrays


def group_name(meta):
    """Name of the group of a meta tuple: ``"N=7"``, ``"N=7,K=2"``; ``""`` without meta."""
    return ",".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in meta.items())


def dims_of(name, arr):
    return ("simulation", *(f"{name}_dim_{j}" for j in range(arr.ndim - 1)))


def block_rows(arrays, batch_size):
    """Rows per checksum block of a group: its rows per disk chunk."""
    return _chunk_rows(arrays, batch_size)


def _chunk_rows(arrays, batch_size):
    """Rows per disk chunk, shared by a group's variables: about 1 MiB (whole batches
    when they are smaller)."""
    row_bytes = max(1, sum(a.itemsize * int(np.prod(a.shape[1:])) for a in arrays.values()))
    if batch_size * row_bytes > _TARGET_CHUNK_BYTES:  # split a large batch into chunks
        return math.ceil(batch_size / math.ceil(batch_size * row_bytes / _TARGET_CHUNK_BYTES))
    return batch_size * max(1, _TARGET_CHUNK_BYTES // (batch_size * row_bytes))


# --------------------------------------------------------------------------- parallel runs
def iterate_batches(simulator, sizes, start, entropy, *, n_jobs=1, client=None, window=None):
    """Yield ``(index, batch)`` for batches ``start..len(sizes)-1``, in index order.

    Results are yielded in order whatever the backend, so the bank does not depend on it;
    at most ``window`` batches are in flight or waiting to be written at any time.
    """
    todo = range(start, len(sizes))
    if client is not None:
        yield from _iterate_dask(simulator, sizes, todo, entropy, client, window)
    elif n_jobs is not None and n_jobs != 1:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")
        yield from parallel(delayed(_draw)(simulator, sizes[i], entropy, i) for i in todo)
    else:
        for i in todo:
            yield _draw(simulator, sizes[i], entropy, i)


def _iterate_dask(simulator, sizes, todo, entropy, client, window):
    from distributed import as_completed

    if window is None:
        n_workers = max(1, sum(client.nthreads().values()))
        window = 2 * n_workers
    [sim] = client.scatter([simulator], broadcast=True)
    todo = list(todo)
    pending, done, submitted, nxt = as_completed(), {}, 0, 0

    def submit_upto():
        nonlocal submitted
        while submitted < len(todo) and submitted < nxt + window:
            i = todo[submitted]
            pending.add(client.submit(_draw, sim, sizes[i], entropy, i, pure=False))
            submitted += 1

    try:
        submit_upto()
        for future in pending:
            index, batch = future.result()
            done[index] = batch
            future.release()
            while nxt < len(todo) and todo[nxt] in done:
                yield todo[nxt], done.pop(todo[nxt])
                nxt += 1
            submit_upto()
    finally:
        for future in list(pending.futures):
            future.cancel()


# --------------------------------------------------------------------------- stores
class MemoryStore:
    """Collects the batches in memory (``path=None``)."""

    def __init__(self):
        self.attrs, self.groups = {}, {}

    def append(self, name, meta, arrays, rows, batch_size):
        group = self.groups.setdefault(name, {"meta": meta, "arrays": {}})
        for key, arr in arrays.items():
            group["arrays"].setdefault(key, []).append(arr)

    def commit(self, attrs):
        self.attrs.update(attrs)

    def truncate(self, name, rows):  # pragma: no cover - nothing to undo in memory
        pass

    def dtype(self, name, key):
        """The dtype of variable ``key`` of group ``name`` (None before its first batch)."""
        parts = self.groups.get(name, {"arrays": {}})["arrays"].get(key)
        return parts[0].dtype if parts else None

    def read_rows(self, name, key, start, stop):
        """Rows ``start:stop`` of variable ``key`` of group ``name``."""
        return np.concatenate(self.groups[name]["arrays"][key])[start:stop]

    def close(self):
        pass

    def result(self):
        import xarray as xr

        datasets = {}
        for name, group in self.groups.items():
            data = {k: (dims_of(k, a[0]), np.concatenate(a)) for k, a in group["arrays"].items()}
            data.update({k: ((), np.asarray(v)) for k, v in group["meta"].items()})
            datasets[name] = xr.Dataset(data)
        attrs = dict(self.attrs)
        if list(datasets) == [""]:
            return datasets[""].assign_attrs(attrs)
        tree = {"/": xr.Dataset(attrs=attrs), **{f"/{k}": v for k, v in datasets.items()}}
        return xr.DataTree.from_dict(tree)


class ZarrStore:
    def __init__(self, path):
        import zarr

        self.path = str(path)
        self.root = zarr.open_group(self.path, mode="a", zarr_format=3)

    @property
    def attrs(self):
        return dict(self.root.attrs)

    def _group(self, name):
        return self.root if name == "" else self.root.require_group(name)

    def has_group(self, name):
        return name == "" or name in self.root.group_keys()

    def group_names(self):
        return ["", *self.root.group_keys()]

    def array_rows(self, name):
        if not self.has_group(name):
            return {}
        return {k: a.shape[0] for k, a in self._group(name).arrays() if a.ndim > 0}

    def append(self, name, meta, arrays, rows, batch_size):
        group = self._group(name)
        existing = dict(group.arrays())
        for key, value in meta.items():
            if key not in existing:
                value = np.asarray(value)
                arr = group.create_array(key, shape=(), dtype=value.dtype, dimension_names=())
                arr[...] = value
        for key, value in arrays.items():
            arr = existing.get(key)
            if arr is None:
                arr = group.create_array(
                    key, shape=(0, *value.shape[1:]), dtype=value.dtype,
                    chunks=(_chunk_rows(arrays, batch_size), *value.shape[1:]),
                    dimension_names=dims_of(key, value),
                )
            _check_shape(name, key, arr.shape[1:], value.shape[1:])
            arr.resize((rows + len(value), *value.shape[1:]))
            arr[rows:] = value

    def truncate(self, name, rows):
        for _, arr in self._group(name).arrays():
            if arr.ndim > 0 and arr.shape[0] != rows:
                arr.resize((rows, *arr.shape[1:]))

    def dtype(self, name, key):
        """The dtype of variable ``key`` of group ``name`` (None before its first batch)."""
        if not self.has_group(name):
            return None
        arrays = dict(self._group(name).arrays())
        return np.dtype(arrays[key].dtype) if key in arrays else None

    def read_rows(self, name, key, start, stop):
        """Rows ``start:stop`` of variable ``key`` of group ``name``."""
        return self._group(name)[key][start:stop]

    def commit(self, attrs):
        self.root.attrs.update(attrs)  # one metadata write: the commit point

    def close(self):
        pass


def _py(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_shape(group, key, stored, new):
    if tuple(stored) != tuple(new):
        from ..exceptions import ShapeError

        where = f" in group {group!r}" if group else ""
        raise ShapeError(
            f"Variable {key!r}{where} has shape {tuple(new)} per simulation in this batch but "
            f"{tuple(stored)} in the bank; a simulator must give fixed shapes for fixed meta "
            "variables."
        )


def store_format(path, format):
    if format is None:
        suffix = Path(path).suffix.lower()
        if suffix == ".zarr":
            return "zarr"
        if suffix in (".nc", ".nc4", ".netcdf", ".h5"):
            return "netcdf"
        raise ValueError(
            f"Cannot tell the format of {str(path)!r} from its name; name it *.zarr or *.nc, "
            "or pass format='zarr' or format='netcdf'."
        )
    if format not in ("zarr", "netcdf"):
        raise ValueError(f"format must be 'zarr', 'netcdf' or None; got {format!r}.")
    return format


def read_attrs(path, fmt):
    """The attributes of a skabi bank at ``path`` (opened read-only); None if no file."""
    if not os.path.exists(path):
        return None
    try:
        if fmt == "zarr":
            import zarr

            attrs = dict(zarr.open_group(str(path), mode="r").attrs)
        else:
            import h5netcdf

            with h5netcdf.File(str(path), mode="r") as f:
                attrs = {k: _py(v) for k, v in f.attrs.items()}
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise ValueError(
            f"{str(path)!r} exists but cannot be read as a {fmt} simulation bank ({exc}); "
            "choose another path or remove it."
        ) from exc
    if STATE_ATTR not in attrs:
        raise ValueError(
            f"{str(path)!r} exists but is not a simulation bank written by skabi.simulate; "
            "choose another path or remove it."
        )
    return attrs


def refuse_netcdf(path, attrs):
    """Refuse to write the netCDF bank ``path`` (``attrs``: its attributes, None if absent).

    HDF5 cannot be written crash-safely: a writer killed mid-write leaves the file
    unreadable, with every committed batch, and a write that fails for lack of space
    leaves h5py objects that crash the interpreter when collected. Complete netCDF banks
    are still opened (read-only) and read.
    """
    done = "" if attrs is None else (
        f" It holds an unfinished bank written by an earlier skabi; open_bank({str(path)!r}) "
        "still reads its committed simulations.")
    raise ValueError(
        f"simulate no longer writes netCDF banks ({str(path)!r}): an HDF5 file killed during "
        "a write is left unreadable, losing every committed batch, and a full disk during "
        f"an HDF5 write crashes the interpreter.{done} Write a Zarr bank instead "
        "(path='bank.zarr'; each batch is committed atomically, and a killed run resumes), "
        "then convert the finished bank if you need netCDF: xr.open_datatree('bank.zarr', "
        "engine='zarr', consolidated=False).to_netcdf('bank.nc', engine='h5netcdf').")


def open_store(path, fmt):
    if fmt != "zarr":
        refuse_netcdf(path, None)
    exists = os.path.exists(path)
    store = ZarrStore(path)
    if exists and STATE_ATTR not in store.attrs:
        store.close()
        raise ValueError(
            f"{str(path)!r} exists but is not a simulation bank written by skabi.simulate; "
            "choose another path or remove it."
        )
    return store


class WriterLock:
    """One writer per bank: a lock file beside it (``<path>.lock``), created exclusively,
    holding the writer's host and process id; removed when the writer is done.

    A second writer is refused with an error naming the first. A lock left by a process
    that is gone (same host, no such process) is stale and taken over, so a killed
    writer does not block the bank forever; a lock from another host is left to the user.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.file = self.path.rstrip("/\\") + ".lock"

    def owner(self):
        try:
            with open(self.file) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def is_stale(self, owner):
        if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
            return False
        try:
            os.kill(owner["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def __enter__(self):
        os.makedirs(os.path.dirname(os.path.abspath(self.file)), exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = self.owner()
                if self.is_stale(owner):
                    try:
                        os.remove(self.file)
                    except FileNotFoundError:
                        pass
                    continue
                raise RuntimeError(
                    f"The bank {self.path!r} is being written by process {owner.get('pid')} "
                    f"on {owner.get('host')!r} (lock file {self.file!r}); wait for it to "
                    "finish, or remove the lock file if that process is gone.") from None
            with os.fdopen(fd, "w") as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid()}, f)
            return self
        raise RuntimeError(f"Could not take the lock {self.file!r} of the bank {self.path!r}.")

    def __exit__(self, *exc):
        try:
            os.remove(self.file)
        except FileNotFoundError:
            pass
        return False
