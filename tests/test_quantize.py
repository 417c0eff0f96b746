"""fp16 conversion and int8 calibration: the pieces on small inputs, the accuracy on LOL (slow)."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from conftest import needs_shared
from modelzoo import quantize


class Branchy(nn.Module):
    """An output that is also read inside the graph (SCI's illumination) and a Pad -> Conv -> Relu chain."""

    def __init__(self):
        super().__init__()
        self.pad, self.conv = nn.ReflectionPad2d(1), nn.Conv2d(3, 3, 3)

    def forward(self, x):
        light = torch.sigmoid(torch.relu(self.conv(self.pad(x))))
        return light, x / light.clamp(1e-4, 1)


def export(tmp_path):
    path = tmp_path / "branchy.onnx"
    torch.onnx.export(Branchy().eval(), (torch.rand(1, 3, 8, 8),), str(path), input_names=["input"],
                      output_names=["light", "out"], opset_version=17, dynamo=False)
    return path


def test_fp16_model_with_an_output_read_inside_runs(tmp_path):
    source, target = export(tmp_path), tmp_path / "fp16.onnx"
    quantize.to_fp16(source, target)
    x = np.random.default_rng(0).random((1, 3, 8, 8), dtype=np.float32)
    expected = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    actual = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    for e, a in zip(expected, actual):
        assert a.dtype == np.float32 and np.abs(e - a).max() < 1e-2


class Offset(nn.Module):
    """(z - 1000) - (z - z) with z = y - -1000.25: float16 has no 1000.25 (its spacing at 1000 is 0.5), so an fp16
    build is 0.25 off; z is read thrice, which onnxconverter-common alone would still pass through fp16."""

    def forward(self, y):
        z = y - -1000.25
        return (z - 1000.0) - (z - z)


def levels(x):
    """x rounded down to quarters through int64: a Cast int64 -> float in the graph (as FLOL's DFT tables)."""
    return (x * 4).long().to(x.dtype) / 4


class Indexed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.offset = nn.Conv2d(3, 3, 1), Offset()

    def forward(self, x):
        return self.offset(self.conv(x) * (1 + levels(x)))


def fp16_error(tmp_path, settings=None):
    """Max abs difference of the fp16 build of Indexed from its fp32 export (ONNX Runtime)."""
    source, target = tmp_path / "indexed.onnx", tmp_path / "indexed-fp16.onnx"
    torch.onnx.export(Indexed().eval(), (torch.rand(1, 3, 8, 8),), str(source), input_names=["input"],
                      output_names=["out"], opset_version=17, dynamo=False)
    assert any(n.op_type == "Cast" for n in onnx.load(str(source)).graph.node)
    quantize.to_fp16(source, target, settings, "b.yaml")
    x = np.random.default_rng(0).random((1, 3, 8, 8), dtype=np.float32)
    expected, actual = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
                        for p in (source, target))
    return float(np.abs(expected - actual).max())


def test_fp16_keeps_the_named_nodes_in_fp32(tmp_path):
    """ONNX Runtime loads the fp16 graph despite the Cast of int64 values, and keep_float_ops / keep_float_nodes
    keep the offset, its constants included, in fp32."""
    assert fp16_error(tmp_path) > 0.2  # all fp16: the constant's rounding
    assert fp16_error(tmp_path, {"keep_float_ops": ["Sub"]}) < 5e-3  # only the 1x1 convolution's rounding
    assert fp16_error(tmp_path, {"keep_float_nodes": ["/offset/"]}) < 5e-3


def test_fp16_keep_float_names_that_match_nothing_are_errors(tmp_path):
    """A misspelt op type or prefix would otherwise convert the very nodes it meant to keep."""
    from modelzoo.errors import ZooError

    with pytest.raises(ZooError, match=r"^b.yaml: backend.quantize.keep_float_ops: Atan2 is not an op type of the "
                                       r"export \(its op types: Add, Cast, "):
        fp16_error(tmp_path, {"keep_float_ops": ["Atan2"]})
    with pytest.raises(ZooError, match=r"^b.yaml: backend.quantize.keep_float_nodes: /ofset/ is the prefix of no "
                                       r"node of the export \(its nodes: "):
        fp16_error(tmp_path, {"keep_float_nodes": ["/ofset/"]})


def test_calibration_plan_shares_ranges_through_pad_and_relu(tmp_path):
    plan = quantize.calibration_plan(onnx.load(str(export(tmp_path))))
    model = onnx.load(str(export(tmp_path)))
    kinds = {n.output[0]: n.op_type for n in model.graph.node}
    pad = next(t for t, k in kinds.items() if k == "Pad")
    conv = next(t for t, k in kinds.items() if k == "Conv")
    relu = next(t for t, k in kinds.items() if k == "Relu")
    assert plan[pad] == "input"  # reflection adds no new values
    assert plan[conv] == relu  # QDQ fuses Conv + Relu


def test_histogram_ranges():
    rng = np.random.default_rng(0)
    histogram = quantize.Histogram()
    for _ in range(3):
        histogram.add(np.concatenate([rng.random(40000, dtype=np.float32), np.float32([50.0])]))
    assert histogram.minmax() == (pytest.approx(0.0, abs=1e-3), 50.0)
    low, high = histogram.percentile(99.9)
    assert low == pytest.approx(0.0, abs=1e-3) and 0.95 < high < 1.1  # the outlier is clipped
    tailed = quantize.Histogram()
    tailed.add(rng.exponential(1.0, 200000).astype(np.float32))
    assert 0.0 == tailed.kl_divergence()[0] and tailed.kl_divergence()[1] < 0.9 * tailed.high  # clips the tail
    signed = quantize.Histogram()
    for value in (0.5, 1.0, -3.0, 2.0):  # negatives after the first values switch the grid to signed
        signed.add(np.float32([value]))
    assert signed.signed and signed.minmax() == (-3.0, 2.0)
    assert signed.counts.sum() == 4


@needs_shared
@pytest.mark.slow
def test_fp16_and_int8_hold_the_accuracy(cli, tmp_path):
    """fp16 within 0.02 dB / 0.002 SSIM of fp32; int8 at least the 18.45 dB / 0.740 target on LOL eval15."""
    scores = {}
    for build in ("fp32", "fp16", "int8"):
        result = cli("eval", "pairlie", "--dataset", "lol-eval15", "--build", build, "--protocol", "zoo",
                     "--results", tmp_path, "--json", "--quiet")
        assert result.exit_code == 0, result.output
        scores[build] = json.loads(result.stdout)["metrics"]["zoo"]["mean"]
    assert scores["fp16"]["psnr"] == pytest.approx(scores["fp32"]["psnr"], abs=0.02)
    assert scores["fp16"]["ssim"] == pytest.approx(scores["fp32"]["ssim"], abs=0.002)
    assert scores["int8"]["psnr"] >= 18.45 and scores["int8"]["ssim"] >= 0.740


def small_nncf_build(folder, keep_float=True):
    """PairLIE's int8-nncf build at 32x48 on 4 calibration images (NNCF's whole path in seconds); with
    keep_float=False, without its skip_nodes."""
    import yaml

    from conftest import ROOT

    spec = yaml.safe_load((ROOT / "models" / "pairlie" / "build" / "int8-nncf.yaml").read_text())
    spec["frontend"]["shape"] = {"input": [1, 3, 32, 48]}
    spec["dataset"]["sampler"]["get_data_num"] = 4
    spec["dataset"]["process_ops"][1]["size"] = [32, 48]
    if not keep_float:
        del spec["backend"]["quantize"]["skip_nodes"]
    path = folder / f"int8-nncf-{'float' if keep_float else 'every'}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def nncf_build(tmp_path):
    return small_nncf_build(tmp_path)


@needs_shared
def test_nncf_quantizes_for_openvino_and_keeps_the_named_convolutions_float(pairlie, nncf_build, tmp_path):
    pytest.importorskip("nncf")
    import openvino as ov

    from modelzoo import compile as compiler

    job = compiler.prepare(pairlie, str(nncf_build), workspace=tmp_path / "ws")
    assert job.backend.name == "openvino"
    session = compiler.load(job, log=lambda m: None)
    assert job.report["calibration"]["engine"] == "nncf" and job.report["calibration"]["images"] == 4
    assert len(job.report["calibration"]["float_nodes"]) == 3
    def fake_quantizes(job):
        ops = ov.Core().read_model(str(job.workdir / "model.xml")).get_ops()
        return sum(op.get_type_name() == "FakeQuantize" for op in ops)

    all_job = compiler.prepare(pairlie, str(small_nncf_build(tmp_path, keep_float=False)), workspace=tmp_path / "ws")
    compiler.ensure(all_job, log=lambda m: None)
    assert all_job.report["calibration"]["float_nodes"] == []
    assert 0 < fake_quantizes(job) < fake_quantizes(all_job)  # the three named convolutions stayed float
    x = quantize.calibration_inputs(job)[0]  # an image like those it was calibrated on
    with torch.no_grad():
        expected = [o.numpy() for o in job.torch_module()(torch.from_numpy(x))]
    for got, want in zip(session.run(x), expected):
        assert got.shape == want.shape and float(np.abs(got - want).mean()) < 0.02


@needs_shared
def test_nncf_builds_are_refused_on_onnxruntime(pairlie, nncf_build, tmp_path):
    from modelzoo import compile as compiler
    from modelzoo.errors import ZooError

    job = compiler.prepare(pairlie, str(nncf_build), "onnxruntime", workspace=tmp_path / "ws")
    with pytest.raises(ZooError, match="engine: nncf quantizes for openvino only, not onnxruntime"):
        compiler.ensure(job, log=lambda m: None)


def test_a_skip_node_that_is_not_in_the_graph_is_an_error(tmp_path):
    """A misspelt name would otherwise quantize the very convolution it meant to keep in float."""
    from modelzoo.errors import ZooError

    model = onnx.load(str(export(tmp_path)))
    conv = next(n.name for n in model.graph.node if n.op_type == "Conv")
    assert quantize.skipped_nodes(model, {"skip_nodes": [conv]}, "b.yaml") == [conv]
    with pytest.raises(ZooError, match=r"^b.yaml: backend.quantize.skip_nodes: /conv/Cnv is not a Conv of the "
                                       r"export \(its Convs: /conv/Conv\)"):
        quantize.skipped_nodes(model, {"skip_nodes": ["/conv/Cnv"]}, "b.yaml")


def test_keep_float_nodes_keeps_an_int8_builds_convolutions_float(tmp_path):
    from modelzoo.errors import ZooError

    model = onnx.load(str(export(tmp_path)))
    assert quantize.skipped_nodes(model, {"keep_float_nodes": ["/conv/"]}, "b.yaml") == ["/conv/Conv"]
    with pytest.raises(ZooError, match=r"^b.yaml: backend.quantize.keep_float_nodes: /cnv/ is the prefix of no node"):
        quantize.skipped_nodes(model, {"keep_float_nodes": ["/cnv/"]}, "b.yaml")
    with pytest.raises(ZooError, match=r"^b.yaml: backend.quantize.keep_float_ops: an int8 build quantizes only "):
        quantize.skipped_nodes(model, {"keep_float_ops": ["Relu"]}, "b.yaml")


class Gated(nn.Module):
    """Boolean and integer tensors between convolutions: a mask (Greater, Where) and levels through int64."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 3, 1)

    def forward(self, x):
        y = self.a(x)
        y = torch.where(y > 0, y, 0.1 * y) * (1 + levels(x[:, :1]))
        return torch.sigmoid(self.b(y))


def test_int8_calibrates_only_float_tensors(tmp_path):
    """A graph with boolean and int64 activations calibrates, quantizes its convolutions and runs."""
    from types import SimpleNamespace

    from modelzoo import imaging

    path, target = tmp_path / "gated.onnx", tmp_path / "gated-int8.onnx"
    torch.manual_seed(0)
    torch.onnx.export(Gated().eval(), (torch.rand(1, 3, 16, 16),), str(path), input_names=["input"],
                      output_names=["out"], opset_version=17, dynamo=False)
    typed = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    kinds = {info.name: info.type.tensor_type.elem_type for info in typed.graph.value_info}
    assert {onnx.TensorProto.BOOL, onnx.TensorProto.INT64} <= set(kinds.values())
    plan = quantize.calibration_plan(onnx.load(str(path)))
    assert plan and all(kinds.get(name, onnx.TensorProto.FLOAT) == onnx.TensorProto.FLOAT for name in plan)
    rng = np.random.default_rng(0)
    for index in range(2):
        imaging.write_rgb(tmp_path / "calib" / f"{index}.png", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    model = SimpleNamespace(card={"input": {"range": [0.0, 1.0]}}, runtime_inputs={}, multiple_of=1,
                            input_shape=lambda: [1, 3, 16, 16], runtime_arrays=lambda values=None: {})
    job = SimpleNamespace(spec={"backend": {"quantize": {"calibrate_mode": "percentile"}},
                                "dataset": {"path": str(tmp_path / "calib"), "process_ops": []}},
                          onnx=path, model=model, spec_path="gated.yaml", options={}, native=False,
                          backend=SimpleNamespace(name="onnxruntime"))
    quantize.to_int8(job, target)
    quantized = onnx.load(str(target))
    assert sum(n.op_type == "QuantizeLinear" for n in quantized.graph.node) >= 2
    x = rng.random((1, 3, 16, 16), dtype=np.float32)
    expected, actual = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
                        for p in (path, target))
    assert float(np.abs(expected - actual).max()) < 0.05


def test_accuracy_control_keeps_float_only_what_the_agreement_needs(tmp_path):
    """NNCF's accuracy-controlled quantization on a small two-conv model and eight calibration images: asking for
    an output identical to fp32's (99 dB) returns every convolution to float; a loose target keeps them int8."""
    pytest.importorskip("nncf")
    from types import SimpleNamespace

    from modelzoo import imaging

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 3, 3, padding=1)

        def forward(self, x):
            return torch.sigmoid(self.b(torch.relu(self.a(x))))

    torch.manual_seed(0)
    path = tmp_path / "two.onnx"
    torch.onnx.export(Two().eval(), (torch.rand(1, 3, 32, 32),), str(path), input_names=["input"],
                      output_names=["out"], opset_version=17, dynamo=False)
    rng = np.random.default_rng(0)
    for index in range(8):
        imaging.write_rgb(tmp_path / "calib" / f"{index}.png", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    model = SimpleNamespace(enhance=lambda outputs: np.clip(outputs[0][0].transpose(1, 2, 0), 0.0, 1.0), multiple_of=1,
                            input_shape=lambda: [1, 3, 32, 32], runtime_arrays=lambda values=None: {})

    def job(min_db):
        spec = {"backend": {"quantize": {"engine": "nncf", "accuracy_control": {"min_agreement_db": min_db,
                                                                                 "validation_images": 4}}},
                "dataset": {"path": str(tmp_path / "calib"), "process_ops": []}}
        return SimpleNamespace(spec=spec, onnx=path, model=model, spec_path="two.yaml", options={})

    _, strict = quantize.nncf_int8(job(99.0))
    assert len(strict["calibration"]["float_nodes"]) == 2  # nothing int8 is identical to fp32
    _, loose = quantize.nncf_int8(job(5.0))
    assert loose["calibration"]["float_nodes"] == [] and loose["calibration"]["accuracy_control"]["agreement_db"]
