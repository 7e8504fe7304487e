"""Save and load a :class:`~skabi.training.state.FitState` and the estimator's parameters:
a zip of ``config.json`` and ``weights.pt``.

The config holds the estimator's parameters, the adapter's steps with their fitted
statistics, the network hyperparameters, the fitted sizes, the training history and the
versions that wrote it. The weights are a plain state dict read with
``torch.load(..., weights_only=True)``: loading never unpickles code. The simulator is
user code and is not saved.
"""

import hashlib
import io
import json
import numbers
import os
import stat
import tempfile
import warnings
import zipfile

import numpy as np
import torch
from sklearn.base import clone

from .._version import __version__
from ..exceptions import LoadError
from .model import check_device, resolve_device
from .state import CANDIDATE_COLUMNS, HISTORY_COLUMNS, FitState

__all__ = ["save", "load", "Checkpoint", "check_writable_file", "FORMAT", "FORMAT_VERSION"]

FORMAT = "skabi-estimator"
FORMAT_VERSION = 1
CHECKSUMS = "checksums.json"
#: Largest size each member may decompress to (others: as weights).
MEMBER_LIMITS = {"config.json": 16 * 2**20, CHECKSUMS: 2**16, "weights.pt": 8 * 2**30,
                 "training.pt": 16 * 2**30}
#: A member may also decompress to at most this many times the file's size, plus
#: ``EXPANSION_FLOOR`` bytes: trained weights barely compress, so a small file that
#: claims gigabytes is refused before they are allocated.
EXPANSION_RATIO = 64
EXPANSION_FLOOR = 16 * 2**20
#: Estimator parameters that are objects of their own, saved apart (or not at all).
COMPONENTS = ("adapter", "inference_network", "summary_network", "validation_sims",
               "checkpoint_path")


def _jsonable(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, (list, tuple)):  # of plain values (estimands, widths)
        items = [_jsonable(v) for v in value]
        return items if all(i is not None for i in items) else None
    return None  # generators and other objects are not persisted


def _network_config(holder):
    if holder is None:
        return None
    from ..networks.registry import network_name

    params = {k: _jsonable(v) for k, v in holder.get_params(deep=False).items()}
    return {"class": network_name(type(holder)), "params": params}


def _network_from_config(config, what):
    if config is None:
        return None
    from .. import networks  # noqa: F401  (registers skabi's own networks)
    from ..networks.registry import network_class, registered_networks

    cls = network_class(str(config.get("class")))
    if cls is None:
        raise LoadError(f"Unknown {what} class {config.get('class')!r} in the saved file; known: "
                        f"{registered_networks()!r}. A network written outside skabi loads "
                        "once its class is registered (skabi.networks.register_network) in "
                        "this process.")
    return cls(**config["params"])


def check_writable_file(path, what="path"):
    """Raise ``ValueError`` when ``path`` cannot become a file: it is a folder, or its
    folder does not exist (named as the user gave it)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{what} {path!r} is a folder; give a file name, e.g. "
                         f"{os.path.join(path, 'model.skabi')!r}.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{what} {path!r}: the folder {os.path.dirname(path) or folder!r} "
                         "does not exist; create it first.")


def _file_mode(path):
    """The permission bits ``path`` should have after a save: those of the file it replaces,
    else what creating it with ``open`` would give (0666 less the umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def check_regular_file(path, what="file"):
    """Raise ``LoadError`` when ``path`` (after symbolic links) is not a regular file: a
    device such as /dev/zero, a FIFO or a socket would be read without end or block."""
    shown = os.fspath(path)
    try:
        mode = os.stat(shown).st_mode
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise LoadError(f"{what} {shown!r} cannot be read ({exc}).") from None
    if stat.S_ISDIR(mode):
        raise LoadError(f"{what} {shown!r} is a folder, not a skabi file.")
    if not stat.S_ISREG(mode):
        raise LoadError(f"{what} {shown!r} is not a regular file (a device, FIFO or socket); "
                        "skabi reads estimators from regular files only.")


def save(path, state, *, owner, params, extra=None, training_state=None):
    """Write a fitted state and the estimator's parameters to ``path`` atomically
    (temporary file, then rename).

    Parameters
    ----------
    state : FitState
        What the fit produced (adapter, model, sizes, names, history, ...).
    owner : str
        The estimator class that wrote it (the loading class checks it).
    params : dict
        The estimator's parameters (``get_params(deep=False)``); components (adapter,
        networks, banks, paths) are not stored as parameters.
    extra : dict, optional
        Further JSON-able fitted values of the estimator (``n_features_in``,
        ``adapter_param``).
    training_state : dict, optional
        Optimizer and scheduler state dicts, for checkpoints.
    """
    extra = dict(extra or {})
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": {"skabi": __version__, "torch": torch.__version__, "numpy": np.__version__},
        "class": owner,
        "params": {k: _jsonable(v) for k, v in params.items() if k not in COMPONENTS},
        "adapter": state.adapter.get_config(),
        # the holders that built the weights (the params may have changed since fit), each
        # under its name; "networks" lists the names (files before it: the two below)
        "networks": list(state.networks),
        **{name: _network_config(holder) for name, holder in state.networks.items()},
        # the estimator's holders where the fit chose what they left to it
        "given_networks": {name: _network_config(holder)
                           for name, holder in state.given_networks.items()},
        "adapter_param": extra.pop("adapter_param", "fitted-copy"),
        "fitted": {
            "role_shapes": state.shapes,
            "parameter_names": state.names,
            "n_simulations": state.n_simulations,
            "history": {c: [row[c] for row in state.history] for c in HISTORY_COLUMNS},
            "candidates": [{c: row[c] for c in CANDIDATE_COLUMNS} for row in state.candidates],
            "size_links": state.size_links,
            **extra,
        },
    }
    weights = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.model.state_dict().items()}, weights)
    path = os.fspath(path)
    check_writable_file(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".skabi-", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, _file_mode(path))   # mkstemp makes 0600; keep what a plain write gives
    members = {"config.json": json.dumps(config, indent=1).encode("utf-8"),
               "weights.pt": weights.getvalue()}
    if training_state is not None:
        extra_bytes = io.BytesIO()
        torch.save(training_state, extra_bytes)
        members["training.pt"] = extra_bytes.getvalue()
    # content hashes of every member: a damaged file is refused, never loaded different
    members[CHECKSUMS] = json.dumps({k: hashlib.sha256(v).hexdigest()
                                     for k, v in members.items()}).encode("utf-8")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class Checkpoint:
    """Called by the training loop after each epoch: writes the state so far to ``path``.

    Parameters
    ----------
    path : str or path
    state : FitState
        The state training started from (history and counts before this fit).
    header : dict
        ``owner``, ``params`` and ``extra`` for :func:`save`.
    optimizer, scheduler
        Their state dicts are stored for ``resume``.
    source
        Counts the simulations of the epochs run (``source.simulations(epochs)``).
    world : int
        Processes that trained (each simulates its own batches).
    """

    def __init__(self, path, state, header, optimizer, scheduler, source, world=1):
        self.path, self.state, self.header = path, state, header
        self.optimizer, self.scheduler, self.source, self.world = (optimizer, scheduler,
                                                                   source, world)

    def __call__(self, rows):
        state = self.state.advanced(rows, self.source.simulations(rows) * self.world)
        save(self.path, state, **self.header,
             training_state={"optimizer": self.optimizer.state_dict(),
                             "scheduler": self.scheduler.state_dict()})


def _member(zf, name, path, file_size):
    """One member's bytes, refused before decompressing past its limit (a fixed one per
    member, and one proportional to the file's size)."""
    infos = [i for i in zf.infolist() if i.filename == name]
    if len(infos) > 1:
        raise LoadError(f"{path!r} holds {len(infos)} members named {name!r}; a skabi file "
                        "holds one (the file was altered).")
    if not infos:
        return None
    limit = min(MEMBER_LIMITS.get(name, MEMBER_LIMITS["weights.pt"]),
                EXPANSION_FLOOR + EXPANSION_RATIO * file_size)
    if infos[0].file_size > limit:
        raise LoadError(f"{path!r}: member {name!r} would decompress to "
                        f"{infos[0].file_size:,} bytes, over the limit of {limit:,}.")
    with zf.open(infos[0]) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise LoadError(f"{path!r}: member {name!r} decompresses past the limit of "
                        f"{limit:,} bytes (its header understates its size).")
    return data


def _read(path):
    shown = os.fspath(path)
    check_regular_file(path)
    try:
        size = os.path.getsize(path)
        with zipfile.ZipFile(path) as zf:
            raw = {name: _member(zf, name, shown, size)
                   for name in ("config.json", "weights.pt", "training.pt", CHECKSUMS)}
    except (FileNotFoundError, LoadError):
        raise
    except Exception as exc:  # noqa: BLE001 - zip, zlib, IO and codec errors alike
        raise LoadError(f"{shown!r} is not a readable skabi file ({type(exc).__name__}: "
                        f"{exc}).") from None
    if raw["config.json"] is None or raw["weights.pt"] is None:
        raise LoadError(f"{shown!r} is not a skabi estimator file (it lacks config.json or "
                        "weights.pt).")
    if raw[CHECKSUMS] is not None:   # files written before checksums have none
        try:
            sums = json.loads(raw[CHECKSUMS].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LoadError(f"{shown!r} has an unreadable checksum record ({exc}).") from None
        for name, data in raw.items():
            if name == CHECKSUMS or (data is None and name not in sums):
                continue
            if not isinstance(sums, dict) or data is None or \
                    sums.get(name) != hashlib.sha256(data).hexdigest():
                raise LoadError(f"{shown!r} is damaged: member {name!r} does not match its "
                                "checksum.")
    try:
        config = json.loads(raw["config.json"].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"{shown!r} has an unreadable config.json ({exc}).") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise LoadError(f"{shown!r} is not a skabi estimator file.")
    if config.get("format_version") != FORMAT_VERSION:
        raise LoadError(
            f"{shown!r} has format version {config.get('format_version')!r}; this "
            f"skabi ({__version__}) reads version {FORMAT_VERSION}."
        )
    versions = config.get("versions") if isinstance(config.get("versions"), dict) else {}
    now = {"skabi": __version__, "torch": torch.__version__}
    differ = {k: versions.get(k) for k in now if versions.get(k) != now[k]}
    if differ:
        warnings.warn(f"{shown!r} was written with {differ} (here: "
                      f"{ {k: now[k] for k in differ} }); it loads, but results may differ.",
                      UserWarning, stacklevel=4)
    return config, raw["weights.pt"], raw["training.pt"]


def _tensors(data, what, path):
    """A plain dict of tensors, loaded without unpickling code; refused otherwise."""
    try:
        out = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch's unpickler raises many kinds
        raise LoadError(
            f"{path!r}: {what} is not a plain file of tensors ({type(exc).__name__}); skabi "
            "never unpickles code, so such a file is refused.") from None
    return out


def _fail(path, what):
    raise LoadError(f"{os.fspath(path)!r} is corrupt or was altered: {what}.")


def _is_int(value, low=0):
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_number_or_none(value):
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _check_fitted(fitted, path):
    """The ``fitted`` record of a config, every value checked against what :func:`save`
    writes; the first bad one is named."""
    if not isinstance(fitted, dict):
        _fail(path, f"'fitted' is a {type(fitted).__name__}, not a record")
    shapes = fitted.get("role_shapes")
    if not isinstance(shapes, dict) or not shapes or not all(
            isinstance(k, str) and _is_int(v, 1) for k, v in shapes.items()):
        _fail(path, f"role_shapes {shapes!r} is not a record of role names to positive sizes")
    names = fitted.get("parameter_names")
    if names is not None and (not isinstance(names, list) or not all(
            isinstance(n, str) and n for n in names) or len(set(names)) != len(names)):
        _fail(path, f"parameter_names {names!r} is not a list of distinct names")
    if not _is_int(fitted.get("n_simulations")):
        _fail(path, f"n_simulations {fitted.get('n_simulations')!r} is not a count >= 0")
    history = fitted.get("history")
    if not isinstance(history, dict) or not set(HISTORY_COLUMNS) <= set(history) or not all(
            isinstance(v, list) for v in history.values()):
        _fail(path, f"the history is not a record of the columns {HISTORY_COLUMNS}")
    lengths = {k: len(v) for k, v in history.items()}
    if len(set(lengths.values())) > 1:
        _fail(path, f"the history's columns have unequal lengths {lengths}")
    if not all(_is_number_or_none(v) for column in history.values() for v in column):
        _fail(path, "the history holds values that are not numbers")
    candidates = fitted.get("candidates", [])   # files before it: none
    if not isinstance(candidates, list) or not all(
            isinstance(row, dict) and set(row) == set(CANDIDATE_COLUMNS)
            and isinstance(row["choice"], str) and isinstance(row["kept"], bool)
            and _is_int(row["epochs"]) and all(
                _is_number_or_none(row[c]) for c in ("val_loss", "val_log_density", "seconds"))
            for row in candidates):
        _fail(path, f"the candidates {candidates!r} are not rows of the columns "
                    f"{CANDIDATE_COLUMNS}")
    links = fitted.get("size_links")
    if links is not None and not isinstance(links, dict):
        _fail(path, f"size_links {links!r} is not a record")
    n_features = fitted.get("n_features_in")
    if n_features is not None and not _is_int(n_features, 1):
        _fail(path, f"n_features_in {n_features!r} is not a positive integer")


def _check_sizes(configs, tensors, path):
    """Refuse network hyperparameters no model of these weights could have: every integer
    (a width, a depth, a count of bins or steps) is at most the number of weights."""
    bound = max(1024, sum(v.numel() for v in tensors.values() if torch.is_tensor(v)))
    for name, config in configs.items():
        if config is None:
            continue
        if not isinstance(config, dict) or not isinstance(config.get("params"), dict):
            _fail(path, f"the {name} record is not a class with parameters")
        for key, value in config["params"].items():
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, int) and not isinstance(v, bool) and abs(v) > bound
                   for v in values):
                _fail(path, f"{name} parameter {key}={value!r} is larger than any network "
                      f"of the {bound:,} saved weights could have")


def _check_structure(skeleton, tensors, path):
    """Compare the names, shapes and dtypes of the saved weights with those of the model
    the config describes (built on the meta device: no memory), before building it."""
    expected = skeleton.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        _fail(path, f"the weights do not belong to the model its config describes (missing "
              f"{missing[:3]}, unexpected {unexpected[:3]})")
    for key, value in expected.items():
        got = tensors[key]
        if not torch.is_tensor(got) or tuple(got.shape) != tuple(value.shape) or \
                got.dtype != value.dtype:
            shown = (tuple(got.shape), got.dtype) if torch.is_tensor(got) else type(got)
            _fail(path, f"weight {key!r} is {shown}, the model's is "
                  f"{(tuple(value.shape), value.dtype)}")


def load(path, *, device="auto", build, owner=None):
    """Read a file written by :func:`save`.

    Parameters
    ----------
    build : callable
        ``build(networks, shapes, params)`` rebuilds the torch model the weights belong
        to (``params``: the estimator parameters saved with it).
    owner : str, optional
        The class loading it: a file another estimator class wrote is refused.

    Returns
    -------
    header : dict
        ``owner`` (class name), ``params``, ``adapter`` (the unfitted adapter parameter, or
        None when the estimator was fitted without one), ``extra`` (further fitted values).
    state : FitState
    training_state : dict or None
        Optimizer and scheduler state dicts of a checkpoint.
    """
    from ..adapters import adapter_from_config

    check_device(device)              # a device problem is named before anything is read
    config, weights, training = _read(path)
    if not isinstance(config.get("class"), str):
        _fail(path, f"its 'class' is {config.get('class')!r}, not an estimator class name")
    if owner is not None and config["class"] != owner:
        raise LoadError(f"{os.fspath(path)!r} holds a {config['class']}, not a {owner}; "
                        f"load it with {config['class']}.load.")
    if not isinstance(config.get("params"), dict):
        _fail(path, "it lacks the estimator's parameters")
    try:
        _check_fitted(config.get("fitted"), path)
        tensors = _tensors(weights, "weights.pt", os.fspath(path))
        if not isinstance(tensors, dict):
            _fail(path, "weights.pt is not a dict of tensors")
        bad = [k for k, v in tensors.items()
               if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise LoadError(f"{os.fspath(path)!r} holds non-finite weights ({bad[:3]}); a "
                            "model with NaN or infinite weights is refused.")
        names = config.get("networks", ["inference_network", "summary_network"])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            _fail(path, f"its network list {names!r} is not a list of names")
        _check_sizes({name: config[name] for name in names}, tensors, path)
        networks = {name: _network_from_config(config[name], name.replace("_", " "))
                    for name in names}
        given = config.get("given_networks", {})   # files before it: none
        if not isinstance(given, dict) or not set(given) <= set(names):
            _fail(path, f"its given networks {given!r} are not networks it holds")
        given = {name: _network_from_config(value, name.replace("_", " "))
                 for name, value in given.items()}
        adapter = adapter_from_config(config["adapter"])
        fitted = dict(config["fitted"])
        shapes = dict(fitted.pop("role_shapes"))
        with torch.device("meta"):
            skeleton = build(networks, shapes, dict(config["params"]))
        _check_structure(skeleton, tensors, path)
        model = build(networks, shapes, dict(config["params"]))
        model.load_state_dict(tensors)
        if training is not None:
            training = _tensors(training, "training.pt", os.fspath(path))
        history = fitted.pop("history")
        rows = [dict(zip(history, values)) for values in zip(*history.values())]
        device = resolve_device(device)
        state = FitState(adapter=adapter, model=model.to(device), shapes=shapes, device=device,
                         names=fitted.pop("parameter_names"), networks=networks,
                         given_networks=given, candidates=fitted.pop("candidates", []),
                         history=rows, n_simulations=fitted.pop("n_simulations"),
                         size_links=fitted.pop("size_links", None) or {})
        header = {"owner": config["class"], "params": dict(config["params"]),
                  "adapter": None if config.get("adapter_param") == "none" else clone(adapter),
                  "extra": fitted}
    except LoadError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, EOFError, AttributeError,
            IndexError, NotImplementedError, OverflowError, RecursionError) as exc:
        raise LoadError(f"{os.fspath(path)!r} is corrupt or incompatible: {exc}") from exc
    return header, state, training
