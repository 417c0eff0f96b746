"""`modelzoo cache list / prune` and offline use: artifacts per library versions, weights never downloaded."""
import json
import os
import shutil
import time

import pytest

from conftest import needs_shared

pytestmark = needs_shared


@pytest.fixture
def workspace(cli, tmp_path):
    """One real artifact (pairlie fp32 on torch) and a copy marked as built by an older onnxruntime."""
    root = tmp_path / "artifacts"
    assert cli("compile", "pairlie", "--build", "fp32", "--backend", "torch", "--workspace", root).exit_code == 0
    current = next(root.glob("pairlie/*/manifest.json")).parent
    old = current.with_name(current.name[:-12] + "0" * 12)
    shutil.copytree(current, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["inputs"]["versions"]["onnxruntime"] = "0.0.1"
    (old / "manifest.json").write_text(json.dumps(manifest))
    return root, current, old


def test_list_names_model_build_backend_versions_and_last_use(cli, workspace):
    root, current, old = workspace
    listed = json.loads(cli("cache", "list", "--workspace", root, "--json").stdout)
    assert [a["folder"] for a in listed] == sorted([str(current), str(old)])
    mine = next(a for a in listed if a["folder"] == str(current))
    assert (mine["model"], mine["build"], mine["backend"], mine["dtype"]) == ("pairlie", "fp32", "torch", "fp32")
    assert mine["current"] and mine["size"] > 0 and mine["versions"]["torch"] and mine["last_used"]
    assert not next(a for a in listed if a["folder"] == str(old))["current"]
    assert "pairlie  fp32" in cli("cache", "list", "--workspace", root).stdout


def test_prune_removes_other_versions_and_dry_run_nothing(cli, workspace):
    root, current, old = workspace
    dry = cli("cache", "prune", "--workspace", root, "--dry-run")
    assert dry.exit_code == 0 and f"would remove {old}" in dry.stdout and old.is_dir()
    assert cli("cache", "prune", "--workspace", root).exit_code == 0
    assert current.is_dir() and not old.exists()


def test_prune_older_than_uses_the_last_use(cli, workspace):
    root, current, old = workspace
    week_ago = time.time() - 8 * 86400
    os.utime(current / "manifest.json", (week_ago, week_ago))
    assert cli("cache", "prune", "--workspace", root, "--older-than", "30").exit_code == 0
    assert current.is_dir()
    assert cli("cache", "prune", "--workspace", root, "--older-than", "7").exit_code == 0
    assert not current.exists()


def test_a_cache_hit_records_the_use(cli, workspace):
    root, current, _ = workspace
    os.utime(current / "manifest.json", (0, 0))
    assert cli("compile", "pairlie", "--build", "fp32", "--backend", "torch", "--workspace", root).exit_code == 0
    assert (current / "manifest.json").stat().st_mtime > time.time() - 60


def test_offline_names_the_file_and_the_remedies(cli, pairlie, monkeypatch, tmp_path):
    from modelzoo import weights
    from modelzoo.errors import ZooError

    monkeypatch.setenv("MODELZOO_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("MODELZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("modelzoo.paths.workspace_shared", lambda: None)
    monkeypatch.setattr(weights, "fetch", lambda *a, **k: pytest.fail("offline must not download"))
    monkeypatch.setenv("MODELZOO_OFFLINE", "1")
    with pytest.raises(ZooError, match="PairLIE.pth not found .offline.*modelzoo weights import.*MODELZOO_WEIGHTS"):
        weights.resolve(pairlie)
    monkeypatch.setenv("MODELZOO_OFFLINE", "0")  # --offline sets it again; monkeypatch restores it afterwards
    result = cli("--offline", "run", "pairlie", "--output", tmp_path / "out")
    assert result.exit_code == 1 and "modelzoo weights import" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # the samples note, then one error line


def test_failed_download_names_the_same_remedies(pairlie, monkeypatch, tmp_path):
    from modelzoo import weights
    from modelzoo.errors import ZooError

    monkeypatch.setenv("MODELZOO_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("MODELZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("modelzoo.paths.workspace_shared", lambda: None)
    entry = dict(pairlie.weights_entry(), url="http://127.0.0.1:9/PairLIE.pth")  # port 9: nothing listens
    monkeypatch.setitem(pairlie.card["weights"], "official", entry)
    with pytest.raises(ZooError, match="download failed.*modelzoo weights import.*MODELZOO_WEIGHTS"):
        weights.resolve(pairlie, progress=False)
