"""`modelzoo publish`: cards and pages from the measured results, front matter, licence notice, freshness, browser."""
import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import browser
from conftest import LOL, PAIRLIE_WEIGHTS, ROOT
from modelzoo import frontmatter, imaging, leaderboard
from modelzoo import publish as engine
from modelzoo.plugins import registry

DOCS = ROOT / "docs"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """`modelzoo publish --all --no-images` into a temporary folder, once for the module: every page's text.
    The pictures are checked for two models in test_committed_pictures_are_fresh (every model's would fit CoLIE
    to each sample, minutes on a CI machine, and its fit is exact only on one machine and thread count)."""
    out = tmp_path_factory.mktemp("published")
    reg = registry()
    engine.publish(list(reg.models.values()), out=out, images=False, registry=reg, log=lambda m: None)
    return out, False


@pytest.mark.skipif(not PAIRLIE_WEIGHTS.is_file(), reason="../shared weights not present")
def test_committed_pictures_are_fresh(tmp_path):
    """Two models' before/after PNGs and the samples, regenerated: equal to the committed ones within 1 level
    (another CPU may round differently)."""
    reg = registry()
    names = ("pairlie", "zero-dce-pp")
    engine.publish([reg.model(n) for n in names], out=tmp_path, images=True, registry=reg, log=lambda m: None)
    made = sorted(p.relative_to(tmp_path).as_posix() for n in (*names, engine.SAMPLES)
                  for p in (tmp_path / "models" / n).glob("*.png"))
    assert len(made) >= 16
    for name in made:
        a, b = imaging.read_rgb(tmp_path / name).astype(int), imaging.read_rgb(DOCS / name).astype(int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1, f"docs/{name} is stale; run `modelzoo publish`"


def tree(folder):
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def published_part(folder):
    """The files publish owns under a docs folder: index.html, gallery.html and everything under models/."""
    return {f for f in tree(folder) if f in ("index.html", "gallery.html") or f.startswith("models/")}


def test_committed_docs_are_fresh(generated):
    """Fails when docs/ differs from what `modelzoo publish --all` makes from the committed results files.

    Text (Markdown, HTML, SVG plots) must match byte for byte. PNGs made by running a model are compared as
    pixels within 1 level, so a CPU whose float rounding differs does not fail the check (on one machine they
    are byte-identical across runs).
    """
    out, with_images = generated
    made, committed = published_part(out), published_part(DOCS)
    fix = "run `modelzoo publish --all` and commit docs/"
    pngs = {f for f in made | committed if f.endswith(".png")}
    if with_images:
        assert made == committed, f"docs/ has other files than publish makes: {sorted(made ^ committed)}; {fix}"
    else:
        assert made - pngs == committed - pngs, sorted((made ^ committed) - pngs)
    for name in sorted(made - pngs):
        assert (out / name).read_bytes() == (DOCS / name).read_bytes(), f"docs/{name} is stale; {fix}"
    for name in sorted(pngs if with_images else ()):
        a, b = imaging.read_rgb(out / name).astype(int), imaging.read_rgb(DOCS / name).astype(int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1, f"docs/{name} is stale; {fix}"


def test_publish_is_deterministic(generated, tmp_path):
    """A second run writes the same text; without --no-images PNGs are also byte-identical on one machine."""
    out, _ = generated
    reg = registry()
    again = tmp_path / "again"
    engine.publish([reg.model("pairlie")], out=again, images=False, registry=reg, log=lambda m: None)
    for name in ("models/pairlie.md", "models/pairlie.html", "index.html", "models/pairlie/psnr-per-image.svg"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_front_matter_validates_and_carries_the_results(generated, cli):
    out, _ = generated
    card = out / "models" / "pairlie.md"
    result = cli("validate", card)
    assert result.exit_code == 0, result.output
    metadata, body = frontmatter.split(card.read_text())
    assert metadata["pipeline_tag"] == "image-to-image"
    assert metadata["license"] == "other" and metadata["license_name"] == "unspecified"
    results = metadata["model-index"][0]["results"]
    on_disk = sorted((ROOT / "models" / "pairlie" / "results").glob("eval-*.json"))
    assert len(results) == sum(len(json.loads(p.read_text())["metrics"]) for p in on_disk)
    full_reference = {"lol-eval15"}  # the unpaired sets are scored without references
    assert {e["dataset"]["type"] for e in results} == {"lol-eval15", "dicm", "lime", "mef"}
    for entry in results:
        expected = {"psnr", "ssim"} if entry["dataset"]["type"] in full_reference else {"niqe", "brisque"}
        assert {m["type"] for m in entry["metrics"]} == expected, entry["dataset"]
    assert card.read_text().splitlines()[1].startswith("# generated by modelzoo publish, do not edit")
    for section in ("## Code Source", "## Model Arch", "### pre-processing", "### post-processing", "### backbone",
                    "## Model Info", "### Dataset", "### Metrics", "## Deploy", "modelzoo compile pairlie --build int8"):
        assert section in body, section


def test_licence_notice_is_visible_where_the_licence_is_unknown(generated):
    out, _ = generated
    assert "**Licence notice.**" in (out / "models" / "pairlie.md").read_text()
    assert 'id="license-notice"' in (out / "models" / "pairlie.html").read_text()
    assert "see notice" in (out / "index.html").read_text()
    if (out / "models" / "sci.md").is_file():  # MIT: no notice
        assert "Licence notice" not in (out / "models" / "sci.md").read_text()
        assert frontmatter.split((out / "models" / "sci.md").read_text())[0]["license"] == "mit"


def test_index_lists_every_registered_model(generated):
    out, _ = generated
    index = (out / "index.html").read_text()
    assert "<!-- generated by modelzoo publish, do not edit -->" in index
    for name in registry().models:
        assert f'href="models/{name}.html"' in index
        assert (out / "models" / f"{name}.md").is_file() and (out / "models" / f"{name}.html").is_file()


def test_card_rows_come_from_every_results_and_bench_file(pairlie, tmp_path, monkeypatch):
    """A new results file (another build) and a bench file show up as rows, latency and a second plot."""
    source = ROOT / "models" / "pairlie" / "results"
    folder = tmp_path / "results"
    folder.mkdir()
    fp32 = sorted(source.glob("eval-lol-eval15-fp32-onnxruntime.json"))
    if not fp32:
        pytest.skip("no fp32 results file committed yet (modelzoo eval pairlie --dataset lol-eval15)")
    base = json.loads(fp32[0].read_text())
    shutil.copy(fp32[0], folder / fp32[0].name)
    int8 = copy.deepcopy(base)
    int8.update(build="int8", dtype="int8")
    int8["metrics"]["zoo"]["mean"]["psnr"] = 18.1234
    (folder / "eval-lol-eval15-int8-onnxruntime.json").write_text(json.dumps(int8))
    row = {"build": "fp32", "backend": "onnxruntime", "dtype": "fp32", "device": "cpu", "shape_mode": "static",
           "batch": 1, "instances": 1, "threads": 0, "samples": 20,
           "latency_ms": {"p50": 812.5, "p90": 830.0, "p99": 850.0}, "per_image_ms": {"p50": 812.5, "p90": 830.0,
                                                                                        "p99": 850.0},
           "throughput_ips": 1.23, "peak_rss_mb": 400.0, "speedup": None}
    monkeypatch.setattr(pairlie, "results_dir", lambda: folder)
    # the index compares latencies within the instruction-set class most bench rows come from
    isa = leaderboard.bench_class(registry().models.values()) or "avx2"
    bench = {"kind": "bench", "schema_version": 1, "model": "pairlie", "created": "2026-01-02T03:04:05+0000",
             "machine": {"id": "test-cpu-2", "cpu": "Test CPU", "cores": 2, "flags": [], "isa": isa}, "versions": {},
             "settings": {"shape": [3, 400, 600], "batch": 1, "threads": 0, "instances": 1, "warmup": 1,
                          "repeat": 20, "isolation": "process"},
             "complexity": {"params": 1, "macs": 1, "flops": 2, "shape": [1, 3, 400, 600]},
             "baseline": None, "rows": [row], "skipped": []}
    (folder / "bench-test-cpu-2.json").write_text(json.dumps(bench))
    out = tmp_path / "docs"
    engine.publish([pairlie], out=out, images=False, log=lambda m: None)
    text = (out / "models" / "pairlie.md").read_text()
    assert "PairLIE int8 (onnxruntime int8) | [measured here](../../models/pairlie/results/eval-lol-eval15-int8" \
           in text and "| 18.123 |" in text
    assert "| test-cpu-2 | 600x400 | fp32 | onnxruntime | fp32 | cpu | static | 812.50 |" in text
    assert (out / "models" / "pairlie" / "psnr-latency.svg").is_file()
    assert "812.5" in (out / "index.html").read_text()
    for reported in pairlie.card["reported"]:
        assert reported["label"] in text


def test_missing_results_and_bench_are_handled(pairlie, tmp_path, monkeypatch):
    monkeypatch.setattr(pairlie, "results_dir", lambda: tmp_path / "nothing")
    out = tmp_path / "docs"
    engine.publish([pairlie], out=out, images=False, log=lambda m: None)
    text = (out / "models" / "pairlie.md").read_text()
    assert "No bench results yet" in text
    assert frontmatter.split(text)[0]["model-index"][0]["results"] == []
    assert "not measured" in (out / "index.html").read_text()


def test_cli_needs_a_model_or_all(cli):
    result = cli("publish")
    assert result.exit_code == 1 and "name a MODEL or pass --all" in result.output


@pytest.mark.skipif(not (PAIRLIE_WEIGHTS.is_file() and LOL.is_dir()), reason="../shared weights and LOL not present")
def test_site_build_adds_lol_pages(cli, tmp_path):
    """--site writes LOL before/after pages outside docs/ (one LOL pair here, to stay fast)."""
    data = tmp_path / "lol"
    for kind in ("low", "high"):
        (data / kind).mkdir(parents=True)
        for name in ("22",):
            shutil.copy(LOL / kind / f"{name}.png", data / kind / f"{name}.png")
    out, site = tmp_path / "docs", tmp_path / "site"
    result = cli("publish", "pairlie", "--out", out, "--site", site, "--data-root", data, "--no-images")
    assert result.exit_code == 0, result.output
    page = (site / "models" / "pairlie-lol.html").read_text()
    assert "pairlie/lol-eval15/22-out.png" in page and (site / "models/pairlie/lol-eval15/22-out.png").is_file()
    assert 'href="pairlie-lol.html"' in (site / "models" / "pairlie.html").read_text()
    assert not any("lol" in f for f in tree(out)), "LOL pictures must never land in docs/"


def _chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")
@pytest.mark.parametrize("page", ["index.html", "models/pairlie.html"])
def test_pages_render_in_headless_chromium(page, tmp_path):
    """Screenshots of the committed pages, kept under test-artifacts/ to look at."""
    target = DOCS / page
    assert target.is_file(), f"{target} missing: run `modelzoo publish --all`"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"publish-{Path(page).stem}.png"
    shot.unlink(missing_ok=True)
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
               target.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert shot.is_file(), f"no screenshot: {done.stderr[-2000:]}"
    pixels = imaging.read_rgb(shot)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 10, "the screenshot is blank"


SORT_AND_FILTER = """
var rows = function () { return Array.prototype.map.call(doc.querySelectorAll("#models tbody tr"),
    function (r) { return r.cells[0].getAttribute("data-value"); }); };
var visible = function () { return Array.prototype.filter.call(doc.querySelectorAll("#models tbody tr"),
    function (r) { return !r.hidden; }).map(function (r) { return r.getAttribute("data-commercial"); }); };
var heading = doc.querySelectorAll("#models thead th")[1];
var before = rows();
heading.click();
var ascending = rows();
heading.click();
var descending = rows();
var box = doc.getElementById("commercial-only");
box.click();
var filtered = visible();
box.click();
return {before: before, ascending: ascending, descending: descending, filtered: filtered, all: visible(),
        values: Array.prototype.map.call(doc.querySelectorAll("#models tbody tr"),
            function (r) { return r.cells[1].getAttribute("data-value"); })};
"""


@pytest.mark.skipif(browser.chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_index_sorts_and_filters_in_chromium(tmp_path):
    """The committed index in a real browser: every image loads, no console message, a click on the first score
    heading sorts the rows by it (again: the other way), the licence filter hides every non-commercial row."""
    result, console = browser.check_page(DOCS / "index.html", SORT_AND_FILTER, tmp_path)
    assert console == [], console
    assert result["images"] and all(image["loaded"] for image in result["images"]), result["images"]
    checked = result["checked"]
    assert sorted(checked["before"]) == sorted(checked["ascending"]) and checked["ascending"] != checked["before"]
    assert checked["descending"] == list(reversed(checked["ascending"]))
    assert checked["filtered"] and set(checked["filtered"]) == {"yes"}
    assert len(checked["all"]) == len(checked["before"]) > len(checked["filtered"])
    scores = [float(v) for v in checked["values"] if v]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.skipif(browser.chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")
@pytest.mark.parametrize("page", ["gallery.html", "models/pairlie.html"])
def test_pages_load_every_image_in_chromium(page, tmp_path):
    result, console = browser.check_page(DOCS / page, "return doc.title;", tmp_path)
    assert console == [], console
    assert len(result["images"]) >= 4 and all(image["loaded"] for image in result["images"]), result["images"]


@pytest.mark.parametrize("doc, name, make", [("performance.md", "bench", "bench_tables"),
                                             ("quantization.md", "accuracy-by-build", "quantization_table")])
def test_generated_doc_tables_are_fresh(doc, name, make):
    """docs/performance.md's bench tables (one per instruction-set class) and docs/quantization.md's accuracy
    table are what `modelzoo publish --all` makes from the committed results files."""
    from modelzoo import reports
    reg = registry()
    contexts = engine.all_contexts(reg, [])
    committed = reports.region((DOCS / doc).read_text(), name)
    assert committed == getattr(reports, make)(reg, contexts), f"docs/{doc} is stale; run `modelzoo publish --all`"


def test_a_doc_without_markers_is_a_one_line_error(tmp_path):
    from modelzoo import reports
    from modelzoo.errors import ZooError

    page = tmp_path / "performance.md"
    page.write_text("# Performance\n")
    with pytest.raises(ZooError, match=r"performance.md: no '<!-- begin bench: generated by modelzoo publish"):
        reports.replace_region(page, "bench", "table\n")
