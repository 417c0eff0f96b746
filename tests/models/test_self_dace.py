"""Self-DACE Stage I: both official weight files load strictly into the network each variant names, the zoo's
outputs equal the official test-time code's (stage_1_lit's light_net(mode='test', layers=12) for the default,
stage_2_denoising's light_net for pre-train-1) on LOL eval15 images and on odd sizes, the ONNX export is within
the parity gate, and the saved LOL eval15 evaluation reproduces."""
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import loaded, raw_state, official_module, reproduces_saved, saved_scores, LOL, SHARED, WEIGHTS
from modelzoo import compile as compiler
from modelzoo import imaging
from modelzoo.export import export_onnx

REFERENCE = SHARED / "reference" / "self-dace" / "codes_SelfDACE" / "new_version"
STAGE_1 = REFERENCE / "stage_1_lit" / "model.py"
STAGE_2 = REFERENCE / "stage_2_denoising" / "model.py"
IMAGES = ("1", "22", "111")  # three LOL eval15 low-light images
# Measured here (CPU, onnxruntime fp32, mean over the 15 LOL eval15 pairs, zoo protocol: float x 255 clipped,
# MATLAB-style SSIM), not published numbers; the official code's outputs are the zoo's to 1e-5 (tests below).
MEASURED = {"lit": (16.5485, 0.5528), "pre-train-1": (18.5001, 0.5826)}

pytestmark = pytest.mark.skipif(not (WEIGHTS / "self-dace" / "Epoch70.pth").is_file(),
                                reason="../shared Self-DACE weights not present")
needs_reference = pytest.mark.skipif(not (STAGE_1.is_file() and STAGE_2.is_file()),
                                     reason="../shared/reference/self-dace not present")


@pytest.fixture(scope="module")
def self_dace():
    from modelzoo.plugins import registry

    return registry().model("self-dace")


@pytest.fixture(scope="module")
def official(self_dace):
    """The official test-time networks, imported from ../shared/reference (read only) and built as the test
    scripts build them: test_1stage.py's light_net(mode='test', layers=12) with Epoch70.pth's net_decay, and
    test_2stage.py's light_net with pre_train_1.pth. Their weights come through raw_state, so the subnormal
    ones (7,397 in pre_train_1.pth) are zero as in the zoo's network: no output changes, and the CPU does not
    slow down on them tenfold."""
    stage_1 = official_module("official_self_dace_stage_1", STAGE_1).light_net(mode="test", layers=12)
    stage_1.load_state_dict(raw_state(self_dace, "lit"))
    stage_2 = official_module("official_self_dace_stage_2", STAGE_2).light_net()
    stage_2.load_state_dict(raw_state(self_dace, "pre-train-1"))
    return {"lit": lambda x: stage_1.eval()(x, mode="test"), "pre-train-1": stage_2.eval()}


def official_input(name):
    """A LOL low-light image as the official lowlight() reads it: np.asarray(PIL image) / 255.0, as float32."""
    image = np.asarray(Image.open(LOL / "low" / f"{name}.png")) / 255.0
    return torch.from_numpy(image).float().permute(2, 0, 1)[None]


def zoo_input(self_dace, name):
    return torch.from_numpy(self_dace.preprocess(imaging.read_rgb(LOL / "low" / f"{name}.png"), self_dace.vdsp()))


def max_difference(ours, theirs):
    return float((ours - theirs).abs().max())


@pytest.mark.parametrize("variant, tensors", [("lit", 14), ("pre-train-1", 42)])
def test_weights_load_strictly(self_dace, variant, tensors):
    state = raw_state(self_dace, variant)
    assert len(state) == tensors
    network = loaded(self_dace, variant)
    assert set(network.state_dict()) == set(state)
    for key, value in network.state_dict().items():
        assert torch.equal(value, state[key]), key
    params = sum(p.numel() for p in network.parameters())
    assert params == (68522 if variant == "pre-train-1" else self_dace.card["complexity"]["params"])


def test_the_default_is_the_test_mode_state_of_the_checkpoint(self_dace):
    """Epoch70.pth is a training checkpoint; the card's key takes net_decay, the state test_1stage.py loads
    (net_intact is the training-mode network, with separate layers for each step)."""
    checkpoint = torch.load(WEIGHTS / "self-dace" / "Epoch70.pth", map_location="cpu", weights_only=True)
    assert set(checkpoint) == {"net_decay", "net_intact", "optimizer"}
    assert self_dace.weights_entry("lit")["key"] == "net_decay"
    assert len(checkpoint["net_intact"]) == 74  # input, then nine and three steps of (backbone, conv_a, conv_b)


def test_a_checkpoint_of_the_other_network_is_refused(self_dace):
    with pytest.raises(RuntimeError, match="e_conv1.weight"):
        self_dace.load_weights(self_dace.network("lit"), raw_state(self_dace, "pre-train-1"))


def zoo_output(self_dace, variant, x):
    with torch.no_grad():
        (enhanced,) = self_dace.deploy(loaded(self_dace, variant)).eval()(x)
    return enhanced


@needs_reference
@pytest.mark.parametrize("name", IMAGES)
def test_default_equals_the_official_test_code_on_lol(self_dace, official, name):
    """Full 600x400 LOL eval15 images: the zoo's preprocessing gives the official input bit for bit, and the zoo's
    deploy output (the enhanced image) equals test_1stage.py's to 1e-5, also in [0, 1] as save_image clamps it."""
    x = zoo_input(self_dace, name)
    assert torch.equal(x, official_input(name))
    ours = zoo_output(self_dace, "lit", x)
    with torch.no_grad():
        theirs = official["lit"](x)[0]
    assert ours.shape == (1, 3, 400, 600)
    assert max_difference(ours.clamp(0, 1), theirs.clamp(0, 1)) <= 1e-5
    assert max_difference(ours, theirs) <= 1e-5


@needs_reference
def test_pre_train_1_equals_the_official_light_net_on_lol_crops(self_dace, official):
    """The other network on 96x128 crops of the three LOL eval15 images (at different offsets)."""
    for index, name in enumerate(IMAGES):
        x = zoo_input(self_dace, name)[:, :, 60 * index:60 * index + 96, 100 * index:100 * index + 128].contiguous()
        with torch.no_grad():
            theirs = official["pre-train-1"](x)[0]
        assert max_difference(zoo_output(self_dace, "pre-train-1", x), theirs) <= 1e-5, name


@needs_reference
@pytest.mark.parametrize("variant", ["lit", "pre-train-1"])
def test_the_curve_maps_equal_the_official_ones(self_dace, official, variant):
    """The amplitude and level maps the network also returns (12 or 7 steps x 3 channels), on a LOL crop."""
    x = zoo_input(self_dace, "22")[:, :, 100:164, 200:296].contiguous()
    with torch.no_grad():
        ours, theirs = loaded(self_dace, variant)(x), official[variant](x)
    steps = 7 if variant == "pre-train-1" else 12
    for mine, reference in zip(ours[1:], theirs[1:]):
        assert mine.shape == reference.shape == (1, 3 * steps, 64, 96)
        assert max_difference(mine, reference) <= 1e-6


@needs_reference
@pytest.mark.parametrize("size", [(1, 1), (5, 7), (37, 53)])
def test_any_size_runs_as_the_official_code(self_dace, official, size):
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(sum(size))) * 0.4
    for variant in ("lit", "pre-train-1"):
        ours = zoo_output(self_dace, variant, x)
        with torch.no_grad():
            theirs = official[variant](x)[0]
        assert ours.shape == x.shape
        assert max_difference(ours, theirs) <= 1e-5, variant


def test_deploy_and_postprocess_give_the_enhanced_image(self_dace):
    network = loaded(self_dace)
    x = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(1)) * 0.3
    with torch.no_grad():
        outputs = [o.numpy() for o in self_dace.deploy(network).eval()(x)]
        enhanced, amplitudes, levels = network(x)
    assert len(outputs) == 1
    np.testing.assert_array_equal(outputs[0], enhanced.numpy())
    assert float(enhanced.mean()) > float(x.mean())  # a dark image is brightened
    assert float(amplitudes[:, :33].min()) >= 0 and float(amplitudes[:, 33:].max()) <= 0  # the last step darkens
    assert 0.3 <= float(levels[:, :33].min()) and float(levels[:, 33:].max()) <= 0.3
    np.testing.assert_array_equal(self_dace.enhance(outputs), np.clip(outputs[0][0].transpose(1, 2, 0), 0, 1))


@pytest.mark.parametrize("variant", ["lit", "pre-train-1"])
def test_onnx_export_parity(self_dace, tmp_path, variant):
    report = export_onnx(compiler.prepare(self_dace, "fp32", "onnxruntime", variant), tmp_path / "self-dace.onnx")
    assert report["max_abs_diff"] <= 1e-4
    assert report["shape"] == [1, 3, 400, 600]


@pytest.mark.slow
def test_lol_eval15_reproduces(cli, tmp_path):
    """The saved LOL eval15 evaluations have the measured means, and two images of the default's run again score
    the same."""
    saved = reproduces_saved(cli, tmp_path, "self-dace")
    for variant, (psnr, ssim) in MEASURED.items():
        means = saved if variant == "lit" else saved_scores("self-dace", variant)
        assert len(means["images"]) == 15
        assert means["mean"]["psnr"] == pytest.approx(psnr, abs=0.002), variant
        assert means["mean"]["ssim"] == pytest.approx(ssim, abs=0.0005), variant
