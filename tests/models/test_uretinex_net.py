"""URetinex-Net: the official checkpoints load through the restricted unpickler, the zoo's network equals the
official test.py (ratio 5 and 3) and evaluate.py (ratio from the ground truth) side by side on LOL images, the
ratio is a graph input of the ONNX export, and --set ratio / load(ratio=) reach the network."""
import argparse

import numpy as np
import pytest
import torch

from conftest import LOL, SHARED, WEIGHTS
from modelzoo import compile as compiler
from modelzoo import imaging, weights
from modelzoo.errors import ZooError
from uretinex_official import official

FOLDER = WEIGHTS / "uretinex-net"
IMAGES = ("1", "22", "23")
CROP = (slice(160, 192), slice(260, 308))  # 32x48: the network costs ~0.9 GMAC per 1000 pixels

pytestmark = pytest.mark.skipif(not (FOLDER / "unfolding.pth").is_file() or
                                not (SHARED / "reference" / "uretinex-net" / "test.py").is_file(),
                                reason="../shared URetinex-Net weights or reference code not present")


@pytest.fixture(scope="module")
def model():
    from modelzoo.plugins import registry

    return registry().model("uretinex-net")


@pytest.fixture(scope="module")
def network(model):
    return model.loaded(model.states())


def pair(name, crop=CROP):
    """(low, ground truth) of a LOL eval15 image as 1x3xHxW float32 tensors, as the official ToTensor gives."""
    return tuple(torch.from_numpy(imaging.read_rgb(LOL / part / f"{name}.png")[crop].astype(np.float32)
                                  .transpose(2, 0, 1) / 255.0)[None] for part in ("low", "high"))


def options(ratio=5):
    return argparse.Namespace(ratio=ratio, Decom_model_low_path=str(FOLDER / "init_low.pth"),
                              Decom_model_high_path=str(FOLDER / "init_high.pth"),
                              unfolding_model_path=str(FOLDER / "unfolding.pth"),
                              adjust_model_path=str(FOLDER / "L_adjust.pth"))


def zoo(network, low, ratio):
    with torch.no_grad():
        return network(low, torch.tensor([ratio], dtype=torch.float32)).clamp(0, 1)


def test_checkpoints_need_their_namespace_and_set_the_unfolding(model, network):
    with pytest.raises(ZooError, match="refused to load"):
        weights.load_state_dict(FOLDER / "unfolding.pth")
    opts = weights.load_state_dict(FOLDER / "unfolding.pth", [argparse.Namespace])["opts"]
    unfolding = network.unfolding
    assert (opts.round, opts.gamma, opts.lamda, opts.Roffset, opts.Loffset, opts.concat_L) == \
        (unfolding.rounds, unfolding.gamma, unfolding.lamda, unfolding.offset, unfolding.offset, True)
    assert sum(p.numel() for p in network.parameters()) == model.card["complexity"]["params"]


@pytest.mark.parametrize("ratio", [5, 3])
def test_equals_official_test_py(network, ratio):
    with official("uretinex-net") as script:
        inference = script("test").Inference(options(ratio)).eval()
        for name in IMAGES:
            low, _ = pair(name)
            expected, _ = inference(low)
            assert float((zoo(network, low, ratio) - expected.clamp(0, 1)).abs().max()) <= 1e-5, name


def test_gt_ratio_equals_official_evaluate_py(model, network):
    with official("uretinex-net") as script:
        inference = script("evaluate").Inference(options()).eval()
        for name in IMAGES:
            low, high = pair(name)
            expected, _ = inference(low, high)
            ratio = model.reference_inputs(low[0].numpy().transpose(1, 2, 0), high[0].numpy().transpose(1, 2, 0))
            assert 1 < ratio["ratio"] < 20, name
            assert float((zoo(network, low, ratio["ratio"]) - expected.clamp(0, 1)).abs().max()) <= 1e-5, name


def test_load_and_run_with_ratio_3_give_the_official_ratio_3_output(cli, tmp_path):
    """modelzoo.load(ratio=3) and `modelzoo run --set ratio=3` (torch backend, each image at its own size) give
    the official test.py --ratio 3 output; --set ratio=abc is a one-line error."""
    import modelzoo

    low, _ = pair("22")
    with official("uretinex-net") as script:
        expected, _ = script("test").Inference(options(3)).eval()(low)
    expected = expected.clamp(0, 1)[0].numpy().transpose(1, 2, 0)
    pixels = imaging.read_rgb(LOL / "low" / "22.png")[CROP]
    enhancer = modelzoo.load("uretinex-net", backend="torch", ratio=3)
    assert float(np.abs(enhancer.raw(pixels)[0][0].transpose(1, 2, 0).clip(0, 1) - expected).max()) <= 1e-5
    imaging.write_rgb(tmp_path / "in" / "22.png", pixels)
    result = cli("run", "uretinex-net", "--input", tmp_path / "in", "--output", tmp_path / "out", "--backend",
                 "torch", "--set", "ratio=3", "--quiet")
    assert result.exit_code == 0, result.output
    written = imaging.read_rgb(tmp_path / "out" / "22.png")
    assert np.array_equal(written, enhancer(pixels))
    assert np.abs(written.astype(np.int16) - imaging.quantize(expected, "round")).max() <= 1
    result = cli("run", "uretinex-net", "--input", tmp_path / "in", "--output", tmp_path / "bad", "--backend",
                 "torch", "--set", "ratio=abc")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "error: --set ratio: expected a number, got 'abc'"


def test_onnx_export_takes_the_ratio_and_matches_torch(model, network):
    low, _ = pair("1")
    session = compiler.load(compiler.prepare(model, "fp32", "onnxruntime", native=True), log=lambda m: None)
    for ratio in (5.0, 3.0):
        outputs = session.run(low.numpy(), {"ratio": np.array([ratio], dtype=np.float32)})
        assert float(np.abs(outputs[0].clip(0, 1) - zoo(network, low, ratio).numpy()).max()) <= 1e-4


@pytest.mark.slow
def test_full_lol_image_equals_official(model, network):
    """The crops above, on a whole 600x400 image: the squeeze-and-excitation averages over all of it."""
    low, high = pair("55", (slice(None), slice(None)))
    with official("uretinex-net") as script:
        expected, _ = script("test").Inference(options(5)).eval()(low)
        assert float((zoo(network, low, 5) - expected.clamp(0, 1)).abs().max()) <= 1e-5
        expected, _ = script("evaluate").Inference(options()).eval()(low, high)
        ratio = model.reference_inputs(low[0].numpy().transpose(1, 2, 0), high[0].numpy().transpose(1, 2, 0))
        assert float((zoo(network, low, ratio["ratio"]) - expected.clamp(0, 1)).abs().max()) <= 1e-5
