"""`modelzoo eval`: results with provenance, both protocols, the npz round trip, resuming."""
import json
import shutil

import pytest

from conftest import LOL, needs_shared
from modelzoo import documents, runner
from modelzoo.plugins import registry

pytestmark = needs_shared
NAMES = ("1", "22", "111")


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    """Three LOL eval15 pairs in the paired layout (a copy in a temporary folder, never in the repo)."""
    root = tmp_path_factory.mktemp("lol3")
    for side in ("low", "high"):
        (root / side).mkdir()
        for name in NAMES:
            shutil.copy(LOL / side / f"{name}.png", root / side / f"{name}.png")
    return root


def evaluate(cli, root, results, *extra):
    result = cli("eval", "pairlie", "--dataset", "lol-eval15", "--data-root", root, "--results", results,
                 "--json", "--quiet", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_results_validate_and_repeat_exactly(cli, subset, tmp_path):
    first = evaluate(cli, subset, tmp_path / "a")
    second = evaluate(cli, subset, tmp_path / "b")
    for protocol in ("zoo", "paper", "gt-mean"):  # the same scores; each entry's provenance has its own date
        assert {k: first["metrics"][protocol][k] for k in ("protocol", "mean", "images")} == \
            {k: second["metrics"][protocol][k] for k in ("protocol", "mean", "images")}
    saved = tmp_path / "a" / "eval-lol-eval15-fp32-onnxruntime.json"
    assert documents.errors(json.loads(saved.read_text()), "results", "r") == []
    assert set(first["metrics"]) == {"zoo", "paper", "gt-mean"}  # the card's two, the task's GT-mean
    assert sorted(first["metrics"]["zoo"]["images"]) == sorted(NAMES)
    provenance = first["provenance"]
    assert provenance["weights_sha256"].startswith("e223ec9e")
    assert provenance["artifact_sha256"] and provenance["versions"]["onnxruntime"]
    assert first["dataset"]["images"] == 3 and len(first["dataset"]["file_list_sha256"]) == 64
    # the paper protocol's gamma 0.14 brightens more than the zoo's 0.2, and differs image by image
    assert first["metrics"]["paper"]["mean"]["psnr"] != first["metrics"]["zoo"]["mean"]["psnr"]


def test_npz_round_trip_gives_the_direct_numbers(cli, subset, tmp_path):
    direct = evaluate(cli, subset, tmp_path / "direct")
    datalist = tmp_path / "npz_datalist.txt"
    assert cli("image2npz", subset / "low", tmp_path / "npz_in", "--datalist", datalist).exit_code == 0
    assert len(datalist.read_text().splitlines()) == 3
    ran = cli("run", "pairlie", "--datalist", datalist, "--npz-out", tmp_path / "npz_out",
              "--output", tmp_path / "png", "--quiet")
    assert ran.exit_code == 0, ran.output
    import numpy as np

    with np.load(tmp_path / "npz_out" / "22.npz") as saved:
        assert saved["output_0"].shape == (1, 1, 400, 600) and saved["output_1"].shape == (1, 3, 400, 600)
    scored = evaluate(cli, subset, tmp_path / "from_npz", "--from-npz", tmp_path / "npz_out")
    for protocol in ("zoo", "paper"):
        for name in NAMES:
            for metric in ("psnr", "ssim"):
                assert scored["metrics"][protocol]["images"][name][metric] == pytest.approx(
                    direct["metrics"][protocol]["images"][name][metric], abs=1e-9)


def test_missing_npz_output_is_named(cli, subset, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("eval", "pairlie", "--dataset", "lol-eval15", "--data-root", subset, "--from-npz",
                 tmp_path / "empty", "--quiet")
    assert result.exit_code == 1


def test_interrupted_eval_resumes(cli, subset, tmp_path, monkeypatch):
    calls, interrupt = [], [True]
    original = runner.infer

    def flaky(request, image):
        calls.append(1)
        if len(calls) == 2 and interrupt[0]:
            interrupt[0] = False
            raise KeyboardInterrupt
        return original(request, image)

    monkeypatch.setattr(runner, "infer", flaky)
    interrupted = cli("eval", "pairlie", "--dataset", "lol-eval15", "--data-root", subset, "--results",
                      tmp_path, "--quiet")
    assert interrupted.exit_code == 130
    assert list(tmp_path.glob(".*.partial.json"))
    calls.clear()
    resumed = evaluate(cli, subset, tmp_path)
    assert len(calls) == 2  # the first image was scored before the interruption
    assert sorted(resumed["metrics"]["zoo"]["images"]) == sorted(NAMES)
    assert not list(tmp_path.glob(".*.partial.json"))


@pytest.mark.slow
def test_lol_eval15_both_protocols(cli, tmp_path):
    results = evaluate(cli, LOL, tmp_path)
    assert results["metrics"]["zoo"]["mean"]["psnr"] == pytest.approx(18.498, abs=0.002)
    assert results["metrics"]["zoo"]["mean"]["ssim"] == pytest.approx(0.748, abs=0.001)
    assert results["metrics"]["paper"]["mean"]["psnr"] == pytest.approx(19.514, abs=0.002)
    assert results["metrics"]["paper"]["mean"]["ssim"] == pytest.approx(0.736, abs=0.001)


def test_build_all_skips_what_cannot_run_here(pairlie, monkeypatch):
    from modelzoo.compile import select_builds

    chosen, skipped = select_builds(pairlie, "all", "torch")
    assert chosen == ["fp32", "fp16"]  # int8 is not a torch dtype; ncnn yamls are not re-run on torch
    assert any("int8: torch does not build int8" in s for s in skipped)
    assert any("ncnn-fp32: written for ncnn" in s for s in skipped)
    monkeypatch.setattr(registry().backends["openvino"], "missing", lambda build=None: "backend openvino needs openvino")
    chosen, skipped = select_builds(pairlie, "all", "openvino")
    assert chosen == [] and all("needs openvino" in s or "written for" in s for s in skipped)


def test_eval_all_compares_every_model_in_one_table(cli, subset, tmp_path):
    """Every registered model on one LOL pair (every model, one of them fitting a network to each image)."""
    one = tmp_path / "one"
    for side in ("low", "high"):
        (one / side).mkdir(parents=True)
        shutil.copy(subset / side / f"{NAMES[0]}.png", one / side / f"{NAMES[0]}.png")
    result = cli("eval", "--all", "--dataset", "lol-eval15", "--data-root", one, "--results", tmp_path / "results",
                 "--protocol", "zoo", "--quiet")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()[2:] if line and not line.startswith("lol")]
    assert {row[0] for row in rows} == set(registry().models)
    assert all(float(row[5]) > 10 for row in rows)  # zoo psnr column
    for model in ("pairlie", "sci"):  # one folder per model, so equal file names cannot collide
        saved = json.loads((tmp_path / "results" / model / "eval-lol-eval15-fp32-onnxruntime.json").read_text())
        assert saved["model"] == model


def test_the_engine_names_no_metric():
    """Metrics belong to evaluators: apart from the metric-functions module, nothing in the engine or the
    schemas names one (run, eval, publish and the templates show what the evaluator declares)."""
    import re

    from conftest import ROOT

    word = re.compile(r"\b(psnr|ssim|niqe|brisque)\b", re.IGNORECASE)
    files = [p for folder in ("modelzoo", "schemas") for p in (ROOT / folder).rglob("*")
             if p.suffix in (".py", ".j2", ".json") and p != ROOT / "modelzoo" / "metrics.py"]
    named = [f"{p.relative_to(ROOT)}:{n}" for p in files for n, line in enumerate(p.read_text().splitlines(), 1)
             if word.search(line)]
    assert files and named == []


def test_the_lowlight_evaluator_declares_its_metrics():
    from modelzoo.evaluate import for_task
    from modelzoo.plugins import registry

    metrics = for_task(registry(), "low-light-image-enhancement").metrics
    assert [(m.name, m.unit, m.higher_is_better, m.needs_reference) for m in metrics] == [
        ("psnr", "dB", True, True), ("ssim", "", True, True), ("niqe", "", False, False), ("brisque", "", False, False)]
    assert all(m.description for m in metrics)


# -- results hygiene: outside the package by default, merged and never clobbered --------------------------
RESULTS_FILE = "eval-lol-eval15-fp32-onnxruntime.json"


def test_default_results_go_to_the_data_folder_not_the_package(cli, subset, pairlie):
    from modelzoo import paths

    committed = {p.name: p.read_bytes() for p in pairlie.results_dir().iterdir()}
    result = cli("eval", "pairlie", "--dataset", "lol-eval15", "--data-root", subset, "--protocol", "zoo",
                 "--build", "fp32")
    assert result.exit_code == 0, result.output
    target = paths.data_dir() / "results" / "pairlie" / RESULTS_FILE
    assert f"results: {target}" in result.stderr and target.is_file()
    assert {p.name: p.read_bytes() for p in pairlie.results_dir().iterdir()} == committed


def test_one_protocol_at_a_time_keeps_the_other(cli, subset, tmp_path):
    evaluate(cli, subset, tmp_path, "--protocol", "zoo")
    zoo = json.loads((tmp_path / RESULTS_FILE).read_text())["metrics"]["zoo"]
    evaluate(cli, subset, tmp_path, "--protocol", "paper")
    saved = json.loads((tmp_path / RESULTS_FILE).read_text())
    assert documents.errors(saved, "results", "r") == []
    assert set(saved["metrics"]) == {"zoo", "paper"}
    assert saved["metrics"]["zoo"] == zoo  # kept as written, its provenance included
    assert saved["metrics"]["paper"]["provenance"]["weights_sha256"].startswith("e223ec9e")


def test_a_committed_file_keeps_its_other_protocol_with_its_provenance(cli, subset, pairlie, tmp_path):
    committed = json.loads((pairlie.results_dir() / RESULTS_FILE).read_text())
    shutil.copy(pairlie.results_dir() / RESULTS_FILE, tmp_path / RESULTS_FILE)
    evaluate(cli, subset, tmp_path, "--protocol", "zoo")
    saved = json.loads((tmp_path / RESULTS_FILE).read_text())
    paper = saved["metrics"]["paper"]
    assert paper["mean"] == committed["metrics"]["paper"]["mean"]  # the 15-image paper numbers survive
    # the paper protocol's own provenance (the file's top-level one is its latest evaluation, e.g. GT-mean)
    assert paper["provenance"]["date"] == committed["metrics"]["paper"].get("provenance", committed["provenance"])["date"]
    assert paper["provenance"]["file_list_sha256"] == committed["dataset"]["file_list_sha256"]
    assert saved["metrics"]["zoo"]["provenance"]["file_list_sha256"] == saved["dataset"]["file_list_sha256"]
    assert sorted(saved["metrics"]["zoo"]["images"]) == sorted(NAMES)


def test_save_writes_the_models_results_folder(cli, subset, pairlie, tmp_path, monkeypatch):
    monkeypatch.setattr(type(pairlie), "results_dir", lambda self: tmp_path / self.name)
    result = cli("eval", "pairlie", "--dataset", "lol-eval15", "--data-root", subset, "--protocol", "zoo",
                 "--save", "--quiet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pairlie" / RESULTS_FILE).is_file()
    both = cli("eval", "pairlie", "--save", "--results", tmp_path)
    assert both.exit_code == 2 and len(both.stderr.strip().splitlines()) == 1
