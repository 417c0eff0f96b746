"""LYT-Net: the three official Keras .h5 files load into the torch network, which equals the official TensorFlow
architecture with those weights (run side by side where TensorFlow is installed, on LOL eval15 frames; else
against tests/fixtures/lyt_net_tf.npz, which tests/fixtures/make_lyt_net_fixture.py writes from it), TensorFlow's
asymmetric 'same' padding is reproduced, the ONNX export is within the parity gate, and the LOL eval15 number
measured here reproduces through the CLI."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import loaded, official_module, raw_state, reproduces_saved, LOL, WEIGHTS
from modelzoo import compile as compiler
from modelzoo import imaging
from modelzoo.export import export_onnx
from modelzoo_models.lyt_net.net import Conv

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VARIANTS = ("lol-v1", "lol-v2-real", "lol-v2-synthetic")
IMAGES = ("1", "22", "23")
# Measured here (CPU, zoo protocol: float x 255 clipped, MATLAB-style SSIM), mean over the 15 LOL eval15 pairs.
MEASURED = {"lol-v1": (24.1301, 0.8443)}

pytestmark = pytest.mark.skipif(not (WEIGHTS / "lyt-net" / "LOL_v1_weights.h5").is_file(),
                                reason="../shared LYT-Net weights not present")
needs_tensorflow = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                                      reason="TensorFlow not installed (the fixture test covers this)")


@pytest.fixture(scope="module")
def lyt():
    from modelzoo.plugins import registry

    return registry().model("lyt-net")


@pytest.fixture(scope="module")
def maker():
    return official_module("make_lyt_net_fixture", FIXTURES / "make_lyt_net_fixture.py")


def ours(network, rgb):
    """Our network on the official loader's input (uint8 / 127.5 - 1), NHWC out like TensorFlow's."""
    x = torch.from_numpy(rgb.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        return network(x)[0].permute(1, 2, 0).numpy()


def unit_range_difference(actual, expected):
    """Max abs difference of the [-1, 1] outputs after test.py's (x + 1) / 2."""
    return float(np.abs((actual + 1) / 2 - (expected + 1) / 2).max())


@pytest.mark.parametrize("variant", VARIANTS)
def test_keras_weights_load_into_every_parameter(lyt, variant):
    state = raw_state(lyt, variant)
    assert len(state) == 70 and all(name.endswith(":0") for name in state)
    network = loaded(lyt, variant)
    assert sum(p.numel() for p in network.parameters()) == sum(a.size for a in state.values()) == 44923
    assert lyt.card["complexity"]["params"] == 44923
    # a Keras (kh, kw, in, out) kernel becomes torch's (out, in, kh, kw)
    kernel = state["conv2d_24/conv2d_24/kernel:0"]
    assert torch.equal(network.final_adjustments.weight, torch.from_numpy(kernel).permute(3, 2, 0, 1))


def test_a_missing_dataset_is_refused(lyt):
    state = raw_state(lyt, "lol-v1")
    del state["mff_block/mff_block/layer_normalization/gamma:0"]
    with pytest.raises(RuntimeError, match="layer_normalization/gamma"):
        lyt.load_weights(lyt.network("lol-v1"), state)


def test_fixture_matches_the_official_tensorflow_outputs(lyt):
    """Crops of the built-in samples, as the official TensorFlow model gave them (fixture)."""
    fixture = np.load(FIXTURES / "lyt_net_tf.npz")
    for variant in VARIANTS:
        network = loaded(lyt, variant)
        for rgb, expected in zip(fixture["inputs"], fixture[variant]):
            assert unit_range_difference(ours(network, rgb), expected) <= 1e-5


@needs_tensorflow
@pytest.mark.parametrize("variant", VARIANTS)
def test_equals_the_official_tensorflow_model_on_lol(lyt, maker, variant):
    """Full 600x400 LOL eval15 frames through the official TensorFlow architecture with the same .h5 file."""
    official = maker.official_model(WEIGHTS / "lyt-net" / maker.FILES[variant])
    network = loaded(lyt, variant)
    for name in IMAGES if variant == "lol-v1" else IMAGES[:1]:
        rgb = imaging.read_rgb(LOL / "low" / f"{name}.png")
        assert unit_range_difference(ours(network, rgb), maker.official_output(official, rgb)) <= 1e-5


@pytest.mark.parametrize("size, pads", [(8, [0, 1, 0, 1]), (6, [0, 1, 0, 1]), (7, [1, 1, 1, 1])])
def test_stride_two_same_padding_is_tensorflows(size, pads):
    """TensorFlow 'same' with stride 2 and a 3x3 kernel: an even size pads 0 before and 1 after."""
    conv = Conv(1, 1, stride=2)
    assert conv.same_pads(torch.zeros(1, 1, size, size)) == pads
    assert Conv(1, 1).same_pads(torch.zeros(1, 1, size, size)) == [1, 1, 1, 1]


def test_deploy_maps_unit_range_in_and_out(lyt):
    network = loaded(lyt)
    x = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        (enhanced,) = lyt.deploy(network).eval()(x)
        torch.testing.assert_close(enhanced, (network(x * 2 - 1) + 1) / 2, rtol=0, atol=0)
    assert float(enhanced.min()) >= 0.0 and float(enhanced.max()) <= 1.0


def test_onnx_export_parity(lyt, tmp_path):
    job = compiler.prepare(lyt, "fp32", "onnxruntime", native=True)
    job.spec["frontend"]["shape"] = {"input": [1, 3, 64, 96]}
    report = export_onnx(job, tmp_path / "lyt.onnx", dynamic=True)
    assert report["max_abs_diff"] <= 1e-4


@pytest.mark.slow
def test_lol_eval15_reproduces(cli, tmp_path):
    """The saved LOL eval15 evaluation has the measured means, and two of its images run again score the same."""
    saved = reproduces_saved(cli, tmp_path, "lyt-net")
    psnr, ssim = MEASURED["lol-v1"]
    assert saved["mean"]["psnr"] == pytest.approx(psnr, abs=0.002) and len(saved["images"]) == 15
    assert saved["mean"]["ssim"] == pytest.approx(ssim, abs=0.0005)
