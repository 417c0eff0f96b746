"""The artifact cache seen by a user: what is in it (`modelzoo cache list`) and what can go (`cache prune`).

An artifact is a folder with a manifest (see compile.py); its cache key holds the library versions it was
built with, so after an upgrade the old folders are never used again: those are what prune removes, with
the ones unused for longer than a given number of days.
"""
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from modelzoo import compile as compiler
from modelzoo import paths
from modelzoo.machine import versions
from modelzoo.version import __version__

LABEL = re.compile(r"^(?P<model>[^/]+)/(?P<build>.+) \((?P<backend>\S+) (?P<dtype>\S+)\)$")


@dataclass
class Artifact:
    folder: Path
    model: str
    build: str
    backend: str
    dtype: str
    size: int
    versions: dict
    last_used: float
    current: bool  # built with the library versions installed now

    def as_dict(self):
        return {"folder": str(self.folder), "model": self.model, "build": self.build, "backend": self.backend,
                "dtype": self.dtype, "size": self.size, "versions": self.versions,
                "last_used": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.last_used)),
                "current": self.current}


def default_root():
    return paths.cache_dir() / "artifacts"


def artifacts(root=None):
    """Every artifact under `root` (default: the user cache's artifacts), sorted by folder."""
    installed = {"modelzoo": __version__, **versions(*compiler.LIBRARIES)}
    found = []
    for manifest in sorted(Path(root or default_root()).glob(f"*/*/{compiler.MANIFEST}")):
        try:
            data = json.loads(manifest.read_text())
            inputs = data["inputs"]
        except (OSError, ValueError, KeyError):
            continue  # not an artifact this version wrote; compile rebuilds or ignores it
        label = LABEL.match(data.get("label", "")) or {}
        built = {"modelzoo": inputs.get("modelzoo"), **inputs.get("versions", {})}
        found.append(Artifact(manifest.parent, inputs.get("model") or manifest.parent.parent.name,
                              label["build"] if label else "", inputs.get("backend", ""), data.get("dtype", ""),
                              sum(f.stat().st_size for f in manifest.parent.rglob("*") if f.is_file()),
                              built, manifest.stat().st_mtime, built == installed))
    return found


def stale(found, older_than_days=None, now=None):
    """The artifacts to prune: built for other library versions, or unused for `older_than_days`."""
    limit = (now or time.time()) - older_than_days * 86400 if older_than_days is not None else None
    return [a for a in found if not a.current or (limit is not None and a.last_used < limit)]


def remove(artifact):
    """Delete one artifact unless a process holds its lock (it is being built or loaded); True if removed."""
    try:
        with FileLock(str(artifact.folder) + ".lock", timeout=0):
            shutil.rmtree(artifact.folder)
    except Timeout:
        return False
    Path(str(artifact.folder) + ".lock").unlink(missing_ok=True)
    return True
