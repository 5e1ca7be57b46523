"""Checkpoints as ``.npz`` files: ``ndl.save`` / ``ndl.load`` and training state.

Only arrays are stored (no pickled code): loading uses ``allow_pickle=False``.
Nested dicts are flattened with ``/`` between levels (state-dict keys keep their
dots: ``model/modules.0.weight``). A training checkpoint adds the optimiser state,
NumPy's global RNG state and the epoch/batch position, so a resumed run continues
bit-identically on the same backend.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._arrays import to_numpy

_SEP = "/"


def _to_array(value: Any, key: str) -> np.ndarray:
    arr = to_numpy(value)
    if arr.dtype == object:
        raise TypeError(f"ndl.save cannot store {key!r} of type {type(value).__name__}: only arrays, Tensors, "
                        "numbers, strings and dicts of them are saved (no pickled objects)")
    return arr


def _flatten(obj: Mapping[str, Any], prefix: str, out: dict[str, np.ndarray]) -> None:
    for key, value in obj.items():
        key = str(key)
        if _SEP in key:
            raise ValueError(f"ndl.save: key {key!r} contains {_SEP!r}, which separates nesting levels")
        full = f"{prefix}{_SEP}{key}" if prefix else key
        if isinstance(value, Mapping):
            if not value:
                out[full + _SEP] = np.zeros(0)  # keep empty dicts (e.g. a fresh optimiser's state)
            _flatten(value, full, out)
        else:
            out[full] = _to_array(value, full)


def save(obj: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Save a (nested) dict of Tensors, NDArrays, arrays, numbers and strings to ``path`` (.npz)."""
    if not isinstance(obj, Mapping):
        raise TypeError(f"ndl.save expects a dict (e.g. model.state_dict()), got {type(obj).__name__}")
    flat: dict[str, np.ndarray] = {}
    _flatten(obj, "", flat)
    path = os.fspath(path)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **flat)
    os.replace(tmp, path)  # a crash mid-save never leaves a half-written checkpoint


def _scalar(arr: np.ndarray) -> Any:
    return arr.item() if arr.ndim == 0 else arr


_EXPECTED = "a needle checkpoint is an .npz file written by ndl.save or needle train --save"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive (an .npz), or an empty one


class CheckpointError(ValueError):
    """The file is not a checkpoint needle can read (needle never unpickles a file)."""


def _not_a_checkpoint(path: str, why: str) -> CheckpointError:
    return CheckpointError(f"{path!r} is not a needle checkpoint: {why}; {_EXPECTED}")


def _read_arrays(path: str) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(b"\x93NUMPY"):
        raise _not_a_checkpoint(path, "it is a single .npy array, not an .npz archive")
    if not head.startswith(_ZIP_MAGIC):
        raise _not_a_checkpoint(path, "it is not an .npz (zip) archive")
    flat: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                try:
                    flat[key] = npz[key]
                except ValueError as exc:  # NumPy would suggest unpickling; needle never does
                    if "pickle" not in str(exc):
                        raise
                    raise _not_a_checkpoint(path, f"entry {key!r} holds pickled Python objects") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise _not_a_checkpoint(path, f"it is damaged or truncated ({type(exc).__name__}: {exc})") from exc
    return flat


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Load what ``save`` wrote: nested dicts of NumPy arrays (0-d arrays as Python scalars).

    Raises FileNotFoundError for a missing file and CheckpointError (a ValueError)
    for a file that is not a readable needle checkpoint.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path!r}; expected an .npz file written by ndl.save")
    flat = _read_arrays(path)
    out: dict[str, Any] = {}
    for key, arr in flat.items():
        *parents, leaf = key.split(_SEP)
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        if leaf:  # an empty leaf marks an empty dict
            node[leaf] = _scalar(arr)
    return out


# -- training checkpoints --------------------------------------------------------------
def get_rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": keys, "pos": pos, "has_gauss": has_gauss, "cached_gaussian": cached}


def set_rng_state(state: Mapping[str, Any]) -> None:
    np.random.set_state((str(state["name"]), np.asarray(state["keys"], dtype=np.uint32), int(state["pos"]),
                         int(state["has_gauss"]), float(state["cached_gaussian"])))


def training_state(model: Any, optimizer: Any | None = None, **position: Any) -> dict[str, Any]:
    """Everything needed to resume: model, optimiser, RNG, and ``position`` (epoch, batch, ...)."""
    state: dict[str, Any] = {"model": model.state_dict(), "rng": get_rng_state(), "position": position}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict(model)
    return state


def restore_training_state(state: Mapping[str, Any], model: Any, optimizer: Any | None = None) -> dict[str, Any]:
    """Load ``state`` (from ``training_state``/``load``) into ``model``, ``optimizer`` and the RNG.

    Returns the saved position.
    """
    for part in ("model", "rng", "position"):
        if part not in state:
            raise KeyError(f"not a training checkpoint: no {part!r} entry (found {sorted(state)}); "
                           "write one with needle_nn.checkpoint.training_state or `needle train --save`")
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state.get("optimizer", {}), model)
    set_rng_state(state["rng"])
    return dict(state["position"])
