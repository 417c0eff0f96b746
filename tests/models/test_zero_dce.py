"""Zero-DCE: the official Epoch99.pth loads strictly, our network reproduces the official model.py on LOL images,
exports to ONNX within the parity gate, and the zoo's LOL eval15 score is the official code's."""
import json

import numpy as np
import pytest
import torch

from conftest import loaded, raw_state, needs_ncnn, official_module, LOL, SHARED, WEIGHTS
from modelzoo import compile as compiler
from modelzoo import imaging, metrics
from modelzoo.export import export_onnx

REFERENCE = SHARED / "reference" / "zero-dce" / "model.py"
IMAGES = ("1", "22", "111")  # three LOL eval15 pairs, full 600x400
# Measured here (CPU, onnxruntime fp32, mean over the 15 LOL eval15 pairs). Not published numbers.
MEASURED = {"zoo": {"psnr": 14.8611, "ssim": 0.5591}, "paper": {"psnr": 14.8607, "ssim": 0.5588}}

pytestmark = pytest.mark.skipif(not (WEIGHTS / "zero-dce" / "Epoch99.pth").is_file(),
                                reason="../shared Zero-DCE weights not present")
needs_reference = pytest.mark.skipif(not REFERENCE.is_file(), reason="../shared official Zero-DCE code not present")


@pytest.fixture(scope="module")
def zero_dce():
    from modelzoo.plugins import registry

    return registry().model("zero-dce")


@pytest.fixture(scope="module")
def state(zero_dce):
    return raw_state(zero_dce)


@pytest.fixture(scope="module")
def network(zero_dce):
    return loaded(zero_dce)


@pytest.fixture(scope="module")
def official(state):
    """The official enhance_net_nopool, imported from ../shared/reference (read only, never copied)."""
    module = official_module("official_zero_dce_model", REFERENCE)
    network = module.enhance_net_nopool()
    network.load_state_dict(state)
    return network.eval()


def lol_low(name):
    """A LOL low-light image as the official lowlight_test.py feeds it: uint8 / 255.0, float32, 1x3xHxW."""
    image = imaging.read_rgb(LOL / "low" / f"{name}.png") / 255.0
    return torch.from_numpy(image).float().permute(2, 0, 1)[None]


def test_official_weights_load_strictly(zero_dce, state, network):
    assert len(state) == 14
    assert set(network.state_dict()) == set(state)
    for key, value in network.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert sum(p.numel() for p in network.parameters()) == zero_dce.card["complexity"]["params"] == 79416


def test_a_missing_key_is_refused(zero_dce, state):
    broken = {k: v for k, v in state.items() if k != "e_conv7.bias"}
    with pytest.raises(RuntimeError, match="e_conv7.bias"):
        zero_dce.load_weights(zero_dce.network("official"), broken)


@needs_reference
@pytest.mark.parametrize("name", IMAGES)
def test_matches_the_official_code_on_lol(network, official, name):
    x = lol_low(name)
    assert x.shape == (1, 3, 400, 600)
    with torch.no_grad():
        ours, theirs = network(x), official(x)
    for mine, reference in zip(ours, theirs):  # (image after 4 curves, after 8 curves, the 24 curve maps)
        assert mine.shape == reference.shape
        assert float((mine - reference).abs().max()) <= 1e-5


def test_deploy_keeps_the_enhanced_image_in_range(zero_dce, network):
    deployed = zero_dce.deploy(network).eval()
    generator = torch.Generator().manual_seed(3)
    for x in (torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8), torch.rand(1, 3, 9, 13, generator=generator),
              torch.rand(1, 3, 1, 1, generator=generator)):
        with torch.no_grad():
            (enhanced,) = deployed(x)
            _, expected, curves = network(x)
        assert torch.equal(enhanced, expected)
        assert curves.shape == (1, 24, *x.shape[2:]) and float(curves.abs().max()) <= 1.0
        # LE(x) = x + a (x^2 - x) with |a| <= 1 maps [0, 1] into [0, 1]; allow float rounding only
        assert enhanced.shape == x.shape
        assert float(enhanced.min()) >= -1e-6 and float(enhanced.max()) <= 1.0 + 1e-6
        image = zero_dce.enhance([enhanced.numpy()])
        assert image.shape == (*x.shape[2:], 3)


def test_curves_brighten_a_dark_image(network):
    """The property the model exists for: a LOL low-light image comes out brighter, its order kept."""
    x = lol_low("1")
    with torch.no_grad():
        _, enhanced, _ = network(x)
    assert float(enhanced.mean()) > 3 * float(x.mean())


def test_onnx_export_parity(zero_dce, tmp_path):
    job = compiler.prepare(zero_dce, "fp32", "onnxruntime")
    report = export_onnx(job, tmp_path / "zero-dce.onnx")
    assert report["max_abs_diff"] <= 1e-4
    assert report["shape"] == [1, 3, 400, 600]


@pytest.mark.slow  # a pnnx conversion
@needs_ncnn
def test_ncnn_build_matches_torch_on_lol(zero_dce, network):
    """The curves square with x * x, not a one-input Pow: ncnn would run that in place on its input blob."""
    job = compiler.prepare(zero_dce, "ncnn-fp32")
    session = compiler.load(job, log=lambda *_: None)
    x = lol_low("22")
    (enhanced,) = session.run(x.numpy())
    with torch.no_grad():
        _, expected, _ = network(x)
    assert float(np.abs(enhanced - expected.numpy()).max()) <= 1e-5


@pytest.mark.slow
@needs_reference
def test_lol_eval15_matches_the_official_code(cli, tmp_path, official):
    scores = {}
    for protocol in ("zoo", "paper"):
        result = cli("run", "zero-dce", "--input", LOL / "low", "--reference", LOL / "high", "--protocol", protocol,
                     "--output", tmp_path / protocol, "--json", "--quiet")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert len(summary["images"]) == 15 and not summary["failures"]
        assert summary["protocol"] == protocol and summary["backend"] == "onnxruntime"
        scores[protocol] = summary["mean"]
        assert scores[protocol]["psnr"] == pytest.approx(MEASURED[protocol]["psnr"], abs=0.002)
        assert scores[protocol]["ssim"] == pytest.approx(MEASURED[protocol]["ssim"], abs=0.0005)
    # the official code's own outputs, saved the way lowlight_test.py saves them (save_image rounds)
    official_psnr = []
    for low in sorted((LOL / "low").glob("*.png")):
        with torch.no_grad():
            _, enhanced, _ = official(lol_low(low.stem))
        pixels = enhanced[0].mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        official_psnr.append(metrics.psnr(pixels, imaging.read_rgb(LOL / "high" / low.name)))
    assert scores["paper"]["psnr"] == pytest.approx(float(np.mean(official_psnr)), abs=0.01)
