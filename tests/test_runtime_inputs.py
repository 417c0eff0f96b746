"""Runtime inputs beyond the image (card runtime_inputs): set by --set and load(), carried by every export as
named graph inputs so one compiled build serves every value, fed to tiles, calibration and bench, and derived
from the reference image by reference-guided protocols."""
import json

import numpy as np
import pytest
import torch

from conftest import needs_ncnn
from toys import FP32, NCNN, TORCH, Gain, ToyModel, images, int8, registered, save_weights, weights_for, write_card

import modelzoo
from modelzoo import api, documents, validation
from modelzoo.errors import ZooError

RATIO = {"type": "number", "minimum": 1, "maximum": 20, "default": 5, "description": "illumination ratio"}
PROTOCOLS = {"plain": {"description": "default ratio", "postprocess": {}, "quantize": "clip"},
             "gt-ratio": {"description": "ratio from the reference (reference-guided)", "reference_guided": True,
                          "postprocess": {}, "quantize": "clip"}}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy-ratio")
    calibration = images(folder / "calib", count=4)
    entry = save_weights("toy-ratio", "gain.pth", weights_for(Gain))
    card = write_card(folder / "model", "toy-ratio", builds={"fp32": FP32, "ncnn": NCNN, "eager": TORCH,
                                                              "int8": int8(calibration)},
                      weights={"official": entry}, runtime_inputs={"ratio": RATIO}, protocols=PROTOCOLS)
    model = ToyModel(card)
    with registered(model):
        yield model


def reference(model, image, ratio):
    """The toy network in torch on an RGB uint8 image: uint8 out, as an Enhancer gives."""
    from modelzoo.imaging import quantize

    network = model.network("official")
    network.load_state_dict(weights_for(Gain))
    x = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0)
    with torch.no_grad():
        out = network(x, torch.tensor([ratio], dtype=torch.float32))[0][0].numpy().transpose(1, 2, 0)
    return quantize(out, "round")


def photo(height=40, width=50, seed=1):
    return np.random.default_rng(seed).integers(0, 100, (height, width, 3), dtype=np.uint8)


def test_card_validates_and_bad_values_are_one_line_errors(toy, cli):
    problems, _ = validation.validate_file(toy.card_path)
    assert problems == []
    assert toy.settings({"ratio": "3"}) == ({}, {"ratio": 3.0})
    for value, expected in (("abc", "--set ratio: expected a number, got 'abc'"),
                            ("50", "--set ratio: 50.0 is out of range (1 to 20)")):
        with pytest.raises(ZooError, match="^" + expected.replace("(", r"\(").replace(")", r"\)") + "$"):
            toy.settings({"ratio": value})
    with pytest.raises(ZooError, match="has no post-processing parameter or runtime input 'ration' "
                                       r"\(allowed: ratio\)"):
        toy.settings({"ration": 3})


def test_a_default_out_of_range_or_a_guided_protocol_without_runtime_inputs_fails_validation(tmp_path):
    card = write_card(tmp_path / "a", "toy-bad", runtime_inputs={"ratio": {**RATIO, "default": 30}},
                      protocols=PROTOCOLS)
    problems, _ = validation.validate_file(card)
    assert any("runtime_inputs.ratio.default: 30.0 is out of range" in p for p in problems)
    card = write_card(tmp_path / "b", "toy-bad", protocols=PROTOCOLS)
    problems, _ = validation.validate_file(card)
    assert any("protocols.gt-ratio.reference_guided: the card declares no runtime_inputs" in p for p in problems)


@pytest.mark.parametrize("build,backend", [("fp32", "onnxruntime"), ("fp32", "openvino"), ("eager", "torch"),
                                           pytest.param("ncnn", "ncnn", marks=needs_ncnn)])
def test_one_compiled_build_serves_every_value(toy, build, backend):
    image = photo()
    three = modelzoo.load("toy-ratio", build=build, backend=backend, ratio=3)
    seven = modelzoo.load("toy-ratio", build=build, backend=backend, ratio=7)
    default = modelzoo.load("toy-ratio", build=build, backend=backend)
    if backend != "torch":
        assert three.job.workdir == seven.job.workdir  # the same artifact
    for enhancer, ratio in ((three, 3), (seven, 7), (default, 5)):
        diff = np.abs(enhancer(image).astype(int) - reference(toy, image, ratio).astype(int)).max()
        assert diff <= 1, (backend, ratio, diff)
    assert np.abs(three(image).astype(int) - seven(image).astype(int)).max() > 20


def test_the_onnx_export_has_the_runtime_input_by_name(toy):
    import onnx

    enhancer = modelzoo.load("toy-ratio", build="fp32", backend="onnxruntime")
    graph = onnx.load(str(enhancer.job.workdir / "model.onnx")).graph
    ratio = next(i for i in graph.input if i.name == "ratio")
    assert [d.dim_value for d in ratio.type.tensor_type.shape.dim] == [1]
    assert ratio.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_tiles_get_the_runtime_inputs(toy):
    image = photo(70, 90)
    enhancer = api.open_enhancer(toy, "eager", "torch", native=True, tile=32, inputs={"ratio": 3.0})
    whole = api.open_enhancer(toy, "eager", "torch", native=True, tile=0, inputs={"ratio": 3.0})
    assert np.array_equal(enhancer(image), whole(image))
    assert np.abs(enhancer(image).astype(int) - reference(toy, image, 3).astype(int)).max() <= 1


def test_int8_calibrates_with_the_runtime_inputs_and_serves_other_values(toy):
    image = photo()
    for ratio in (2, 6):
        out = modelzoo.load("toy-ratio", build="int8", ratio=ratio)(image)
        assert np.abs(out.astype(int) - reference(toy, image, ratio).astype(int)).mean() < 3


def test_run_set_and_the_reference_guided_protocol(toy, cli, tmp_path):
    low = images(tmp_path / "low", count=2)
    high = tmp_path / "high"
    high.mkdir()
    from modelzoo.imaging import read_rgb, write_rgb

    for path in low.iterdir():  # references twice as bright: the guided ratio is about 2
        write_rgb(high / path.name, (read_rgb(path).astype(int) * 2).clip(0, 255).astype(np.uint8))
    result = cli("run", "toy-ratio", "--input", low, "--output", tmp_path / "out", "--build", "eager",
                 "--set", "ratio=3", "--reference", high, "--protocol", "gt-ratio", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["runtime_inputs"] == {"ratio": 3.0}
    for image in summary["images"]:
        guided = image["runtime_inputs"]["gt-ratio"]["ratio"]
        assert 1.9 < guided < 2.1
        from modelzoo.imaging import read_rgb

        written = read_rgb(image["output"])  # written with --set ratio=3, scored with the guided ratio
        assert np.abs(written.astype(int) - reference(toy, read_rgb(image["input"]), 3).astype(int)).max() <= 1
    bad = cli("run", "toy-ratio", "--input", low, "--output", tmp_path / "out2", "--build", "eager",
              "--set", "ratio=abc")
    assert bad.exit_code == 1 and bad.output.strip().splitlines()[-1] == \
        "error: --set ratio: expected a number, got 'abc'"


def test_evaluation_records_the_runtime_inputs(toy, tmp_path):
    from modelzoo.datasets import Dataset
    from modelzoo.evaluate import evaluate
    from modelzoo.imaging import read_rgb, write_rgb
    from modelzoo.plugins import registry

    root = tmp_path / "data"
    low = images(root / "pairs" / "low", count=2)
    (root / "pairs" / "high").mkdir()
    for path in low.iterdir():
        write_rgb(root / "pairs" / "high" / path.name, (read_rgb(path).astype(int) * 3).clip(0, 255).astype(np.uint8))
    registry().datasets["toy-pairs"] = Dataset("toy-pairs", "pairs", paired=True)
    try:
        document = evaluate(toy, "toy-pairs", build="eager", data_root=root, results_dir=tmp_path / "results",
                            progress=False)
    finally:
        registry().datasets.pop("toy-pairs")
    assert document["runtime_inputs"] == {"ratio": 5.0}
    guided = document["metrics"]["gt-ratio"]["runtime_inputs"]
    assert set(guided) == {"im0", "im1"} and all(2.8 < v["ratio"] < 3.2 for v in guided.values())
    # the guided ratio fits these references better than the default
    assert document["metrics"]["gt-ratio"]["mean"]["psnr"] > document["metrics"]["plain"]["mean"]["psnr"]
    saved = documents.load(next((tmp_path / "results").glob("*.json")), "results")
    assert saved["metrics"]["gt-ratio"]["runtime_inputs"] == guided


def test_bench_feeds_the_defaults(toy):
    from modelzoo import bench

    document = bench.run(toy, builds=["fp32"], warmup=0, repeat=1, isolate=False, log=lambda m: None)
    assert document["rows"] and document["rows"][0]["per_image_ms"]["p50"] > 0


def test_an_unpaired_dataset_skips_the_reference_guided_protocol(toy, tmp_path):
    """No references, no ratio to derive: eval scores the plain protocol only, and asking for the guided one is
    a one-line error."""
    from modelzoo.datasets import Dataset
    from modelzoo.evaluate import evaluate
    from modelzoo.plugins import registry

    root = tmp_path / "data"
    images(root / "photos", count=2, shape=(192, 192))  # NIQE needs a few 96x96 patches
    registry().datasets["toy-photos"] = Dataset("toy-photos", "photos", paired=False)
    try:
        document = evaluate(toy, "toy-photos", build="eager", data_root=root, results_dir=tmp_path / "results",
                            progress=False)
        with pytest.raises(ZooError, match="protocol 'gt-ratio' needs references; the dataset has none"):
            evaluate(toy, "toy-photos", build="eager", protocol="gt-ratio", data_root=root,
                     results_dir=tmp_path / "results", progress=False)
    finally:
        registry().datasets.pop("toy-photos")
    assert set(document["metrics"]) == {"plain"}
