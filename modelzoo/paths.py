"""Where things live: the user cache, the user data folder, and search paths for weights and data."""
import os
from pathlib import Path


def cache_dir():
    """$MODELZOO_CACHE, else $XDG_CACHE_HOME/modelzoo, else ~/.cache/modelzoo."""
    if os.environ.get("MODELZOO_CACHE"):
        return Path(os.environ["MODELZOO_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelzoo"


def data_dir():
    """$MODELZOO_HOME, else $XDG_DATA_HOME/modelzoo, else ~/.local/share/modelzoo: files the user keeps (results)."""
    if os.environ.get("MODELZOO_HOME"):
        return Path(os.environ["MODELZOO_HOME"])
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "modelzoo"


def offline():
    """MODELZOO_OFFLINE=1 (or `modelzoo --offline`): nothing is downloaded."""
    return os.environ.get("MODELZOO_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def workspace_shared():
    """The `shared/` folder beside a source checkout (this project's development layout), if present."""
    checkout = Path(__file__).resolve().parent.parent
    shared = checkout.parent / "shared"
    return shared if (checkout / "pyproject.toml").is_file() and shared.is_dir() else None


def search_path(variable, shared_subdir):
    """Folders named by $variable (os.pathsep-separated), then `../shared/<subdir>` of a source checkout."""
    folders = [Path(p) for p in os.environ.get(variable, "").split(os.pathsep) if p]
    shared = workspace_shared()
    if shared and (shared / shared_subdir).is_dir():
        folders.append(shared / shared_subdir)
    return folders
