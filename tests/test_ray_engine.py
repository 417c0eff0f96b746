"""`--engine ray` on a real local Ray instance (no mocks): same bytes as the local engine, per-file failures,
--resume, the eval fan-out's metric values, and the one-line message when Ray is not installed."""
import json
import os
import shutil
import sys

import numpy as np
import pytest

from conftest import LOL, needs_shared
from modelzoo import imaging

pytestmark = needs_shared


@pytest.fixture(scope="module")
def ray_instance(environment):
    """A local Ray for this module: 2 CPUs (a CI runner's), no dashboard, a small object store."""
    ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install "modelzoo[ray]"')
    pytest.importorskip("ray.data", reason="ray.data missing: pip install 'ray[data]'")
    env = {k: v for k, v in os.environ.items() if k.startswith("MODELZOO_")}
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=300 * 1024**2, log_to_driver=False,
             runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Six small dark images of different sizes, and one damaged file."""
    root = tmp_path_factory.mktemp("ray-in")
    rng = np.random.default_rng(10)
    for index in range(6):
        image = (rng.random((24 + 4 * index, 40 - 2 * index, 3)) * 70).astype(np.uint8)
        imaging.write_rgb(root / f"img{index}.png", image)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def run(cli, folder, out, *extra):
    result = cli("run", "pairlie", "--input", folder, "--output", out, "--native", "--backend", "torch", "--json",
                 "--quiet", *extra)
    return result, json.loads(result.stdout)


def test_outputs_are_byte_identical_and_failures_per_file(cli, ray_instance, folder, tmp_path):
    local, local_summary = run(cli, folder, tmp_path / "local")
    scaled, summary = run(cli, folder, tmp_path / "ray", "--engine", "ray", "--workers", "2")
    assert local.exit_code == scaled.exit_code == 3, scaled.output  # partial: one input failed
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert names == [f"img{i}.png" for i in range(6)]
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == names  # no temporary files left
    for name in names:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert summary["failures"] == local_summary["failures"]
    assert [f["input"] for f in summary["failures"]] == [str(folder / "broken.png")]
    assert "not an image" in summary["failures"][0]["error"]
    assert [i["input"] for i in summary["images"]] == [i["input"] for i in local_summary["images"]]


def test_resume_skips_finished_outputs(cli, ray_instance, folder, tmp_path):
    out = tmp_path / "out"
    first, _ = run(cli, folder, out, "--engine", "ray")
    assert first.exit_code == 3
    reference = (out / "img3.png").read_bytes()
    (out / "img3.png").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again, summary = run(cli, folder, out, "--engine", "ray", "--resume")
    assert again.exit_code == 3, again.output
    assert [i["input"] for i in summary["images"]] == [str(folder / "img3.png")]
    assert len(summary["skipped"]) == 5 and str(folder / "img3.png") not in summary["skipped"]
    assert (out / "img3.png").read_bytes() == reference
    assert all((out / name).stat().st_mtime_ns == mtime for name, mtime in before.items())


@pytest.fixture
def two_pairs(tmp_path):
    """Two LOL eval15 pairs copied into tmp (never into the repository)."""
    root = tmp_path / "lol"
    for side in ("low", "high"):
        (root / side).mkdir(parents=True)
        for name in ("1.png", "111.png"):
            shutil.copy(LOL / side / name, root / side / name)
    return root


def scores(document):
    """The metric entries without their provenance (whose dates differ from run to run)."""
    return {name: {k: v for k, v in entry.items() if k != "provenance"} for name, entry in document["metrics"].items()}


def test_eval_fan_out_matches_local_evaluate(cli, ray_instance, two_pairs, tmp_path, pairlie):
    from modelzoo.evaluate import evaluate

    local = {backend: evaluate(pairlie, "lol-eval15", "fp32", backend, data_root=two_pairs, progress=False,
                               log=lambda m: None, results_dir=tmp_path / "local")
             for backend in ("torch", "onnxruntime")}
    for backend in ("torch", "onnxruntime"):
        result = cli("eval", "pairlie", "--dataset", "lol-eval15", "--backend", backend, "--data-root", two_pairs,
                     "--results", tmp_path / "ray", "--engine", "ray", "--quiet")
        assert result.exit_code == 0, result.output
        assert "lol-eval15: 2 images" in result.stdout and "fp32" in result.stdout  # the summary table
    for backend, document in local.items():
        name = f"eval-lol-eval15-fp32-{backend}.json"
        scaled = json.loads((tmp_path / "ray" / name).read_text())
        written = json.loads((tmp_path / "local" / name).read_text())
        assert scores(scaled) == scores(document) == scores(written)
        assert scaled["metrics"]["zoo"]["provenance"]["command"] == scaled["provenance"]["command"]
        assert scaled["provenance"]["artifact_sha256"] == document["provenance"]["artifact_sha256"]
        assert scaled["provenance"]["command"] == document["provenance"]["command"]  # the driver's, not the worker's


def test_eval_with_ray_runs_jobs_as_parallel_tasks(ray_instance, two_pairs, tmp_path, pairlie):
    from modelzoo.ray_engine import eval_with_ray

    jobs = [dict(model=pairlie, dataset="lol-eval15", build="fp32", backend=backend, protocol="zoo",
                 data_root=two_pairs, results_dir=tmp_path) for backend in ("torch", "nope")]
    documents, failed = eval_with_ray(jobs, workers=2, log=lambda m: None)
    assert [d["backend"] for d in documents] == ["torch"]  # the good job still ran and was written
    assert len(failed) == 1 and "nope" in str(failed[0])
    assert (tmp_path / "eval-lol-eval15-fp32-torch.json").is_file()


def test_without_ray_one_line_says_how_to_install(cli, monkeypatch, tmp_path):
    for name in ("ray", "ray.data"):
        monkeypatch.setitem(sys.modules, name, None)  # `import ray` now raises ImportError
    for args in (("run", "pairlie", "--input", tmp_path, "--output", tmp_path / "out"),
                 ("eval", "--all")):
        result = cli(*args, "--engine", "ray")
        assert result.exit_code == 1
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and 'pip install "modelzoo[ray]"' in lines[0], result.output
