"""A folder of estimator files bound into one unit by a checksummed record.

An estimator made of others (:class:`~skabi.AmortizedJoint`: a posterior and a likelihood)
saves each part as its own file (which that part's ``load`` reads alone) and a JSON record
naming the parts with their SHA-256 digests; the record holds a digest of itself too.

- **Atomic against errors.** :func:`save_bundle` writes every part and the record under
  temporary names first; only when all are written are they renamed into place. An error
  while writing (a full disk, a failing part) leaves the folder as it was.
- **Never mixed.** A process killed between the renames, a part swapped for a foreign one,
  a flipped bit in any file: :func:`read_bundle` compares every part with its digest and
  refuses the folder, naming the file, rather than loading a different estimator.
- **Links are replaced, never followed.** Renaming over a symbolic link replaces the link,
  so a save never writes through a link into a file elsewhere.
"""

import hashlib
import json
import os
import secrets

from ..exceptions import LoadError
from .persistence import _file_mode, check_regular_file

__all__ = ["save_bundle", "read_bundle", "RECORD_LIMIT", "BUNDLE_VERSION"]

#: Largest record read (a record is a few hundred bytes).
RECORD_LIMIT = 1 << 20
#: Version of records with digests (records before it have no ``format_version``).
BUNDLE_VERSION = 2


def _digest(path):
    check_regular_file(path, "part")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sealed(body):
    """The canonical bytes of ``body`` whose digest the record carries."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def save_bundle(path, parts, record, *, name, kind):
    """Write the parts and the record ``name`` into the folder ``path`` as one unit.

    Parameters
    ----------
    path : str or path
        The folder (created if needed).
    parts : dict of str to callable
        ``{file name: write}``; ``write(file_path)`` writes that part to the path given.
    record : dict
        JSON-able content of the record (e.g. the parameters).
    name : str
        The record's file name, e.g. ``"joint.json"``.
    kind : str
        The record's ``format``, which :func:`read_bundle` checks.
    """
    path = os.fspath(path)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ValueError(f"path {path!r} exists and is not a folder; a bundle is a folder.")
    os.makedirs(path, exist_ok=True)
    token = secrets.token_hex(6)
    final = {f: os.path.join(path, f) for f in [*parts, name]}
    temporary = {f: os.path.join(path, f".{f}.{token}.tmp") for f in final}
    try:
        for file, write in parts.items():
            write(temporary[file])
        body = {"format": kind, "format_version": BUNDLE_VERSION, **record,
                "files": {f: _digest(temporary[f]) for f in parts}}
        body["checksum"] = hashlib.sha256(_sealed(body)).hexdigest()
        with open(temporary[name], "w", encoding="utf-8") as f:
            json.dump(body, f, indent=1)
        for file in final:   # all written: now the renames (a link is replaced, not followed)
            os.chmod(temporary[file], _file_mode(final[file]) if not os.path.islink(
                final[file]) else _file_mode(temporary[file]))
            os.replace(temporary[file], final[file])
    finally:
        for tmp in temporary.values():
            if os.path.lexists(tmp):
                os.remove(tmp)


def read_bundle(path, *, name, kind, owner):
    """The record ``name`` of the folder ``path``, every part checked against its digest.

    Returns the record without its ``files`` and ``checksum`` entries. A record written
    before digests existed (no ``format_version``) is returned as it is. ``owner`` names
    the class in messages (``"AmortizedJoint"``).
    """
    shown = os.fspath(path)
    record = os.path.join(shown, name)
    try:
        check_regular_file(record, f"{name} of the folder")
        with open(record, "rb") as f:
            raw = f.read(RECORD_LIMIT + 1)
        if len(raw) > RECORD_LIMIT:
            raise OSError(f"larger than {RECORD_LIMIT:,} bytes; a record is a few hundred")
        body = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:   # JSON and UTF-8 errors too
        raise LoadError(f"{shown!r} is not a folder written by {owner}.save "
                        f"({type(exc).__name__}: {exc}).") from None
    if not isinstance(body, dict) or body.get("format") != kind:
        raise LoadError(f"{shown!r}: {name} is not a record of {owner}.")
    if "format_version" not in body and "checksum" not in body and "files" not in body:
        return body   # written before records carried digests
    if body.get("format_version") != BUNDLE_VERSION:
        raise LoadError(f"{shown!r}: {name} has format version "
                        f"{body.get('format_version')!r}; this skabi reads {BUNDLE_VERSION}.")
    sealed = {k: v for k, v in body.items() if k != "checksum"}
    if body.get("checksum") != hashlib.sha256(_sealed(sealed)).hexdigest():
        raise LoadError(f"{shown!r} is damaged: {name} does not match its checksum.")
    files = body.get("files")
    if not isinstance(files, dict) or not files:
        raise LoadError(f"{shown!r} is damaged: {name} names no parts.")
    for file, digest in files.items():
        part = os.path.join(shown, file)
        if os.path.basename(file) != file or not os.path.exists(part):
            raise LoadError(f"{shown!r} lacks {file!r}, which {name} names.")
        if _digest(part) != digest:
            raise LoadError(
                f"{shown!r}: {file!r} is not the file {name} was saved with (damaged, "
                "replaced by another, or left by an interrupted save); save the estimator "
                "again.")
    return {k: v for k, v in sealed.items() if k != "files"}
