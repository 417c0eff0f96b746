"""Find, download and verify weight files: --weights, $MODELZOO_WEIGHTS, the user cache, then the card's url."""
import hashlib
import os
import pickle
import shutil
import urllib.request
import zipfile
from pathlib import Path

from modelzoo import paths
from modelzoo.errors import ZooError


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


def candidates(model, entry):
    """Folders searched for `entry['file']`, in order."""
    for folder in paths.search_path("MODELZOO_WEIGHTS", "weights"):
        yield folder / model.name / entry["file"]
        yield folder / entry["file"]
    yield paths.cache_dir() / "weights" / model.name / entry["file"]


def resolve(model, variant=None, explicit=None, download=True, progress=True):
    """Path of a verified weight file for `model`; raises ZooError naming what was tried."""
    entry = model.weights_entry(variant)
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


def load_state_dict(path):
    """torch.load with weights_only=True: a pickle that would run code is refused."""
    import torch  # deferred: finding and verifying weights needs no torch

    try:
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
    """Copy verified weights from a folder into the user cache (for `modelzoo weights import`)."""
    copied = []
    for variant, entry in model.card["weights"].items():
        for source in (Path(folder) / model.name / entry["file"], Path(folder) / entry["file"]):
            if source.is_file():
                verify(source, entry["sha256"])
                target = paths.cache_dir() / "weights" / model.name / entry["file"]
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_suffix(".part")
                shutil.copyfile(source, partial)
                os.replace(partial, target)
                copied.append((variant, target))
                break
    return copied
