"""SCL-LLE: Zero-DCE's network by reference (card network: zero-dce) with SCL-LLE's weights. The zoo's torch
output equals the official lowlight_model.py run the way lowlight_test.py runs it, ONNX stays within the export
gate, and the zoo's LOL eval15 score is the score of the official outputs saved as lowlight_test.py saves them."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import LOL, SHARED, WEIGHTS, loaded, official_module, raw_state, reproduces_saved
from modelzoo import compile as compiler
from modelzoo import metrics

REFERENCE = SHARED / "reference" / "scl-lle"
IMAGES = ("1", "22", "111")  # three LOL eval15 pairs, full 600x400

pytestmark = [pytest.mark.skipif(not (WEIGHTS / "scl-lle" / "SCL-LLE.pth").is_file(),
                                 reason="../shared SCL-LLE weights not present"),
              pytest.mark.skipif(not (REFERENCE / "lowlight_model.py").is_file(),
                                 reason="../shared official SCL-LLE code not present")]


@pytest.fixture(scope="module")
def scl():
    from modelzoo.plugins import registry

    return registry().model("scl-lle")


@pytest.fixture(scope="module")
def official(scl):
    """The official enhance_net_nopool with SCL-LLE.pth, imported from ../shared/reference (never copied)."""
    network = official_module("official_scl_lle_model", REFERENCE / "lowlight_model.py").enhance_net_nopool()
    network.load_state_dict(raw_state(scl))
    return network.eval()


def official_input(path):
    """lowlight_test.py's input: PIL image / 255.0 as float32, 1x3xHxW."""
    image = np.asarray(Image.open(path)) / 255.0
    return torch.from_numpy(image).float().permute(2, 0, 1).unsqueeze(0)


def official_output(official, path):
    """lowlight_test.py's saved output: the second of three outputs through torchvision's save_image
    (x * 255 + 0.5, clamped, truncated to uint8)."""
    with torch.no_grad():
        _, enhanced, _ = official(official_input(path))
    return enhanced[0].mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def test_it_reuses_zero_dces_network_with_its_own_weights(scl):
    from modelzoo.plugins import registry

    zero_dce = registry().model("zero-dce")
    assert scl.base is zero_dce
    assert scl.card["complexity"] == zero_dce.card["complexity"] and scl.card["outputs"] == zero_dce.card["outputs"]
    network = loaded(scl)
    assert type(network) is type(zero_dce.network("official"))
    assert not torch.equal(network.e_conv1.weight, loaded(zero_dce).e_conv1.weight)


@pytest.mark.parametrize("name", IMAGES)
def test_torch_matches_the_official_code_on_lol(scl, official, name):
    x = official_input(LOL / "low" / f"{name}.png")
    deployed = scl.deploy(loaded(scl)).eval()
    with torch.no_grad():
        (ours,) = deployed(x)
        _, theirs, _ = official(x)
    assert float((ours - theirs).abs().max()) <= 1e-5


def test_onnx_within_1e4_of_torch_on_lol(scl, official):
    session = compiler.load(compiler.prepare(scl, "fp32", "onnxruntime"), log=lambda *_: None)
    for name in IMAGES:
        x = official_input(LOL / "low" / f"{name}.png")
        (onnx,) = session.run(x.numpy())
        with torch.no_grad():
            _, theirs, _ = official(x)
        assert float(np.abs(onnx - theirs.numpy()).max()) <= 1e-4


@pytest.mark.slow
def test_lol_eval15_scores_what_the_official_outputs_score(scl, official, cli, tmp_path):
    """Two LOL images through the CLI score what the saved full evaluation recorded for them, and what the
    official outputs score."""
    saved = reproduces_saved(cli, tmp_path, "scl-lle", protocol="paper")
    for name in ("1", "111"):
        low = LOL / "low" / f"{name}.png"
        theirs = metrics.score(official_output(official, low), np.asarray(Image.open(LOL / "high" / low.name)))
        for metric in ("psnr", "ssim"):
            assert saved["images"][name][metric] == pytest.approx(theirs[metric], abs=0.01)
