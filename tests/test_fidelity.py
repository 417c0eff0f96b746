"""Photos of other kinds and a 12 MP photo's memory: what makes a build accurate and usable besides the dataset
score (modelzoo/fidelity.py), and how the automatic choice reads it (modelzoo/choose.py)."""
import json
import shutil

import numpy as np
import pytest

from conftest import LOL, ROOT, needs_shared
from modelzoo import choose, documents, fidelity, imaging
from modelzoo.plugins import registry


def photos_document(model, build, backend, min_db, peaks):
    runs = [{"tile": tile, "seconds": 1.0, "peak_rss_mb": mb} for tile, mb in peaks]
    document = fidelity.document(model, build, backend, ("fp32", "onnxruntime"), {"DICM": [min_db, 60.0]}, runs,
                                 (3000, 4000))
    fidelity.save(model, document)
    return document


@pytest.fixture
def model(tmp_path, monkeypatch):
    """A copy of SCI with made-up eval results: fp32 and fp16 on two runtimes, all within tolerance."""
    monkeypatch.setenv("MODELZOO_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "sci"
    shutil.copytree(ROOT / "models" / "sci", folder, ignore=shutil.ignore_patterns("__pycache__", "results"))
    (folder / "results").mkdir()
    model = type(registry().model("sci"))(folder / "card.yaml")
    for build, backend in [("fp32", "onnxruntime"), ("fp16", "onnxruntime"), ("fp32", "openvino"), ("fp16", "openvino")]:
        document = {"model": "sci", "variant": model.default_variant, "build": build, "backend": backend,
                    "dataset": {"name": "lol-eval15"}, "metrics": {"zoo": {"mean": {"psnr": 14.85, "ssim": 0.524}}}}
        (folder / "results" / f"eval-lol-eval15-{build}-{backend}.json").write_text(json.dumps(document))
    return model


def test_photos_documents_validate_and_decide_what_counts(model):
    on = lambda isa: {"id": f"t-{isa}", "isa": isa, "cpu": "t", "cores": 2, "flags": [], "gpu": None}  # noqa: E731
    assert len(choose.candidates(model, registry())) == 4  # no photos yet
    photos_document(model, "fp32", "onnxruntime", 99.0, [(1024, 1800)])
    photos_document(model, "fp16", "onnxruntime", 38.5, [(1024, 900)])  # far from fp32 on one photo
    photos_document(model, "fp32", "openvino", 55.0, [(1024, 2600), (512, 1500)])  # fits at 512 px tiles
    # fp16 on openvino: not measured on photos, so not accurate once the model has photos results
    path = model.results_dir() / "photos-fp32-openvino.json"
    assert documents.guess_kind(path, documents.read(path)) == "photos"
    assert documents.errors(documents.read(path), "photos", str(path)) == []
    found = choose.candidates(model, registry())
    assert sorted(found) == [("fp32", "onnxruntime"), ("fp32", "openvino")]
    assert choose.on_photos(choose.photo_results(model), ("fp32", "openvino")) == (True, 512)
    photos_document(model, "fp32", "openvino", 55.0, [(1024, 2600), (512, 2100), (256, 2050)])  # fits at none
    assert not choose.on_photos(choose.photo_results(model), ("fp32", "openvino"))[0]
    chosen = choose.choose(model, machine=on("avx2"))
    assert (chosen.build, chosen.backend, chosen.tile) == ("fp32", "onnxruntime", 1024)
    assert chosen.reason.endswith("; 1024 px tiles keep a 12 MP photo within 2 GB")


@needs_shared
def test_a_build_is_compared_with_the_reference_on_each_photo_at_its_own_size(model, tmp_path):
    """In-process pieces of fidelity.measure on two LOL photos: fp16 stays close to fp32, the reference to itself."""
    photos = sorted((LOL / "low").iterdir())[:2]
    base = {"model": "sci", "sets": {"lol": [str(p) for p in photos]}, "scratch": str(tmp_path), "tile": 256,
            "shape": [300, 400]}
    expected = fidelity.outputs({**base, "build": "fp32", "backend": "onnxruntime"})
    got = fidelity.outputs({**base, "build": "fp16", "backend": "onnxruntime"})
    assert np.load(got["lol"][0]).shape == imaging.read_rgb(photos[0]).shape  # each at its own size
    per_set = fidelity.agreements(expected, got)
    assert 30 < min(per_set["lol"]) < 99 and fidelity.agreements(expected, expected) == {"lol": [99.0, 99.0]}
    peak = fidelity.photo_peak({**base, "build": "fp16", "backend": "onnxruntime"})
    assert peak["tile"] == 256 and peak["peak_rss_mb"] > 0
    document = fidelity.document(model, "fp16", "onnxruntime", ("fp32", "onnxruntime"), per_set, [peak], (300, 400))
    assert document["min_db"] == min(per_set["lol"]) and documents.errors(document, "photos", "x") == []


def test_photos_needs_something_to_compare_on(cli):
    result = cli("photos", "sci")
    assert result.exit_code == 2 and "give at least one --input folder or --samples" in result.stderr
