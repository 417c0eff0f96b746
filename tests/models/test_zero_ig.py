"""ZERO-IG: the three official checkpoints load strictly (subnormals read as zero, which moves no output), the
zoo's network equals the official Finetunemodel run as test.py runs it (both images it saves) on LOL eval15 and at
odd sizes, the deploy patch exports the denoised image, the receptive radius is the card's, ONNX stays within
the parity gate, and the saved LOL eval15 evaluation reproduces and scores what the official PNGs score."""
import sys
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import LOL, SHARED, WEIGHTS, loaded, official_module, raw_state, reproduces_saved
from modelzoo import compile as compiler
from modelzoo import imaging, metrics
from modelzoo.export import export_onnx

REFERENCE = SHARED / "reference" / "zero-ig"
VARIANTS = ("lol", "lsrw-huawei", "lsrw-nikon")
IMAGES = ("1", "22", "111")  # three LOL eval15 low-light images, 600x400
SUBNORMALS = {"lol": 92836, "lsrw-huawei": 74373, "lsrw-nikon": 29918}

pytestmark = [pytest.mark.skipif(not (WEIGHTS / "zero-ig" / "LOL.pt").is_file(),
                                 reason="../shared ZERO-IG weights not present"),
              pytest.mark.skipif(not (REFERENCE / "model.py").is_file(),
                                 reason="../shared/reference/zero-ig not present")]


@pytest.fixture(scope="module")
def zero_ig():
    from modelzoo.plugins import registry

    return registry().model("zero-ig")


@pytest.fixture(scope="module")
def official():
    """The official model.py, its sibling modules loss.py and utils.py registered only while it loads."""
    with pytest.MonkeyPatch.context() as patch:  # sys.modules is restored when the block ends
        for name in ("utils", "loss"):
            module = official_module(name, REFERENCE / f"{name}.py")
            patch.setitem(sys.modules, name, module)
        return official_module("official_zero_ig_model", REFERENCE / "model.py")


def official_net(official, state):
    """Finetunemodel(weights) as test.py builds it, in eval mode. Its __init__ calls torch.load(weights,
    map_location='cuda:0'); that one call is answered with `state` (a dict of tensors) instead."""
    with mock.patch.object(torch, "load", lambda *args, **kwargs: state):
        return official.Finetunemodel("checkpoint").eval()


def file_state(zero_ig, variant):
    """A checkpoint as torch reads it, subnormals kept (the engine's reader sets them to zero)."""
    return torch.load(WEIGHTS / "zero-ig" / zero_ig.weights_entry(variant)["file"], map_location="cpu",
                      weights_only=True)


def official_input(name):
    """test.py's input: multi_read_data's PIL RGB image through ToTensor (uint8 -> float32 / 255), 1x3xHxW."""
    pixels = np.asarray(Image.open(LOL / "low" / f"{name}.png").convert("RGB"))
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div(255)[None]


def saved_png(tensor):
    """test.py's save_images: x * 255 clipped to [0, 255], truncated to uint8, HxWx3."""
    return np.clip(tensor[0].numpy().transpose(1, 2, 0) * 255.0, 0, 255.0).astype("uint8")


def max_diff(a, b):
    return float((a - b).abs().max())


@pytest.mark.parametrize("variant", VARIANTS)
def test_checkpoints_load_strictly(zero_ig, variant):
    state = raw_state(zero_ig, variant)
    assert len(state) == 44 and {key.split(".")[0] for key in state} == {"enhance", "denoise_1", "denoise_2"}
    network = loaded(zero_ig, variant)
    assert set(network.state_dict()) == set(state)
    for key, value in network.state_dict().items():
        assert torch.equal(value, state[key]), key
    # one residual block, appended three times as in the official Enhancer: its four key sets hold one tensor
    assert all(block is network.enhance.conv for block in network.enhance.blocks)
    assert sum(p.numel() for p in network.parameters()) == zero_ig.card["complexity"]["params"] == 86572


def test_a_missing_or_foreign_key_is_refused(zero_ig):
    state = raw_state(zero_ig)
    with pytest.raises(RuntimeError, match="denoise_2.conv3.bias"):
        zero_ig.load_weights(zero_ig.network("lol"), {k: v for k, v in state.items() if k != "denoise_2.conv3.bias"})
    with pytest.raises(RuntimeError, match="denoise_3.weight"):
        zero_ig.load_weights(zero_ig.network("lol"), {**state, "denoise_3.weight": torch.zeros(1)})


@pytest.mark.parametrize("variant", VARIANTS)
def test_subnormal_weights_are_read_as_zero(zero_ig, variant):
    tiny = torch.finfo(torch.float32).tiny
    file, read = file_state(zero_ig, variant), raw_state(zero_ig, variant)
    subnormal = {k: (v.abs() < tiny) & (v != 0) for k, v in file.items() if v.is_floating_point()}
    assert sum(int(mask.sum()) for mask in subnormal.values()) == SUBNORMALS[variant]
    for key, mask in subnormal.items():
        assert torch.equal(read[key], file[key].masked_fill(mask, 0)), key


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_flush_moves_no_official_output(zero_ig, official, variant):
    """The official network with the file's tensors as they are and with the subnormals read as zero gives the
    same images (on a crop: arithmetic on subnormals is slow on a CPU)."""
    x = official_input("1")[:, :, 150:214, 200:296]
    with torch.no_grad():
        as_saved = official_net(official, file_state(zero_ig, variant))(x)
        flushed = official_net(official, raw_state(zero_ig, variant))(x)
    for a, b in zip(as_saved, flushed, strict=True):
        assert max_diff(a, b) <= 1e-7


def assert_equals_official(zero_ig, official, variant, x):
    """Both images test.py saves (enhance: the Retinex image, output: the denoised one) within 1e-5."""
    with torch.no_grad():
        enhance, output = official_net(official, raw_state(zero_ig, variant))(x)
        enhanced, denoised = loaded(zero_ig, variant)(x)
    assert enhanced.shape == denoised.shape == x.shape
    assert max_diff(enhanced, enhance) <= 1e-5 and max_diff(denoised, output) <= 1e-5
    assert float(output.min()) >= 0 and float(output.max()) <= 1  # the tolerance is on [0, 1] images


@pytest.mark.parametrize("name", IMAGES)
def test_default_equals_the_official_test_on_lol(zero_ig, official, name):
    x = official_input(name)
    assert x.shape == (1, 3, 400, 600)
    # the zoo's preprocessing gives test.py's input exactly
    assert torch.equal(torch.from_numpy(zero_ig.preprocess(imaging.read_rgb(LOL / "low" / f"{name}.png"),
                                                           zero_ig.vdsp())), x)
    assert_equals_official(zero_ig, official, "lol", x)


@pytest.mark.parametrize("variant", VARIANTS[1:])
def test_other_variants_equal_the_official_test_on_lol(zero_ig, official, variant):
    assert_equals_official(zero_ig, official, variant, official_input("22"))


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (17, 9), (33, 50)])
def test_any_size_runs_as_the_official_code(zero_ig, official, size):
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(sum(size))) * 0.4
    assert_equals_official(zero_ig, official, "lsrw-nikon", x)


def test_deploy_exports_the_denoised_image(zero_ig):
    network = loaded(zero_ig)
    generator = torch.Generator().manual_seed(2)
    for x in (torch.rand(1, 3, 24, 40, generator=generator) * 0.3, torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)):
        with torch.no_grad():
            outputs = zero_ig.deploy(network).eval()(x)
            enhanced, denoised = network(x)
        assert isinstance(outputs, tuple) and len(outputs) == len(zero_ig.card["outputs"]) == 1
        torch.testing.assert_close(outputs[0], denoised, rtol=0, atol=0)
        assert float(denoised.min()) >= 9.99e-5 and float(denoised.max()) <= 1.0
        image = zero_ig.enhance([outputs[0].numpy()])
        np.testing.assert_array_equal(image, outputs[0][0].numpy().transpose(1, 2, 0))
    assert max_diff(enhanced, denoised) > 0.01  # the second denoiser does change the image


@pytest.mark.parametrize("variant, radius", [("lol", 7), ("lsrw-nikon", 9)])
def test_receptive_radius(zero_ig, variant, radius):
    """An output pixel depends on the input `radius` px around it: 9 (the card's, the tiling overlap) where the
    first denoiser works, 7 where its weights are subnormal (lol, lsrw-huawei) and it only adds its bias."""
    centre = 2 * radius
    x = torch.rand(1, 3, 4 * radius + 1, 4 * radius + 1, generator=torch.Generator().manual_seed(5)) * 0.3
    x.requires_grad_()
    (y,) = zero_ig.deploy(loaded(zero_ig, variant)).eval()(x)
    y[0, :, centre, centre].sum().backward()
    rows, cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1)) > 0, as_tuple=True)
    assert {centre - int(rows.min()), int(rows.max()) - centre, centre - int(cols.min()),
            int(cols.max()) - centre} == {radius}
    assert zero_ig.card["complexity"]["receptive_radius"] == 9


def test_onnx_export_parity(zero_ig, tmp_path):
    report = export_onnx(compiler.prepare(zero_ig, "fp32", "onnxruntime"), tmp_path / "zero_ig.onnx")
    assert report["max_abs_diff"] <= 1e-4
    assert report["shape"] == [1, 3, 400, 600]


@pytest.mark.slow
def test_lol_eval15_reproduces_and_scores_the_official_pngs(zero_ig, official, cli, tmp_path):
    """Two LOL images through the CLI score what the saved full evaluation recorded for them, and the saved
    paper-protocol scores are those of the official network's outputs saved as test.py saves them."""
    for protocol in ("zoo", "paper"):
        (tmp_path / protocol).mkdir()
        saved = reproduces_saved(cli, tmp_path / protocol, "zero-ig", protocol=protocol)
    network = official_net(official, raw_state(zero_ig))
    for name in ("1", "111"):
        with torch.no_grad():
            _, output = network(official_input(name))
        theirs = metrics.score(saved_png(output), imaging.read_rgb(LOL / "high" / f"{name}.png"))
        for metric in ("psnr", "ssim"):
            assert saved["images"][name][metric] == pytest.approx(theirs[metric], abs=1e-4), (name, metric)
