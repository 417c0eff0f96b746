"""The compile step: reference-zoo build yamls, export with the deploy patch, the artifact cache."""
import json

import cv2
import numpy as np
import onnx
import pytest
import skimage.data
import torch

from conftest import SHARED, needs_shared
from modelzoo import compile as compiler
from modelzoo import quantize, samples
from modelzoo.errors import ZooError
from modelzoo.export import example_inputs, export_onnx
from modelzoo.quantize import CALIBRATE_MODES
from toys import Plain, ToyModel, images, int8, registered, save_weights, weights_for, write_card

pytestmark = needs_shared
REFERENCE_YAML = SHARED / "reference" / "vastmodelzoo" / "official_pairlie.yaml"


@pytest.mark.skipif(not REFERENCE_YAML.is_file(), reason="reference zoo yaml not present")
def test_vendor_backend_is_explained(cli):
    result = cli("compile", "pairlie", "--build", REFERENCE_YAML)
    assert result.exit_code == 1
    assert "'tvm_vacc' is the VastAI NPU compiler (vamc), which is not installed here" in result.stderr
    assert "available backends: " in result.stderr and "onnxruntime" in result.stderr


@pytest.mark.skipif(not REFERENCE_YAML.is_file(), reason="reference zoo yaml not present")
def test_reference_yaml_on_an_open_backend_names_its_missing_checkpoint(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the yaml's workspace is ./deploy_weights/
    result = cli("compile", "pairlie", "--build", REFERENCE_YAML, "--backend", "onnxruntime")
    assert result.exit_code == 1
    assert "frontend.checkpoint: /path/to/pairlie-3_400_600.onnx not found" in result.stderr
    assert list(tmp_path.iterdir()) == []  # refused before anything is written


def test_calibrate_modes_map_to_onnxruntime_methods():
    assert CALIBRATE_MODES == {"kl_divergence": "Entropy", "max": "MinMax", "percentile": "Percentile"}


def test_export_writes_torchscript_and_static_and_dynamic_onnx(cli, tmp_path):
    result = cli("export", "pairlie", "--output", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (tmp_path / "pairlie-3_400_600.torchscript.pt").is_file()
    for name, dynamic in (("pairlie-3_400_600.onnx", False), ("pairlie-dynamic.onnx", True)):
        model = onnx.load(str(tmp_path / name))
        assert model.opset_import[0].version >= 17
        assert [i.name for i in model.graph.input] == ["input"]
        assert [o.name for o in model.graph.output] == ["L", "R"]
        dims = model.graph.input[0].type.tensor_type.shape.dim
        assert (dims[2].dim_param != "") == dynamic and (dims[2].dim_value == 400) == (not dynamic)
        assert report[name]["max_abs_diff"] <= 1e-4


def test_second_compile_is_a_cache_hit_and_records_parity(cli, pairlie):
    first = json.loads(cli("compile", "pairlie", "--build", "fp32", "--json").stdout)[0]
    second = json.loads(cli("compile", "pairlie", "--build", "fp32", "--json").stdout)[0]
    assert second["cache"] == "hit" and second["artifact"] == first["artifact"]
    assert first["report"]["export"]["max_abs_diff"] <= 1e-4
    job = compiler.prepare(pairlie, "fp32")
    assert compiler.artifact_dir(job).name.startswith("fp32-onnxruntime-fp32-1x3x400x600-")



def test_editing_the_network_code_changes_the_artifact_key(tmp_path):
    """The cache key covers the model folder's Python files: an edited net.py never reuses an old artifact."""
    import shutil

    from conftest import ROOT
    from modelzoo.compile import code_hash
    from modelzoo.model import Model

    folder = tmp_path / "sci"
    shutil.copytree(ROOT / "models" / "sci", folder, ignore=shutil.ignore_patterns("__pycache__", "results"))
    model = Model(folder / "card.yaml")
    before = code_hash(model)
    assert code_hash(model) == before
    (folder / "net.py").write_text((folder / "net.py").read_text() + "\n# edited\n")
    assert code_hash(model) != before


def test_openvino_int8_converts_the_cached_onnxruntime_int8_and_calibrates_once(tmp_path, monkeypatch):
    """One calibration serves both runtimes: OpenVINO's int8 (own calibrator) is compiled from the QDQ model of
    the same build on ONNX Runtime, which it compiles first when it is not cached."""
    calibration = images(tmp_path / "calib", count=2)
    entry = save_weights("toy-donor", "plain.pth", weights_for(Plain))
    model = type("Toy", (ToyModel,), {"network_class": Plain})(
        write_card(tmp_path / "model", "toy-donor", builds={"int8": int8(calibration)}, weights={"official": entry}))
    calls = []
    original = quantize.to_int8
    monkeypatch.setattr(quantize, "to_int8", lambda job, target: calls.append(job.backend.name) or original(job, target))
    monkeypatch.setattr("modelzoo.backends.ort.to_int8", quantize.to_int8)
    with registered(model):
        openvino = compiler.prepare(model, "int8", "openvino", workspace=tmp_path / "cache")
        x = np.random.default_rng(0).random((1, 3, 32, 48), dtype=np.float32) * 0.4
        (from_openvino,) = compiler.load(openvino).run(x)
        onnxruntime = compiler.prepare(model, "int8", "onnxruntime", workspace=tmp_path / "cache")
        assert compiler.ensure(onnxruntime)["cache"] == "hit"  # OpenVINO's compile left it in the cache
        (from_onnxruntime,) = compiler.load(onnxruntime).run(x)
    assert calls == ["onnxruntime"]
    assert openvino.report["calibration"] == onnxruntime.report["calibration"]
    assert float(np.abs(from_openvino - from_onnxruntime).max()) <= 2 / 255  # the same int8 model, two runtimes


class ExportsOtherwise(Plain):
    """Plain whose exported graph adds 3e-4: an operator the export computes another way than torch."""

    def forward(self, x):
        (y,) = super().forward(x)
        return (y + 3e-4,) if torch.onnx.is_in_onnx_export() else (y,)


@pytest.mark.parametrize("limit", [None, 1e-3])
def test_the_cards_parity_limit_gates_the_onnx_export(tmp_path, limit):
    entry = save_weights("toy-parity", "plain.pth", weights_for(Plain))
    fields = {"weights": {"official": entry}, **({"parity_limit": limit} if limit else {})}
    model = type("Toy", (ToyModel,), {"network_class": ExportsOtherwise})(
        write_card(tmp_path / "model", "toy-parity", **fields))
    with registered(model):
        job = compiler.prepare(model, "fp32", "onnxruntime", workspace=tmp_path / "cache")
        if limit is None:
            with pytest.raises(ZooError, match=r"differs from torch by 3.0\de-04 \(limit 1e-04\)"):
                export_onnx(job, tmp_path / "toy.onnx")
        else:
            report = export_onnx(job, tmp_path / "toy.onnx")
            assert report["limit"] == 1e-3 and 2.9e-4 < report["max_abs_diff"] < 3.1e-4


def test_a_card_may_gate_its_export_on_the_built_in_sample(tmp_path):
    """parity_input: sample feeds the gate the darkened coffee sample at the build's shape instead of noise."""
    entry = save_weights("toy-sample-gate", "plain.pth", weights_for(Plain))
    noise_card = write_card(tmp_path / "noise", "toy-sample-gate", weights={"official": entry})
    sample_card = write_card(tmp_path / "sample", "toy-sample-gate", weights={"official": entry}, parity_input="sample")
    images = []
    for card in (noise_card, sample_card):
        model = type("Toy", (ToyModel,), {"network_class": Plain})(card)
        with registered(model):
            images.append(example_inputs(compiler.prepare(model, "fp32", "onnxruntime"))[0])
    noise, sample = images
    assert noise.shape == sample.shape == (1, 3, 32, 48) and sample.dtype == np.float32
    coffee = cv2.resize(samples.darken(skimage.data.coffee()), (48, 32), interpolation=cv2.INTER_AREA)
    assert np.array_equal(sample[0].transpose(1, 2, 0), coffee / np.float32(255))
    assert abs(float(noise.mean()) - 0.5) < 0.05 and float(sample.mean()) < 0.2  # noise vs a dark photo
