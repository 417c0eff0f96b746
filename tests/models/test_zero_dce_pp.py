"""Zero-DCE++: the official Epoch99.pth loads strictly, our network reproduces the official model.py (scale 12) on
LOL images cropped as the official test crops them, the engine pads other sizes to multiples of 12 and crops
back, ONNX export passes the parity gate, and the LOL eval15 scores match the official code's."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import loaded, raw_state, needs_ncnn, official_module, LOL, SHARED, WEIGHTS
from modelzoo import compile as compiler
from modelzoo import imaging, metrics
from modelzoo.export import export_onnx

REFERENCE = SHARED / "reference" / "zero-dce-pp" / "model.py"
SCALE = 12
IMAGES = ("1", "22", "111")  # three LOL eval15 pairs
# Measured here (CPU, onnxruntime fp32, mean over the 15 LOL eval15 pairs). Not published numbers. The zoo
# reflect-pads 600x400 to 600x408 and scores all 400 rows; the official test crops to 600x396 and so scores
# 396 rows, with the curve map up-scaled onto a slightly different grid: 0.012 dB apart.
MEASURED = {"zoo": {"psnr": 15.3578, "ssim": 0.5678}, "paper": {"psnr": 15.3575, "ssim": 0.5675}}
OFFICIAL_CROP = {"psnr": 15.3451, "ssim": 0.5681}  # the official protocol: crop to 396x600, save_image rounding

pytestmark = pytest.mark.skipif(not (WEIGHTS / "zero-dce-pp" / "Epoch99.pth").is_file(),
                                reason="../shared Zero-DCE++ weights not present")
needs_reference = pytest.mark.skipif(not REFERENCE.is_file(), reason="../shared official Zero-DCE++ code not present")


@pytest.fixture(scope="module")
def zero_dce_pp():
    from modelzoo.plugins import registry

    return registry().model("zero-dce-pp")


@pytest.fixture(scope="module")
def state(zero_dce_pp):
    return raw_state(zero_dce_pp)


@pytest.fixture(scope="module")
def network(zero_dce_pp):
    return loaded(zero_dce_pp)


@pytest.fixture(scope="module")
def official(state):
    """The official enhance_net_nopool(scale_factor=12), imported from ../shared/reference (read only)."""
    module = official_module("official_zero_dce_pp_model", REFERENCE)
    network = module.enhance_net_nopool(SCALE)
    network.load_state_dict(state)
    return network.eval()


def lol_low(name, crop=True):
    """A LOL low-light image as the official lowlight_test.py feeds it: uint8 / 255.0, float32, cropped down to
    multiples of 12 (600x400 -> 600x396), 1x3xHxW."""
    image = imaging.read_rgb(LOL / "low" / f"{name}.png") / 255.0
    if crop:
        image = image[:image.shape[0] // SCALE * SCALE, :image.shape[1] // SCALE * SCALE]
    return torch.from_numpy(image).float().permute(2, 0, 1)[None]


def mean(scores, metric):
    return float(np.mean([s[metric] for s in scores]))


def save_image_pixels(enhanced):
    """What torchvision.utils.save_image writes for a 1x3xHxW tensor: round(x * 255) clamped, uint8 HxWx3."""
    return enhanced[0].mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def test_official_weights_load_strictly(zero_dce_pp, state, network):
    assert len(state) == 28
    assert set(network.state_dict()) == set(state)
    for key, value in network.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert sum(p.numel() for p in network.parameters()) == zero_dce_pp.card["complexity"]["params"] == 10561


def test_a_missing_key_is_refused(zero_dce_pp, state):
    broken = {k: v for k, v in state.items() if k != "e_conv7.point_conv.bias"}
    with pytest.raises(RuntimeError, match="e_conv7.point_conv.bias"):
        zero_dce_pp.load_weights(zero_dce_pp.network("official"), broken)


@needs_reference
@pytest.mark.parametrize("name", IMAGES)
def test_matches_the_official_code_on_lol(network, official, name):
    x = lol_low(name)
    assert x.shape == (1, 3, 396, 600)
    with torch.no_grad():
        ours, theirs = network(x), official(x)
    for mine, reference in zip(ours, theirs):  # (enhanced image, up-scaled curve map)
        assert mine.shape == reference.shape == x.shape
        assert float((mine - reference).abs().max()) <= 1e-5


def test_the_network_itself_neither_pads_nor_crops(network):
    with pytest.raises(ValueError, match="multiples of 12"):
        network(torch.rand(1, 3, 400, 600))
    with torch.no_grad():
        enhanced, curves = network(torch.rand(1, 3, 24, 36, generator=torch.Generator().manual_seed(5)))
    assert enhanced.shape == curves.shape == (1, 3, 24, 36)
    assert float(curves.abs().max()) <= 1.0


def test_deploy_keeps_the_enhanced_image_in_range(zero_dce_pp, network):
    deployed = zero_dce_pp.deploy(network).eval()
    generator = torch.Generator().manual_seed(3)
    for x in (torch.zeros(1, 3, 12, 12), torch.ones(1, 3, 12, 24), torch.rand(1, 3, 36, 24, generator=generator)):
        with torch.no_grad():
            (enhanced,) = deployed(x)
            expected, _ = network(x)
        assert torch.equal(enhanced, expected)
        assert float(enhanced.min()) >= -1e-6 and float(enhanced.max()) <= 1.0 + 1e-6
        assert zero_dce_pp.enhance([enhanced.numpy()]).shape == (*x.shape[2:], 3)


def test_onnx_export_parity_at_the_padded_shape(zero_dce_pp, tmp_path):
    job = compiler.prepare(zero_dce_pp, "fp32", "onnxruntime")
    report = export_onnx(job, tmp_path / "zero-dce-pp.onnx")
    assert report["max_abs_diff"] <= 1e-4
    assert report["shape"] == [1, 3, 408, 600]  # the card's 400x600 rounded up to input.multiple_of


TOLERANCE = {"fp32": 1e-5, "fp16": 1e-3, "ncnn-fp32": 1e-5}


@pytest.mark.parametrize("build", ["fp32", "fp16", pytest.param("ncnn-fp32", marks=needs_ncnn)])
def test_a_build_pads_a_lol_image_and_crops_back(zero_dce_pp, network, build):
    """input.multiple_of: 12: a 600x400 image comes back 600x400, enhanced as the network enhances its
    bottom-reflect-padded 600x408 version, also on the builds that a fractional down-scaling factor (fp16)
    or a frozen size (ncnn) would break, see net.Downscale."""
    session = compiler.load(compiler.prepare(zero_dce_pp, build), log=lambda *_: None)
    x = lol_low("111", crop=False)
    (enhanced,) = session.run(x.numpy())
    with torch.no_grad():
        expected, _ = network(F.pad(x, (0, 0, 0, 8), mode="reflect"))
    assert enhanced.shape == (1, 3, 400, 600)
    assert float(np.abs(enhanced - expected[:, :, :400].numpy()).max()) <= TOLERANCE[build]


@pytest.mark.slow
@needs_reference
def test_lol_eval15_matches_the_official_code(cli, tmp_path, network, official):
    scores = {}
    for protocol in ("zoo", "paper"):
        result = cli("run", "zero-dce-pp", "--input", LOL / "low", "--reference", LOL / "high", "--protocol",
                     protocol, "--output", tmp_path / protocol, "--json", "--quiet")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert len(summary["images"]) == 15 and not summary["failures"]
        assert summary["protocol"] == protocol and summary["backend"] == "onnxruntime"
        scores[protocol] = summary["mean"]
        assert scores[protocol]["psnr"] == pytest.approx(MEASURED[protocol]["psnr"], abs=0.002)
        assert scores[protocol]["ssim"] == pytest.approx(MEASURED[protocol]["ssim"], abs=0.0005)
    padded, cropped = [], {"ours": [], "official": []}
    for low in sorted((LOL / "low").glob("*.png")):
        truth = imaging.read_rgb(LOL / "high" / low.name)
        full = lol_low(low.stem, crop=False)
        with torch.no_grad():
            # the official network on the zoo's padded input: what the zoo's run must score
            enhanced, _ = official(F.pad(full, (0, 0, 0, 8), mode="reflect"))
            padded.append(metrics.score(save_image_pixels(enhanced[:, :, :400]), truth))
            # the official protocol (crop to 396x600), with the official network and with ours
            x = lol_low(low.stem)
            for who, net in (("ours", network), ("official", official)):
                cropped[who].append(metrics.score(save_image_pixels(net(x)[0]), truth[:396]))
    assert scores["paper"]["psnr"] == pytest.approx(mean(padded, "psnr"), abs=0.01)
    for who in ("ours", "official"):
        assert mean(cropped[who], "psnr") == pytest.approx(OFFICIAL_CROP["psnr"], abs=0.002)
        assert mean(cropped[who], "ssim") == pytest.approx(OFFICIAL_CROP["ssim"], abs=0.0005)


def test_int8_runs_a_photo_of_any_size_at_full_resolution(cli, tmp_path):
    """`modelzoo run` uses the dynamic-shape export: its int8 build (whose dynamic graph ONNX Runtime's
    symbolic shape inference gives up on) still compiles, and a 70x50 photo comes back 70x50."""
    source = tmp_path / "in" / "small.png"
    imaging.write_rgb(source, (np.random.default_rng(3).random((50, 70, 3)) * 80).astype(np.uint8))
    result = cli("run", "zero-dce-pp", "--build", "int8", "--input", source, "--output", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.output
    assert imaging.read_rgb(tmp_path / "out" / "small.png").shape == (50, 70, 3)
