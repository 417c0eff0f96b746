"""Shared fixtures: real weights and data from ../shared, a per-session artifact cache, a CLI runner."""
import importlib.util
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MODELZOO_SHARED", ROOT.parent / "shared"))
WEIGHTS = SHARED / "weights"
DATA = SHARED / "data"
LOL = DATA / "LOL" / "eval15"
PAIRLIE_WEIGHTS = WEIGHTS / "pairlie" / "PairLIE.pth"

needs_shared = pytest.mark.skipif(not PAIRLIE_WEIGHTS.is_file(), reason="../shared weights and data not present")
needs_ncnn = pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("ncnn", "pnnx")),
                                reason="ncnn and pnnx not installed (pip install -e '.[ncnn]')")


def raw_state(model, variant=None):
    """A variant's official weights from ../shared (never downloaded), as Model.load_weights receives them: a
    state dict, {role: state dict} for a `files` variant, None for a variant without weights."""
    from modelzoo import weights

    return weights.load(model, variant, weights.resolve(model, variant, download=False))


def loaded(model, variant=None):
    """The plugin's network for `variant` with its official weights loaded through the plugin, in eval mode."""
    variant = variant or model.default_variant
    return model.with_weights(variant, raw_state(model, variant), f"{model.name}/{variant}")


def official_module(name, path):
    """Import an official reference file from ../shared/reference (read only, never copied) as module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def saved_scores(name, variant=None, build="fp32", backend="onnxruntime", protocol="zoo", dataset="lol-eval15"):
    """A protocol's block ({"mean", "images"}) of the results file `modelzoo eval --save` wrote for the model."""
    from modelzoo import evaluate
    from modelzoo.plugins import registry

    model = registry().model(name)
    path = model.results_dir() / evaluate.results_name(model, dataset, build, backend,
                                                       variant or model.default_variant)
    return json.loads(path.read_text())["metrics"][protocol]


def reproduces_saved(cli, tmp_path, name, images=("1", "111"), variant=None, backend="onnxruntime",
                     protocol="zoo", psnr_abs=0.002, ssim_abs=0.0005):
    """`modelzoo run` on a few LOL eval15 images gives the per-image scores of the saved full evaluation (the
    whole set was run once by `modelzoo eval --save`; CI re-runs a few images, the brief's budget)."""
    saved = saved_scores(name, variant, backend=backend, protocol=protocol)
    (tmp_path / "in").mkdir()
    for stem in images:
        (tmp_path / "in" / f"{stem}.png").symlink_to(LOL / "low" / f"{stem}.png")
    result = cli("run", name, "--input", tmp_path / "in", "--reference", LOL / "high", "--backend", backend,
                 "--protocol", protocol, "--output", tmp_path / "out", "--json", "--quiet",
                 *(["--variant", variant] if variant else []))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert sorted(i["name"] for i in summary["images"]) == sorted(images) and not summary["failures"]
    for image in summary["images"]:
        expected = saved["images"][image["name"]]
        assert image["psnr"] == pytest.approx(expected["psnr"], abs=psnr_abs), image["name"]
        assert image["ssim"] == pytest.approx(expected["ssim"], abs=ssim_abs), image["name"]
    return saved


@pytest.fixture(scope="session", autouse=True)
def environment(tmp_path_factory):
    """Point the engine at ../shared, and at a cache and a data folder that live for this test session only."""
    cache = tmp_path_factory.mktemp("cache")
    saved = {k: os.environ.get(k) for k in ("MODELZOO_CACHE", "MODELZOO_WEIGHTS", "MODELZOO_DATA", "MODELZOO_HOME",
                                           "MODELZOO_LOAD_PLUGINS", "MODELZOO_DEBUG", "MODELZOO_OFFLINE",
                                           "MODELZOO_BUILD")}
    # MODELZOO_BUILD=first: a run without --build uses the card's first build, so tests do not depend on this
    # machine's bench results; tests/test_choose.py tests the automatic choice itself.
    os.environ.update(MODELZOO_CACHE=str(cache), MODELZOO_WEIGHTS=str(WEIGHTS), MODELZOO_DATA=str(DATA),
                      MODELZOO_HOME=str(tmp_path_factory.mktemp("home")), MODELZOO_BUILD="first")
    for key in ("MODELZOO_LOAD_PLUGINS", "MODELZOO_DEBUG", "MODELZOO_OFFLINE"):
        os.environ.pop(key, None)
    yield cache
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def fresh_registry():
    """Reload plugins for this test (it may change MODELZOO_LOAD_PLUGINS), and again afterwards."""
    from modelzoo import plugins

    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def cli():
    """Invoke `modelzoo ...` in-process; returns the click Result."""
    from modelzoo.cli import cli as group

    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(group, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def pairlie():
    from modelzoo.plugins import registry

    return registry().model("pairlie")

CARD_TEMPLATE_MODEL = ROOT / "tests" / "data" / "toy" / "card.yaml"
