"""Find, download, verify and read weight files: --weights, $MODELZOO_WEIGHTS, the user cache, then the card's url.

A weights variant of a card is one file entry (file, url, sha256, size), several (`files`: role -> file entry),
or none (a model that needs no weights). A file entry may say how to read it: `format` torch (default: torch.load
with weights_only=True) or hdf5 (a flat {"group/.../dataset": numpy array} dict, e.g. Keras .h5 weights),
`key` (the checkpoint is a dict holding the state dict under that key), `pickle_globals` (dotted names of the
classes the restricted unpickler may construct besides tensors and containers; nothing else is unpickled) and
`pickle_placeholders` (classes a checkpoint names but nothing here uses, such as a training framework's callback
class as a dict key: read as empty stand-ins, so that framework need not be installed).

Every file's subnormal float values (nonzero, below float32's normal range) are read as zero: training with weight
decay leaves some checkpoints full of them (up to half of a checkpoint's values in this zoo), they change no
output, and CPU arithmetic on them is 20-100x slower.
"""
import hashlib
import importlib
import logging
import os
import pickle
import shutil
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from modelzoo import paths
from modelzoo.errors import ZooError

logger = logging.getLogger(__name__)
TINY = float(np.finfo(np.float32).tiny)  # the smallest normal float32
READING = 2  # how files are read (2: subnormals as zero); part of compiled artifacts' cache key


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path, expected):
    actual = sha256(path)
    if actual != expected:
        raise ZooError(f"{path}: sha256 is {actual}, the card expects {expected}")
    return path


def files(model, variant=None):
    """{role: file entry} of a weights variant: {None: entry} for a single file, {} for a variant without weights."""
    entry = model.weights_entry(variant)
    if "files" in entry:
        return dict(entry["files"])
    return {None: entry} if "file" in entry else {}


def sha256s(model, variant=None):
    """The sha256 of a variant's weights: one string (single file), {role: sha256} (files), None (no weights)."""
    entries = files(model, variant)
    if None in entries:
        return entries[None]["sha256"]
    return {role: entry["sha256"] for role, entry in entries.items()} or None


def candidates(model, entry):
    """Folders searched for `entry['file']`, in order."""
    for folder in paths.search_path("MODELZOO_WEIGHTS", "weights"):
        yield folder / model.name / entry["file"]
        yield folder / entry["file"]
    yield paths.cache_dir() / "weights" / model.name / entry["file"]


def resolve(model, variant=None, explicit=None, download=True, progress=True):
    """A variant's verified weights: a Path (single file), {role: Path} (files) or None (a variant without
    weights); raises ZooError naming what was tried. `explicit` (--weights): a file, or a folder holding them."""
    entries = files(model, variant)
    if explicit and not entries:
        raise ZooError(f"--weights: {model.name} variant '{variant or model.default_variant}' has no weights")
    if explicit and len(entries) > 1 and not Path(explicit).is_dir():
        raise ZooError(f"--weights: {model.name} variant '{variant or model.default_variant}' has several files "
                       f"({', '.join(e['file'] for e in entries.values())}); pass the folder holding them")
    found = {role: resolve_file(model, entry, explicit, download, progress) for role, entry in entries.items()}
    if not found:
        return None
    return found[None] if None in found else found


def resolve_file(model, entry, explicit=None, download=True, progress=True):
    """Path of one verified weight file (a card file entry)."""
    if explicit:
        path = Path(explicit)
        if path.is_dir():
            path = path / entry["file"]
        if not path.is_file():
            raise ZooError(f"--weights: {path}: file not found")
        return verify(path, entry["sha256"])
    for path in candidates(model, entry):
        if path.is_file():
            return verify(path, entry["sha256"])
    target = paths.cache_dir() / "weights" / model.name / entry["file"]
    if not download or paths.offline():
        why = " (offline: MODELZOO_OFFLINE is set)" if download else ""
        raise ZooError(f"{model.name}: weights {entry['file']} not found{why}; {remedy(entry)}")
    try:
        return fetch(entry["url"], target, entry["sha256"], progress=progress)
    except ZooError as exc:
        raise ZooError(f"{exc}; {remedy(entry)}") from None


def remedy(entry):
    """How to provide a weights file by hand (offline, or when the download fails)."""
    return (f"download {entry['url']} elsewhere, then `modelzoo weights import DIR` (the folder holding "
            f"{entry['file']}), or set MODELZOO_WEIGHTS=DIR, or pass --weights PATH")


def fetch(url, target, expected, progress=True):
    """Download to a temporary file, check the hash, then rename: never a half-written or wrong file in place."""
    from tqdm import tqdm  # deferred: only a download shows progress

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {target.name}",
                      disable=not progress, leave=False) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
        actual = sha256(partial)
        if actual != expected:
            raise ZooError(f"{url}: downloaded file has sha256 {actual}, the card expects {expected}")
        os.replace(partial, target)
    except OSError as exc:
        raise ZooError(f"{url}: download failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return target


def load(model, variant=None, resolved=None):
    """What Model.load_weights receives for resolve()'s result: a state dict (single file), {role: state dict}
    (files) or None (no weights)."""
    entries = files(model, variant)
    if resolved is None:
        return None
    if isinstance(resolved, dict):
        return {role: read(resolved[role], entries[role], model.card_path) for role in entries}
    return read(resolved, entries[None], model.card_path)


def read(path, entry, card="card"):
    """One weights file as its entry says: format, key and pickle_globals (see the module's docstring)."""
    if entry.get("format", "torch") == "hdf5":
        state = load_hdf5(path)
    else:
        allowed = allowed_globals(entry.get("pickle_globals") or [], card)
        state = load_state_dict(path, allowed + placeholders(entry.get("pickle_placeholders") or []))
    key = entry.get("key")
    if key is not None:
        if key not in state:
            raise ZooError(f"{path}: no '{key}' in the checkpoint (the card's key; it holds: "
                           f"{', '.join(map(str, list(state)[:8]))})")
        state = state[key]
        if not isinstance(state, dict):
            raise ZooError(f"{path}: '{key}' holds a {type(state).__name__}, not a state dict")
    return flush_subnormals(state, path)


def flush_subnormals(state, path):
    """The state dict with its subnormal float values set to zero (see the module's docstring)."""
    flushed, count = {}, 0
    for name, value in state.items():
        if hasattr(value, "is_floating_point") and value.is_floating_point():  # a torch tensor
            tiny = (value != 0) & (value.abs() < TINY)
            count += int(tiny.sum())
            value = value.masked_fill(tiny, 0)
        elif isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
            tiny = (value != 0) & (np.abs(value) < TINY)
            count += int(tiny.sum())
            value = np.where(tiny, value.dtype.type(0), value)
        flushed[name] = value
    if count:
        logger.info("%s: %d subnormal weights read as zero", path, count)
    return flushed


def allowed_globals(names, card="card"):
    """The classes named in a file entry's pickle_globals (dotted import paths)."""
    found = []
    for name in names:
        module, _, attribute = name.rpartition(".")
        try:
            found.append(getattr(importlib.import_module(module), attribute))
        except (ImportError, AttributeError, ValueError):
            raise ZooError(f"{card}: weights: pickle_globals: cannot import '{name}'") from None
    return found


def placeholders(names):
    """(stand-in, dotted name) pairs for torch's safe_globals: an empty class answering to each name."""
    return [(type(name.rpartition(".")[2], (), {"__module__": name.rpartition(".")[0]}), name) for name in names]


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def load_hdf5(path):
    """An HDF5 file (Keras .h5 weights) as a flat {"group/.../dataset": numpy array} dict."""
    import h5py

    state = {}
    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(lambda name, item: state.__setitem__(name, item[()])
                              if isinstance(item, h5py.Dataset) else None)
    except OSError as exc:
        raise ZooError(f"{path}: not a readable HDF5 weights file ({str(exc).splitlines()[0]})") from None
    if not state:
        raise ZooError(f"{path}: the HDF5 file holds no datasets")
    return state


def load_state_dict(path, allowed=()):
    """torch.load with weights_only=True: a pickle that would run code is refused; `allowed`: classes the
    unpickler may construct besides tensors and containers (a card's pickle_globals)."""
    import torch  # deferred: finding and verifying weights needs no torch

    with open(path, "rb") as handle:
        if handle.read(8) == HDF5_SIGNATURE:
            raise ZooError(f"{path}: an HDF5 file, not a torch checkpoint (the card's file entry needs format: hdf5)")
    try:
        with torch.serialization.safe_globals(list(allowed)):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe pickle"
        raise ZooError(f"{path}: refused to load (weights_only=True): {first}") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ZooError(f"{path}: not a readable weights file ({type(exc).__name__}: "
                       f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'truncated'})") from None
    if not isinstance(state, dict):
        raise ZooError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def import_folder(model, folder):
    """Copy verified weights from a folder into the user cache (for `modelzoo weights import`); returns
    [(variant or variant/role, target)]."""
    copied = []
    for variant in model.variants:
        for role, entry in files(model, variant).items():
            label = f"{variant}/{role}" if role else variant
            copied += _import_file(model, folder, entry, label)
    return copied


def _import_file(model, folder, entry, label):
    for source in (Path(folder) / model.name / entry["file"], Path(folder) / entry["file"]):
        if source.is_file():
            verify(source, entry["sha256"])
            target = paths.cache_dir() / "weights" / model.name / entry["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".part")
            shutil.copyfile(source, partial)
            os.replace(partial, target)
            return [(label, target)]
    return []
