"""The integrity of simulation banks on disk: the commit record and block checksums.

The commit record is the root attribute ``skabi_state``, a JSON object::

    {"completed_batches": 3, "group_rows": {"N=5": 20, "N=7": 10},
     "meta_variables": ["N"],
     "checksums": {"N=5": {"block_rows": 1024, "sha256": {"x": ["9f86d081884c7d65"]}}}}

:func:`parse_state` and :func:`check_record` read it and name what is wrong with a damaged
one (:class:`~skabi.exceptions.DamagedBankError`). ``checksums`` (absent from banks
written before skabi recorded them) holds, per group and variable, the sha256 (first 16
hex digits) of each block of ``block_rows`` committed rows, as stored (dtype, little
endian): :class:`BlockDigests` keeps them up to date while a bank is written,
:class:`BlockVerifier` checks the blocks a reader reads, once each, so a missing chunk
(read back as fill values) or a changed byte raises instead of giving other data.
"""

import hashlib
import json
import math
import numbers

import numpy as np

from ..exceptions import DamagedBankError

__all__ = ["parse_state", "check_record", "digest", "BlockDigests", "BlockVerifier"]

_DIGITS = 16  # hex digits kept of each sha256
_REMEDY = "Remove the bank and simulate it again (or restore it from a copy)."


# --------------------------------------------------------------------------- the record
def _damaged(where, what):
    return DamagedBankError(f"The commit record 'skabi_state' of the bank {where}: {what} "
                            f"{_REMEDY}")


def _kind(value):
    """``value``'s kind in words, for messages."""
    names = {dict: "an object", list: "an array", type(None): "null", bool: "a boolean",
             int: "an integer", float: "a number", str: "a string"}
    return names.get(type(value), f"a {type(value).__name__}")


def _is_count(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def parse_state(text, where):
    """The commit record ``text`` (JSON) as a dict, checked field by field.

    Parameters
    ----------
    text : str or bytes
        The ``skabi_state`` attribute.
    where : str
        The bank, for messages (its path, quoted).

    Returns
    -------
    dict
        ``completed_batches`` (int), ``group_rows`` (dict of str to int),
        ``meta_variables`` (list of str or None) and, when recorded, ``checksums``.

    Raises
    ------
    DamagedBankError
        The record is not JSON, not an object, or a field is missing or of the wrong
        type; the message names the field, the value got and what was expected.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError as exc:
            raise _damaged(where, f"is not UTF-8 text ({exc}).") from None
    if not isinstance(text, str):
        raise _damaged(where, f"is {_kind(text)} ({text!r:.80}), expected JSON text.")
    try:
        state = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _damaged(where, f"is not valid JSON ({exc}); got {text!r:.80}.") from None
    if not isinstance(state, dict):
        raise _damaged(where, f"holds {_kind(state)} ({text!r:.80}), expected a JSON "
                              "object with completed_batches and group_rows.")
    _check_fields(state, where)
    return state


def _check_fields(state, where):
    for key in ("completed_batches", "group_rows"):
        if key not in state:
            raise _damaged(where, f"has no field {key!r}; it holds {sorted(state)!r}.")
    if not _is_count(state["completed_batches"]):
        raise _damaged(where, f"completed_batches is {state['completed_batches']!r}, "
                              "expected a non-negative integer.")
    rows = state["group_rows"]
    if not isinstance(rows, dict) or not all(_is_count(v) for v in rows.values()):
        raise _damaged(where, f"group_rows is {rows!r:.120}, expected an object of group "
                              "names to non-negative integers.")
    meta = state.get("meta_variables")
    if meta is not None and not (isinstance(meta, list)
                                 and all(isinstance(m, str) for m in meta)):
        raise _damaged(where, f"meta_variables is {meta!r:.80}, expected a list of names "
                              "or null.")
    if "checksums" in state:
        _check_checksums(state["checksums"], rows, where)


def _check_checksums(checksums, rows, where):
    if not isinstance(checksums, dict):
        raise _damaged(where, f"checksums is {checksums!r:.80}, expected an object of "
                              "groups.")
    for name, n in rows.items():
        entry = checksums.get(name)
        if n == 0 and entry is None:
            continue
        if not isinstance(entry, dict) or not _is_count(entry.get("block_rows")) \
                or not entry["block_rows"] or not isinstance(entry.get("sha256"), dict):
            raise _damaged(where, f"checksums of group {name!r} are {entry!r:.80}, expected "
                                  "an object with block_rows (a positive integer) and sha256.")
        blocks = math.ceil(n / entry["block_rows"])
        for key, sums in entry["sha256"].items():
            if not isinstance(sums, list) or len(sums) != blocks \
                    or not all(isinstance(s, str) for s in sums):
                raise _damaged(where, f"checksums of variable {key!r} of group {name!r} are "
                                      f"{sums!r:.80}, expected a list of {blocks} digests "
                                      f"(one per {entry['block_rows']} of its {n} rows).")


def check_record(attrs, where, batch_sizes):
    """The commit record of a bank's root attributes ``attrs``, checked against them.

    Parameters
    ----------
    attrs : dict
        The root attributes (``n``, ``batch_size``, ``skabi_state``, ...).
    where : str
        The bank, for messages.
    batch_sizes : callable
        ``batch_sizes(n, batch_size)``: the sizes of the batches of a bank.

    Returns
    -------
    dict
        The parsed record (:func:`parse_state`).

    Raises
    ------
    DamagedBankError
        ``n``, ``batch_size`` or ``seed_entropy`` are missing or not integers, more
        batches are committed than the bank has, or the committed rows of the groups do
        not add up to the committed batches.
    """
    state = parse_state(attrs.get("skabi_state"), where)
    sizes = _attr_int(attrs, "n", where), _attr_int(attrs, "batch_size", where)
    _attr_int(attrs, "seed_entropy", where)
    if not all(size > 0 for size in sizes):
        raise DamagedBankError(f"The root attributes of the bank {where} say n={sizes[0]} and "
                               f"batch_size={sizes[1]}, expected positive integers. {_REMEDY}")
    batches = batch_sizes(*sizes)
    done = state["completed_batches"]
    if done > len(batches):
        raise _damaged(where, f"completed_batches is {done}, but the bank has "
                              f"{len(batches)} batches (n={sizes[0]}, "
                              f"batch_size={sizes[1]}).")
    rows = sum(state["group_rows"].values())
    if rows != sum(batches[:done]):
        raise _damaged(where, f"group_rows add up to {rows} simulations, but "
                              f"{done} committed batches hold {sum(batches[:done])}.")
    return state


def _attr_int(attrs, key, where):
    if key not in attrs:
        raise DamagedBankError(f"The root attribute {key!r} of the bank {where} is missing, "
                               f"expected an integer. {_REMEDY}")
    value = attrs[key]
    try:
        if isinstance(value, (bool, float)):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise DamagedBankError(f"The root attribute {key!r} of the bank {where} is "
                               f"{value!r:.80}, expected an integer. {_REMEDY}") from None


# --------------------------------------------------------------------------- digests
def _stored(values, dtype):
    """``values`` as stored: ``dtype``, little endian, C order."""
    dtype = np.dtype(dtype)
    if dtype.byteorder == ">":
        dtype = dtype.newbyteorder("<")
    return np.ascontiguousarray(values, dtype=dtype)


def digest(values):
    """The digest of one block of rows: the first 16 hex digits of its sha256."""
    values = np.asarray(values)
    return hashlib.sha256(_stored(values, values.dtype).data).hexdigest()[:_DIGITS]


class BlockDigests:
    """Keeps ``state["checksums"]`` up to date while a bank's batches are appended.

    One running sha256 per group and variable covers the rows of its current block, so
    a batch adds only its own bytes. A resumed bank re-reads the committed rows of each
    unfinished block (at most one block per variable) and checks them on the way.

    Parameters
    ----------
    state : dict
        The commit record; its ``checksums`` entry is created and updated in place.
    store
        The bank's store: ``dtype(group, key)`` (the stored dtype, None before the first
        batch) and ``read_rows(group, key, start, stop)``.
    where : str
        The bank, for messages.
    """

    def __init__(self, state, store, where):
        self.record = state.setdefault("checksums", {})
        self.store, self.where = store, where
        self.open = {}  # (group, key) -> (sha256 of the current block, dtype)

    def add(self, name, arrays, start, block_rows):
        """Account for ``arrays`` (the batch's variables) appended at row ``start``."""
        entry = self.record.setdefault(name, {"block_rows": int(block_rows), "sha256": {}})
        for key, values in arrays.items():
            sums = entry["sha256"].setdefault(key, [])
            self._add(name, key, values, start, entry["block_rows"], sums)

    def _add(self, name, key, values, start, size, sums):
        hasher, dtype = self._resume(name, key, values, start, size, sums)
        values = _stored(values, dtype)
        pos, row = 0, start
        while pos < len(values):
            if row % size == 0:
                hasher = hashlib.sha256()
            take = min(len(values) - pos, size - row % size)
            hasher.update(values[pos:pos + take].data)
            sums[row // size:] = [hasher.hexdigest()[:_DIGITS]]
            pos, row = pos + take, row + take
        self.open[name, key] = hasher, dtype

    def _resume(self, name, key, values, start, size, sums):
        """The running hash of the block holding row ``start``, and the stored dtype."""
        if (name, key) in self.open:
            return self.open[name, key]
        dtype = self.store.dtype(name, key)
        dtype = np.asarray(values).dtype if dtype is None else dtype
        if start % size == 0:
            return None, dtype
        first = start - start % size
        rows = _stored(self.store.read_rows(name, key, first, start), dtype)
        hasher = hashlib.sha256(rows.data)
        if sums[start // size] != hasher.hexdigest()[:_DIGITS]:
            raise DamagedBankError(
                f"Variable {key!r} of group {name!r} of the bank {self.where}, rows "
                f"{first}-{start - 1}: the data no longer match the checksum of the commit "
                f"record, so the bank cannot be resumed. {_REMEDY}")
        return hasher, dtype


class BlockVerifier:
    """Checks the blocks of one group of a bank against the commit record, once each.

    Parameters
    ----------
    name : str
        The group.
    entry : dict
        ``state["checksums"][name]``: ``block_rows`` and ``sha256`` per variable.
    n : int
        Committed rows of the group.
    where : str
        The bank, for messages.
    """

    def __init__(self, name, entry, n, where):
        self.name, self.size, self.n, self.where = name, entry["block_rows"], n, where
        self.sums = entry["sha256"]
        self.done = set()

    def missing(self, keys):
        """Variables the record lists that the group lacks."""
        return sorted(set(self.sums) - set(keys))

    def blocks(self, index):
        """The blocks that rows ``index`` (a slice or int array) touch."""
        if isinstance(index, slice):
            start, stop, _ = index.indices(self.n)
            return range(start // self.size, math.ceil(stop / self.size))
        return np.unique(np.asarray(index) // self.size).tolist()

    def rows(self, block):
        """The row slice of ``block``."""
        return slice(block * self.size, min((block + 1) * self.size, self.n))

    def check_read(self, index, data, readers):
        """Check the blocks that rows ``index`` touch, of every variable.

        ``data`` (the rows read, per variable, or None when reading them failed) serves
        for the blocks that ``index``, a slice, covers whole; the other blocks are read
        with ``readers[key](slice)``.
        """
        start = stop = None
        if data is not None and isinstance(index, slice) and index.step in (None, 1):
            start, stop, _ = index.indices(self.n)
        for block in self.blocks(index):
            rows = self.rows(block)
            whole = start is not None and start <= rows.start and rows.stop <= stop
            for key, read in readers.items():
                if whole:
                    read = _cut(data[key], rows.start - start, rows.stop - start)
                self.check(key, block, read)

    def check(self, key, block, read):
        """Check ``block`` of variable ``key``; ``read(slice)`` reads its rows."""
        if (key, block) in self.done or key not in self.sums:
            return
        rows = self.rows(block)
        where = (f"Variable {key!r}{f' of group {self.name!r}' if self.name else ''} of the "
                 f"bank {self.where}, rows {rows.start}-{rows.stop - 1}")
        try:
            values = read(rows)
        except Exception as exc:  # noqa: BLE001 - a chunk that cannot be decoded
            raise DamagedBankError(f"{where}: cannot be read ({type(exc).__name__}: {exc}). "
                                   f"{_REMEDY}") from exc
        got, expected = digest(values), self.sums[key][block]
        if got != expected:
            raise DamagedBankError(
                f"{where}: checksum {got}, but the commit record says {expected}: the data "
                f"changed after they were written (a missing chunk reads as fill values, a "
                f"changed byte as other numbers). {_REMEDY}")
        self.done.add((key, block))


def _cut(values, start, stop):
    """A reader of ``values[start:stop]`` (rows already read), for :meth:`check`."""
    return lambda rows: values[start:stop]
