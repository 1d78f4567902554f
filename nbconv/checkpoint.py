"""Checkpoints: a model's parameters, its running statistics, the optimizer's state and free
metadata (epoch, history, ...) in one ``.npz`` file, written atomically.

    from nbconv import checkpoint
    checkpoint.save("run.npz", model, optimizer, epoch=3, history=history.to_dict())
    meta = checkpoint.load("run.npz", model, optimizer)     # -> {"epoch": 3, "history": {...}}

What the file holds (``numpy.load(path)`` shows it; nothing is pickled):

    param/<name>        each array of ``model.named_parameters()``
    buffer/<name>       each array of ``model.named_buffers()`` (batch norm's running statistics)
    optimizer/<i>       the arrays of ``optimizer.state_dict()``
    meta/<i>            the arrays inside the metadata
    structure           a JSON text: the optimizer state and the metadata with every array
                        replaced by a reference to its entry above

Atomic write: the file is written to a temporary file in the same directory, flushed to disk
(fsync) and renamed over ``path`` with ``os.replace``, which is atomic.  A run interrupted while
saving leaves either the old checkpoint or the new one, never half of one.

``load`` refuses a checkpoint whose parameter or buffer names or shapes differ from the model's
with a ValueError naming the array and both shapes, and checks everything before it changes
anything.  It copies the arrays IN PLACE into the live arrays of the model (``param.data[...] =``
and ``buffer[...] =``), so layers and the optimizer keep the arrays they hold.

A model on the GPU (``.to("cuda")``) is saved from host copies of its device arrays, and loading
copies the saved arrays into its device arrays: the file is the same on either device.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from . import devices

__all__ = ["save", "load", "read_meta", "FORMAT_VERSION"]

FORMAT_VERSION = 1


# ---------------------------------------------------------------- nested state <-> JSON + arrays

def _encode(obj, arrays: dict, prefix: str, where: str):
    """``obj`` as JSON-able data; each numpy array is stored in ``arrays`` under ``prefix/<i>``
    and replaced by ``{"__ndarray__": key}``.  Tuples and dicts with non-string keys survive
    the round trip; anything else that JSON cannot hold is refused with a TypeError."""
    if isinstance(obj, np.ndarray):
        key = f"{prefix}/{len(arrays)}"
        arrays[key] = obj
        return {"__ndarray__": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, arrays, prefix, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else {"__tuple__": items}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, arrays, prefix, f"{where}[{k!r}]") for k, v in obj.items()}
        return {"__items__": [[_encode(k, arrays, prefix, f"{where} key"),
                               _encode(v, arrays, prefix, f"{where}[{k!r}]")] for k, v in obj.items()]}
    raise TypeError(f"cannot save {where} of type {type(obj).__name__} in a checkpoint: use arrays, "
                    f"numbers, strings, None, lists, tuples and dicts")


def _decode(obj, npz):
    if isinstance(obj, list):
        return [_decode(v, npz) for v in obj]
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return np.array(npz[obj["__ndarray__"]])
        if "__tuple__" in obj:
            return tuple(_decode(v, npz) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {_hashable(_decode(k, npz)): _decode(v, npz) for k, v in obj["__items__"]}
        return {k: _decode(v, npz) for k, v in obj.items()}
    return obj


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


# ---------------------------------------------------------------- save

def _write_arrays(file, arrays: dict) -> None:
    """Write ``arrays`` as an .npz archive into the open binary ``file``."""
    np.savez(file, **arrays)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); silently skipped where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:                      # pragma: no cover  (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:                      # pragma: no cover
        pass
    finally:
        os.close(fd)


def save(path, model, optimizer=None, **meta) -> str:
    """Write ``model``'s parameters and buffers, ``optimizer.state_dict()`` (if given) and ``meta``
    (numbers, strings, lists, dicts, arrays) to ``path`` atomically; returns the path.

    The file is written exactly at ``path`` (no ``.npz`` is appended).
    """
    path = os.fspath(path)
    arrays = {f"param/{name}": devices.to_host(p.data) for name, p in model.named_parameters()}
    arrays.update({f"buffer/{name}": devices.to_host(b) for name, b in model.named_buffers()})
    structure = {"format_version": FORMAT_VERSION,
                 "parameters": [name for name, _ in model.named_parameters()],
                 "buffers": [name for name, _ in model.named_buffers()],
                 "optimizer": None if optimizer is None else _encode(optimizer.state_dict(), arrays,
                                                                     "optimizer", "optimizer state"),
                 "meta": _encode(meta, arrays, "meta", "meta")}
    arrays["structure"] = np.array(json.dumps(structure))

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            _write_arrays(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)
    return path


# ---------------------------------------------------------------- load

def _read(path):
    path = os.fspath(path)
    with np.load(path, allow_pickle=False) as npz:
        if "structure" not in npz.files:
            raise ValueError(f"{path} is not an nbconv checkpoint (it has no 'structure' entry)")
        structure = json.loads(str(npz["structure"]))
        version = structure.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"{path} has checkpoint format version {version}; this nbconv reads "
                             f"version {FORMAT_VERSION}")
        params = {name: np.array(npz[f"param/{name}"]) for name in structure["parameters"]}
        buffers = {name: np.array(npz[f"buffer/{name}"]) for name in structure["buffers"]}
        opt_state = None if structure["optimizer"] is None else _decode(structure["optimizer"], npz)
        meta = _decode(structure["meta"], npz)
    return params, buffers, opt_state, meta


def _match(kind: str, saved: dict, live: list, path: str) -> list:
    """Pairs (live array, saved array) after checking that names and shapes agree exactly."""
    live_names = [name for name, _ in live]
    missing = [name for name in live_names if name not in saved]
    unexpected = [name for name in saved if name not in dict(live)]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"the model's {kind} {', '.join(map(repr, missing))} "
                         f"{'is' if len(missing) == 1 else 'are'} not in the checkpoint")
        if unexpected:
            parts.append(f"the checkpoint's {kind} {', '.join(map(repr, unexpected))} "
                         f"{'is' if len(unexpected) == 1 else 'are'} not in the model")
        raise ValueError(f"cannot load {path}: {'; '.join(parts)} (a checkpoint of another architecture?)")
    pairs = []
    for name, array in live:
        if saved[name].shape != array.shape:
            raise ValueError(f"cannot load {path}: {kind} {name!r} has shape {saved[name].shape} in the "
                             f"checkpoint but {array.shape} in the model")
        pairs.append((array, saved[name]))
    return pairs


def load(path, model, optimizer=None) -> dict:
    """Restore ``model`` (and ``optimizer``, if given) from ``path``; returns the metadata dict.

    Every name and shape is checked before anything changes; then the arrays are copied in place
    into the model's parameter and buffer arrays.  Asking for the optimizer state of a checkpoint
    saved without one is a ValueError.
    """
    path = os.fspath(path)
    params, buffers, opt_state, meta = _read(path)
    pairs = _match("parameter", params, [(n, p.data) for n, p in model.named_parameters()], path)
    pairs += _match("buffer", buffers, list(model.named_buffers()), path)
    if optimizer is not None:
        if opt_state is None:
            raise ValueError(f"cannot load the optimizer state from {path}: it was saved without an optimizer")
        optimizer.load_state_dict(opt_state)
    for live, saved in pairs:
        if isinstance(live, np.ndarray):
            np.copyto(live, saved, casting="same_kind")
        else:                           # a device array: the same cast, then a host-to-device copy
            devices.assign(live, saved.astype(live.dtype, casting="same_kind"))
    return meta


def read_meta(path) -> dict:
    """The metadata of a checkpoint, without touching any model."""
    return _read(path)[3]
