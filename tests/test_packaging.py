"""The wheel, installed (not editable) into a fresh venv, runs: `modelzoo list`, `run`, `modelzoo.load`.

The wheel is built from this checkout with build isolation (so pyproject's build requirements are what builds
it). Its dependencies are borrowed from the running environment through a .pth line instead of being
installed again (that would be minutes of torch unpacking); the wheel itself goes in with --no-deps, and the
test checks that modelzoo is imported from the fresh venv, not from this checkout.
"""
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import LOL, ROOT, WEIGHTS, needs_shared

pytestmark = [needs_shared, pytest.mark.slow]


def sh(*command, env=None, cwd=None):
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env, cwd=cwd,
                            timeout=600)
    assert result.returncode == 0, f"{command}: {result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv holding the wheel built from this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", root / "dist", ROOT)
    wheel = next((root / "dist").glob("modelzoo-*.whl"))
    sh(sys.executable, "-m", "venv", root / "venv")
    python = root / "venv" / "bin" / "python"
    site = Path(sh(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (site / "zz-borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    sh(python, "-m", "pip", "install", "--quiet", "--no-deps", wheel)
    return root / "venv" / "bin"


@pytest.fixture
def env(tmp_path):
    """The user's view: weights via MODELZOO_WEIGHTS, own cache and data folders, no checkout around."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith("MODELZOO_")}
    return {**variables, "MODELZOO_WEIGHTS": str(WEIGHTS), "MODELZOO_CACHE": str(tmp_path / "cache"),
            "MODELZOO_HOME": str(tmp_path / "home")}


def test_installed_wheel_lists_runs_and_loads(venv, env, tmp_path):
    listed = json.loads(sh(venv / "modelzoo", "list", "--json", env=env, cwd=tmp_path))
    assert {"pairlie", "sci"} <= {m["name"] for m in listed}
    image = LOL / "low" / "1.png"
    sh(venv / "modelzoo", "run", "pairlie", "--input", image, "--output", tmp_path / "out", "--backend",
       "onnxruntime", "--quiet", env=env, cwd=tmp_path)
    script = f"""
import modelzoo, numpy as np
from modelzoo import imaging
assert "site-packages" in modelzoo.__file__ and {str(ROOT)!r} not in modelzoo.__file__, modelzoo.__file__
enhanced = modelzoo.load("pairlie", backend="onnxruntime")(imaging.read_rgb({str(image)!r}))
written = imaging.read_rgb({str(tmp_path / "out" / "1.png")!r})
print(int(np.abs(enhanced.astype(int) - written.astype(int)).max()), enhanced.shape)
"""
    difference, shape = sh(venv / "python", "-c", script, env=env, cwd=tmp_path).split(" ", 1)
    assert int(difference) <= 1 and shape.strip() == "(400, 600, 3)"
