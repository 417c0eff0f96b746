"""URetinex-Net++: the official checkpoints load through the restricted unpickler, the zoo's network equals the
official test.py side by side on LOL images (fixed ratio 5 and 3, and the ratio it derives from the ground truth),
and the ratio is a graph input of the ONNX export."""
import argparse

import numpy as np
import pytest
import torch

from conftest import LOL, SHARED, WEIGHTS
from modelzoo import compile as compiler
from modelzoo import imaging, weights
from uretinex_official import official

FOLDER = WEIGHTS / "uretinex-net-pp"
IMAGES = ("1", "22", "23")
CROP = (slice(160, 192), slice(260, 308))  # 32x48: the network costs ~0.9 GMAC per 1000 pixels

pytestmark = pytest.mark.skipif(not (FOLDER / "fusion.pth").is_file() or
                                not (SHARED / "reference" / "uretinex-net-pp" / "test.py").is_file(),
                                reason="../shared URetinex-Net++ weights or reference code not present")


@pytest.fixture(scope="module")
def model():
    from modelzoo.plugins import registry

    return registry().model("uretinex-net-pp")


@pytest.fixture(scope="module")
def network(model):
    return model.loaded(model.states())


def pair(name, crop=CROP):
    """(low, ground truth) of a LOL eval15 image as 1x3xHxW float32 tensors, as the official ToTensor gives."""
    return tuple(torch.from_numpy(imaging.read_rgb(LOL / part / f"{name}.png")[crop].astype(np.float32)
                                  .transpose(2, 0, 1) / 255.0)[None] for part in ("low", "high"))


def inference(script, ratio=None):
    """The official test.py's Inference. Its checkpoint paths are its own folders (loading_corresponding_model)
    and, for the decomposition, a path on the authors' machine that the fusion checkpoint's options name: both
    pointed at the released files in ../shared."""
    module = script("test")
    load_decom = module.load_decom

    def released_decom(fusion_opts):
        fusion_opts.Decom_model_low_path = str(FOLDER / "decom_low_light.pth")
        fusion_opts.Decom_model_high_path = str(FOLDER / "decom_high_light.pth")
        return load_decom(fusion_opts)

    module.load_decom = released_decom
    module.loading_corresponding_model = lambda name: (str(FOLDER / "unfolding_model.pth"), str(FOLDER / "fusion.pth"))
    return module.Inference(argparse.Namespace(alg_name="URetinex-Net++", ratio=ratio)).eval()


def zoo(network, low, ratio):
    with torch.no_grad():
        return network(low, torch.tensor([ratio], dtype=torch.float32)).clamp(0, 1)


def test_checkpoints_set_the_unfolding_and_the_fusion(model, network):
    unfolding = weights.load_state_dict(FOLDER / "unfolding_model.pth", [argparse.Namespace])["opts"]
    fusion = weights.load_state_dict(FOLDER / "fusion.pth", [argparse.Namespace])["opts"]
    loop = network.unfolding
    assert (unfolding.round, unfolding.gamma, unfolding.lamda, unfolding.Roffset, unfolding.Loffset) == \
        (loop.rounds, loop.gamma, loop.lamda, loop.offset, loop.offset)
    assert (fusion.fusion_layers, fusion.net_L, fusion.min_ratio, fusion.fusion_model) == ([1, 2, 3], False, 1.0,
                                                                                          "weight3")
    assert sum(p.numel() for p in network.parameters()) == model.card["complexity"]["params"] == 372354


@pytest.mark.parametrize("ratio", [5.0, 3.0])
def test_equals_official_test_py(network, ratio):
    with official("uretinex-net-pp") as script:
        official_inference = inference(script, ratio)
        for name in IMAGES:
            low, _ = pair(name)
            expected, _ = official_inference(low)
            assert float((zoo(network, low, ratio) - expected.clamp(0, 1)).abs().max()) <= 1e-5, name


def test_gt_ratio_equals_official_test_py(model, network):
    with official("uretinex-net-pp") as script:
        official_inference = inference(script)
        for name in IMAGES:
            low, high = pair(name)
            expected, _ = official_inference(low, high)
            ratio = model.reference_inputs(low[0].numpy().transpose(1, 2, 0), high[0].numpy().transpose(1, 2, 0))
            assert 1 <= ratio["ratio"] < 20, name
            assert float((zoo(network, low, ratio["ratio"]) - expected.clamp(0, 1)).abs().max()) <= 1e-5, name


def test_onnx_export_takes_the_ratio_and_matches_torch(model, network):
    low, _ = pair("1")
    session = compiler.load(compiler.prepare(model, "fp32", "onnxruntime", native=True), log=lambda m: None)
    for ratio in (5.0, 3.0):
        outputs = session.run(low.numpy(), {"ratio": np.array([ratio], dtype=np.float32)})
        assert float(np.abs(outputs[0].clip(0, 1) - zoo(network, low, ratio).numpy()).max()) <= 1e-4


@pytest.mark.slow
def test_full_lol_image_equals_official(model, network):
    """The crops above, on a whole 600x400 image: the attention and the squeeze-and-excitation see all of it."""
    low, high = pair("55", (slice(None), slice(None)))
    with official("uretinex-net-pp") as script:
        official_inference = inference(script, 5.0)
        expected, _ = official_inference(low)
        assert float((zoo(network, low, 5.0) - expected.clamp(0, 1)).abs().max()) <= 1e-5
        official_inference.opts.ratio = None
        expected, _ = official_inference(low, high)
        ratio = model.reference_inputs(low[0].numpy().transpose(1, 2, 0), high[0].numpy().transpose(1, 2, 0))
        assert float((zoo(network, low, ratio["ratio"]) - expected.clamp(0, 1)).abs().max()) <= 1e-5
