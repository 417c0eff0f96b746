"""`modelzoo compare`: every model on a user's photos, one self-contained report (small photos, two small models)."""
import re

import numpy as np
import pytest

import browser
from modelzoo import api, imaging, samples
from modelzoo.errors import ZooError

MODELS = "sci,zero-dce"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two built-in samples cut to 160x200 (NIQE needs 96x96 blocks), with their originals as references."""
    root = samples.folder()
    folder, refs = tmp_path_factory.mktemp("photos"), tmp_path_factory.mktemp("refs")
    for name in ("coffee", "chelsea"):
        imaging.write_rgb(folder / f"{name}.png", imaging.read_rgb(root / "low" / f"{name}.png")[:160, :200])
        imaging.write_rgb(refs / f"{name}.png", imaging.read_rgb(root / "high" / f"{name}.png")[:160, :200])
    return folder, refs


@pytest.fixture(scope="module")
def report(photos, tmp_path_factory):
    from click.testing import CliRunner

    from modelzoo.cli import cli

    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(cli, ["compare", "--input", str(photos[0]), "--output", str(out), "--models", MODELS],
                                catch_exceptions=False)
    return result, out / "report.html"


def test_report_shows_every_model_on_every_photo_and_ranks_them(report):
    result, page = report
    assert result.exit_code == 0, result.output
    assert "best by NIQE" in result.output
    text = page.read_text()
    assert "src=\"file:" not in text and "src=\"/" not in text, "pictures must be embedded"
    assert len(re.findall(r'<img src="data:image/jpeg;base64,', text)) == 2 * 3  # input, sci, zero-dce per photo
    ranking = re.search(r'<table id="ranking">(.*?)</table>', text, re.S).group(1)
    rows = re.findall(r'<tr data-model="([^"]+)">', ranking)
    assert sorted(rows) == ["sci", "zero-dce"]
    means = [float(v) for v in re.findall(r'<tr data-model="(?:sci|zero-dce)">.*?</td><td class="left">.*?</td>'
                                          r'<td>([0-9.]+)</td>', ranking, re.S)]
    assert means == sorted(means), "NIQE is lower-better: the best model first"


def test_scores_equal_modelzoo_score_of_the_enhanced_pixels(photos, report):
    """The report's number for a model and photo is the evaluator's NIQE of exactly what `run` writes."""
    from modelzoo.plugins import registry

    reg = registry()
    result = __import__("modelzoo.compare", fromlist=["compare"]).compare([photos[0]], [reg.model("sci")], reg,
                                                                          progress=False)
    enhanced = api.load("sci")(imaging.read_rgb(photos[0] / "coffee.png"))
    evaluator = reg.evaluators["lowlight"]
    expected = evaluator.score(enhanced.astype(np.float64) / 255, None, {"quantize": "round"}, ["niqe"])["niqe"]
    assert result["columns"][1].scores["coffee"]["niqe"] == pytest.approx(expected, abs=1e-9)


def test_references_add_the_full_reference_metrics(photos, tmp_path, cli):
    result = cli("compare", "--input", photos[0], "--output", tmp_path, "--models", "sci", "--reference", photos[1])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report.html").read_text()
    assert "PSNR (dB)" in text and "NIQE" in text


def test_a_model_that_fails_is_reported_and_the_rest_completes(photos, tmp_path, cli, monkeypatch):
    real = api.load

    def broken(name, *args, **kwargs):
        if name == "zero-dce":
            raise ZooError("zero-dce: weights Epoch99.pth not found (simulated)")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(api, "load", broken)
    result = cli("compare", "--input", photos[0], "--output", tmp_path, "--models", MODELS)
    assert result.exit_code == 3
    text = (tmp_path / "report.html").read_text()
    assert "zero-dce</code> on every photo: zero-dce: weights Epoch99.pth not found (simulated)" in text
    assert text.count('<img src="data:image/jpeg') == 2 * 2  # the input and sci still shown


def test_no_photos_is_one_line(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    result = cli("compare", "--input", tmp_path / "empty", "--output", tmp_path / "out", "--models", "sci")
    assert result.exit_code == 1 and "no images" in result.output and len(result.output.splitlines()) == 1


SLIDER = """
var box = doc.querySelector(".compare");
var split = box.querySelector(".split"), over = box.querySelector(".over");
var right = box.querySelector(".right-pick");
var before = over.style.clipPath;
split.value = 20;
split.dispatchEvent(new Event("input"));
right.value = right.options[right.options.length - 1].value;
right.dispatchEvent(new Event("change"));
return {before: before, after: over.style.clipPath, under: box.querySelector(".under").src.slice(0, 30),
        models: doc.querySelectorAll("#ranking tbody tr").length};
"""


@pytest.mark.skipif(browser.chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_works_in_chromium(report, tmp_path):
    _, page = report
    result, console = browser.check_page(page, SLIDER, tmp_path)
    assert console == [], console
    assert len(result["images"]) >= 8 and all(image["loaded"] for image in result["images"])
    checked = result["checked"]
    assert checked["before"] == "inset(0px 50% 0px 0px)" and checked["after"] == "inset(0px 80% 0px 0px)"
    assert checked["under"].startswith("data:image/jpeg") and checked["models"] == 3
