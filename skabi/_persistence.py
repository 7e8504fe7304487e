"""Save and load fitted estimators: a zip of ``config.json`` and ``weights.pt``.

The config holds the estimator's parameters, the adapter's steps with their fitted
statistics, the network hyperparameters, the fitted sizes, the training history and the
versions that wrote it. The weights are a plain state dict read with
``torch.load(..., weights_only=True)``: loading never unpickles code. The simulator is
user code and is not saved.
"""

import io
import json
import numbers
import os
import tempfile
import zipfile

import numpy as np
import torch
from sklearn.base import clone

from ._version import __version__
from .exceptions import LoadError

__all__ = ["save", "load", "FORMAT", "FORMAT_VERSION"]

FORMAT = "skabi-estimator"
FORMAT_VERSION = 1
_COMPONENTS = ("adapter", "inference_network", "summary_network", "validation_sims",
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
    return None  # generators and other objects are not persisted


def _network_config(holder):
    if holder is None:
        return None
    params = {k: _jsonable(v) for k, v in holder.get_params(deep=False).items()}
    return {"class": type(holder).__name__, "params": params}


def _network_from_config(config, what):
    if config is None:
        return None
    from . import networks

    cls = getattr(networks, str(config.get("class")), None)
    if cls is None or config["class"] not in networks.__all__:
        raise LoadError(f"Unknown {what} class {config.get('class')!r} in the saved file; known: "
                        f"{sorted(networks.__all__)!r}.")
    return cls(**config["params"])


def save(est, path, *, training_state=None):
    """Write ``est`` to ``path`` atomically (temporary file, then rename).

    ``training_state`` (optimizer and scheduler state dicts) is stored for checkpoints.
    """
    params = {k: _jsonable(v) for k, v in est.get_params(deep=False).items()
              if k not in _COMPONENTS}
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": {"skabi": __version__, "torch": torch.__version__, "numpy": np.__version__},
        "class": type(est).__name__,
        "params": params,
        "adapter": est.adapter_.get_config(),
        # the holders that built the weights (the params may have changed since fit)
        "inference_network": _network_config(est.networks_["inference_network"]),
        "summary_network": _network_config(est.networks_["summary_network"]),
        "adapter_param": "none" if est.adapter is None else "fitted-copy",
        "fitted": {
            "role_shapes": est.role_shapes_,
            "parameter_names": est.parameter_names_,
            "n_simulations": est.n_simulations_,
            "history": est.history_.to_dict(orient="list"),
            "n_features_in": getattr(est, "n_features_in_", None),
        },
    }
    weights = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in est.approximator_.state_dict().items()}
    torch.save(state, weights)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".skabi-", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("config.json", json.dumps(config, indent=1))
            zf.writestr("weights.pt", weights.getvalue())
            if training_state is not None:
                extra = io.BytesIO()
                torch.save(training_state, extra)
                zf.writestr("training.pt", extra.getvalue())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _read(path):
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json").decode("utf-8"))
            weights = zf.read("weights.pt")
            training = zf.read("training.pt") if "training.pt" in zf.namelist() else None
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"{os.fspath(path)!r} is not a readable skabi file ({exc}).") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise LoadError(f"{os.fspath(path)!r} is not a skabi estimator file.")
    if config.get("format_version") != FORMAT_VERSION:
        raise LoadError(
            f"{os.fspath(path)!r} has format version {config.get('format_version')!r}; this "
            f"skabi ({__version__}) reads version {FORMAT_VERSION}."
        )
    return config, weights, training


def load(cls, path, *, device="auto", with_training_state=False):
    """Rebuild a fitted estimator from ``path``.

    With ``with_training_state``, return ``(estimator, training_state or None)``.
    """
    import pandas as pd

    from .adapters import Adapter
    from ._approximator import build_approximator, resolve_device

    config, weights, training = _read(path)
    try:
        est = cls(**config["params"])
        est.set_params(
            adapter=None,
            inference_network=_network_from_config(config["inference_network"], "inference network"),
            summary_network=_network_from_config(config["summary_network"], "summary network"),
        )
        adapter = Adapter.from_config(config["adapter"])
        est.adapter = None if config.get("adapter_param") == "none" else clone(adapter)
        fitted = config["fitted"]
        shapes = {k: int(v) for k, v in fitted["role_shapes"].items()}
        model = build_approximator(est.inference_network, est.summary_network, shapes)
        state = torch.load(io.BytesIO(weights), weights_only=True, map_location="cpu")
        model.load_state_dict(state)
        if with_training_state and training is not None:
            training = torch.load(io.BytesIO(training), weights_only=True, map_location="cpu")
    except LoadError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, EOFError) as exc:
        raise LoadError(f"{os.fspath(path)!r} is corrupt or incompatible: {exc}") from exc
    est.device = device
    if fitted.get("n_features_in") is not None:
        est.n_features_in_ = int(fitted["n_features_in"])
    state = dict(adapter=adapter, model=model.to(resolve_device(device)), shapes=shapes,
                 device=resolve_device(device), names=list(fitted["parameter_names"]),
                 networks={"inference_network": est.inference_network,
                           "summary_network": est.summary_network})
    rows = pd.DataFrame(fitted["history"]).to_dict("records")
    est._commit(state, rows, fitted["n_simulations"])
    return (est, training) if with_training_state else est
