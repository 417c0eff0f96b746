"""SGZ: Zero-DCE++'s network by reference (card network: zero-dce-pp) with SGZ's weights. Epoch99.pth loads
strictly, the zoo's torch output equals the official modeling/model.py run the way test.py runs it (utils.py's
crop to multiples of 12), ONNX stays within the export gate on whole LOL images (padded by the engine), and the
zoo's LOL eval15 scores are the scores of the official network's outputs saved as test.py saves them."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import LOL, SHARED, WEIGHTS, loaded, official_module, raw_state, reproduces_saved
from modelzoo import compile as compiler
from modelzoo import imaging, metrics
from modelzoo.export import export_onnx

REFERENCE = SHARED / "reference" / "sgz"
SCALE = 12  # test.py's Tester.scale_factor
IMAGES = ("1", "22", "111")  # three LOL eval15 pairs, 600x400

pytestmark = [pytest.mark.skipif(not (WEIGHTS / "sgz" / "Epoch99.pth").is_file(),
                                 reason="../shared SGZ weights not present"),
              pytest.mark.skipif(not (REFERENCE / "modeling" / "model.py").is_file(),
                                 reason="../shared official SGZ code not present")]


@pytest.fixture(scope="module")
def sgz():
    from modelzoo.plugins import registry

    return registry().model("sgz")


@pytest.fixture(scope="module")
def state(sgz):
    return raw_state(sgz)


@pytest.fixture(scope="module")
def official(state):
    """test.py's network: enhance_net_nopool(12, conv_type='dsc') with Epoch99.pth, imported from ../shared."""
    module = official_module("official_sgz_model", REFERENCE / "modeling" / "model.py")
    network = module.enhance_net_nopool(SCALE, conv_type="dsc")
    network.load_state_dict(state)
    return network.eval()


@pytest.fixture(scope="module")
def official_utils():
    return official_module("official_sgz_utils", REFERENCE / "utils.py")


def official_input(utils, name):
    """test.py's input: utils.image_from_path (PIL / 255.0, float32), then utils.scale_image (crop down to
    multiples of 12: 600x400 -> 600x396, 1x3xHxW)."""
    image = utils.image_from_path(str(LOL / "low" / f"{name}.png"))
    return utils.scale_image(image, SCALE, torch.device("cpu"))


def whole_image(name):
    """A LOL low-light image uncropped, as the zoo receives it: uint8 / 255, float32, 1x3x400x600."""
    return torch.from_numpy(imaging.read_rgb(LOL / "low" / f"{name}.png") / 255.0).float().permute(2, 0, 1)[None]


def official_on_padded(official, x):
    """The official network on the engine's bottom-reflect-padded input (400 -> 408 rows), cropped back."""
    with torch.no_grad():
        enhanced, _ = official(F.pad(x, (0, 0, 0, 8), mode="reflect"))
    return enhanced[:, :, :x.shape[2]]


def save_image_pixels(enhanced):
    """What torchvision.utils.save_image writes for a 1x3xHxW tensor: x * 255 + 0.5 clamped, truncated, HxWx3."""
    return enhanced[0].mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def test_it_reuses_zero_dce_pps_network_with_its_own_weights(sgz):
    from modelzoo.plugins import registry

    zero_dce_pp = registry().model("zero-dce-pp")
    assert sgz.base is zero_dce_pp
    for field in ("input", "outputs", "complexity"):
        assert sgz.card[field] == zero_dce_pp.card[field], field
    assert sgz.card["input"]["multiple_of"] == SCALE
    network = loaded(sgz)
    assert type(network) is type(zero_dce_pp.network("official"))
    assert not torch.equal(network.e_conv7.point_conv.weight, loaded(zero_dce_pp).e_conv7.point_conv.weight)


def test_official_weights_load_strictly(sgz, state):
    network = loaded(sgz)
    assert len(state) == 28 and set(network.state_dict()) == set(state)
    for key, value in network.state_dict().items():
        assert torch.equal(value, state[key]), key
    broken = {k: v for k, v in state.items() if k != "e_conv1.depth_conv.weight"}
    with pytest.raises(RuntimeError, match="e_conv1.depth_conv.weight"):
        sgz.load_weights(sgz.network(sgz.default_variant), broken)


@pytest.mark.parametrize("name", IMAGES)
def test_torch_matches_the_official_test_on_lol(sgz, official, official_utils, name):
    x = official_input(official_utils, name)
    assert x.shape == (1, 3, 396, 600)
    deployed = sgz.deploy(loaded(sgz)).eval()
    with torch.no_grad():
        (ours,) = deployed(x)
        theirs, _ = official(x)
    assert ours.shape == theirs.shape
    assert float((ours - theirs).abs().max()) <= 1e-5
    assert 0.0 <= float(theirs.min()) and float(theirs.max()) <= 1.0  # the tolerance is on [0, 1] outputs


def test_onnx_export_passes_the_parity_gate(sgz, tmp_path):
    report = export_onnx(compiler.prepare(sgz, "fp32", "onnxruntime"), tmp_path / "sgz.onnx")
    assert report["max_abs_diff"] <= 1e-4
    assert report["shape"] == [1, 3, 408, 600]  # the card's 400x600 padded up to input.multiple_of


def test_onnx_on_whole_lol_images_matches_the_official_network_on_the_padded_input(sgz, official):
    """The engine pads 600x400 to 600x408 and crops back: a whole image comes back 600x400, enhanced as the
    official network enhances the padded image."""
    session = compiler.load(compiler.prepare(sgz, "fp32", "onnxruntime"), log=lambda *_: None)
    for name in IMAGES:
        x = whole_image(name)
        (onnx,) = session.run(x.numpy())
        assert onnx.shape == (1, 3, 400, 600)
        assert float(np.abs(onnx - official_on_padded(official, x).numpy()).max()) <= 1e-4


@pytest.mark.slow
def test_lol_eval15_scores_what_the_official_outputs_score(sgz, official, cli, tmp_path):
    """Two LOL images through the CLI score what the saved full evaluation recorded for them, and what the
    official network's outputs (on the padded image, saved as test.py saves them) score."""
    saved = reproduces_saved(cli, tmp_path, "sgz", protocol="paper")
    for name in ("1", "111"):
        truth = imaging.read_rgb(LOL / "high" / f"{name}.png")
        theirs = metrics.score(save_image_pixels(official_on_padded(official, whole_image(name))), truth)
        for metric in ("psnr", "ssim"):
            assert saved["images"][name][metric] == pytest.approx(theirs[metric], abs=0.002)
