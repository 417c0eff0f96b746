"""IAT: the three official weight files load strictly, the network equals the official code's test-time output on
LOL images (each variant with the input its official evaluation feeds it), any input size runs, the ONNX export
is within the parity gate, and the official LOL-v1 numbers reproduce through the CLI."""
import importlib.util
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from conftest import loaded, raw_state, reproduces_saved, saved_scores, needs_ncnn, LOL, SHARED, WEIGHTS
from modelzoo import compile as compiler
from modelzoo import imaging
from modelzoo.export import export_onnx

REFERENCE = SHARED / "reference" / "iat"
VARIANTS = ("lol-v1", "lol-v2", "exposure")
# side by side with the official code: one full image per variant (CI's budget; other sizes below)
SIDE_BY_SIDE = [("lol-v1", "1"), ("lol-v2", "22"), ("exposure", "23")]
# Measured here (CPU, zoo protocol: float x 255 clipped, MATLAB-style SSIM), mean over the 15 LOL eval15 pairs;
# lol-v1 is the official README's 23.38 / 0.809.
MEASURED = {"lol-v1": (23.3827, 0.8087), "lol-v2": (18.4272, 0.7666), "exposure": (9.6900, 0.2410)}

pytestmark = pytest.mark.skipif(not (WEIGHTS / "iat" / "best_Epoch_lol_v1.pth").is_file(),
                                reason="../shared IAT weights not present")
needs_reference = pytest.mark.skipif(not (REFERENCE / "model" / "IAT_main.py").is_file(),
                                     reason="../shared/reference/iat not present")


@pytest.fixture(scope="module")
def iat():
    from modelzoo.plugins import registry

    return registry().model("iat")


@pytest.fixture(scope="module")
def official():
    """The official IAT_main module, imported from ../shared/reference/iat with timm (and the removed-in-3.12
    `imp` that global_net.py imports) stubbed; sys.modules is left as it was."""
    class DropPath(nn.Identity):
        def __init__(self, *args, **kwargs):
            super().__init__()

    stubs = {name: types.ModuleType(name) for name in (
        "timm", "timm.models", "timm.models.layers", "timm.models.vision_transformer", "timm.models.registry",
        "imp")}
    stubs["timm.models.layers"].__dict__.update(trunc_normal_=lambda tensor, **_: tensor, DropPath=DropPath,
                                                to_2tuple=lambda x: (x, x))
    stubs["timm.models.vision_transformer"].__dict__.update(VisionTransformer=None, _cfg=None)
    stubs["timm.models.registry"].register_model = lambda f: f
    stubs["model"] = types.ModuleType("model")
    stubs["model"].__path__ = [str(REFERENCE / "model")]
    names = [*stubs, "model.blocks", "model.global_net", "model.IAT_main"]
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update(stubs)
    try:
        for name in ("blocks", "global_net", "IAT_main"):
            spec = importlib.util.spec_from_file_location(f"model.{name}", REFERENCE / "model" / f"{name}.py")
            module = sys.modules[f"model.{name}"] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        return module
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def official_net(official, iat, variant):
    network = official.IAT(type="exp" if variant == "exposure" else "lol")
    network.load_state_dict(raw_state(iat, variant))
    return network.eval()


def official_input(rgb, variant):
    """What the official evaluation feeds the network: TF.to_tensor (uint8 / 255 in float32) for LOL-v1
    (data_loaders/lol_v1_new.py) and exposure; for LOL-v2 numpy float64 / 255, ToTensor, Normalize(0.5, 0.5)
    in float64, then float32 (data_loaders/lol.py with normalize=True)."""
    if variant == "lol-v2":
        return ((torch.from_numpy(rgb / 255.0).permute(2, 0, 1) - 0.5) / 0.5).float()[None]
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255)[None]


@pytest.mark.parametrize("variant", VARIANTS)
def test_weights_load_strictly(iat, variant):
    state = raw_state(iat, variant)
    assert len(state) == 161
    network = loaded(iat, variant)
    assert set(network.state_dict()) == set(state)
    for key, value in network.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert sum(p.numel() for p in network.parameters()) == iat.card["complexity"]["params"] == 91154


def test_a_missing_key_is_refused(iat):
    state = raw_state(iat, "lol-v1")
    del state["global_net.generator.attn.q"]
    with pytest.raises(RuntimeError, match="generator.attn.q"):
        iat.load_weights(iat.network("lol-v1"), state)


@needs_reference
@pytest.mark.parametrize("variant, name", SIDE_BY_SIDE)
def test_equals_the_official_code_on_lol(iat, official, variant, name):
    """A full 600x400 LOL eval15 image: our [0, 1] input against the input the official evaluation feeds."""
    rgb = imaging.read_rgb(LOL / "low" / f"{name}.png")
    x = torch.from_numpy(iat.preprocess(rgb, iat.vdsp()))
    with torch.no_grad():
        mul, add, enhanced = loaded(iat, variant)(x)
        expected_mul, expected_add, expected = official_net(official, iat, variant)(official_input(rgb, variant))
    assert enhanced.shape == (1, 3, 400, 600)
    for actual, reference in ((enhanced, expected), (mul, expected_mul), (add, expected_add)):
        assert float((actual - reference).abs().max()) <= 1e-5
    # the official img_high is already in (0, 1]: no clamp is added after the gamma
    assert float(expected.min()) > 0.0 and float(expected.max()) <= 1.0


@needs_reference
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (37, 53), (401, 17)])
def test_any_size_runs_as_the_official_code(iat, official, size):
    """Stride-2 zero-padded convolutions and attention over any token count: no size constraint to declare."""
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(sum(size))) * 0.4
    with torch.no_grad():
        (enhanced,) = iat.deploy(loaded(iat, "lol-v1")).eval()(x)
        expected = official_net(official, iat, "lol-v1")(x)[2]
    assert enhanced.shape == x.shape
    torch.testing.assert_close(enhanced, expected, rtol=0, atol=1e-5)
    assert "multiple_of" not in iat.card["input"] and iat.card["input"]["min_size"] == 1


def test_lol_v2_scales_its_input_to_plus_minus_one(iat):
    """The lol-v2 network on x equals the same weights without the scaling on 2x - 1."""
    x = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(3))
    plain = iat.network("lol-v1")
    plain.load_state_dict(raw_state(iat, "lol-v2"))
    with torch.no_grad():
        torch.testing.assert_close(loaded(iat, "lol-v2")(x)[2], plain.eval()(x * 2 - 1)[2], rtol=0, atol=1e-6)


def test_deploy_and_postprocess_give_the_enhanced_image(iat):
    network = loaded(iat, "lol-v1")
    x = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(1)) * 0.3
    with torch.no_grad():
        outputs = [o.numpy() for o in iat.deploy(network).eval()(x)]
        np.testing.assert_array_equal(outputs[0], network(x)[2].numpy())
    assert len(outputs) == 1
    image = iat.enhance(outputs)
    np.testing.assert_array_equal(image, outputs[0][0].transpose(1, 2, 0))


@pytest.mark.parametrize("variant", ["lol-v1", "exposure"])  # lol-v2 is lol-v1's graph with other weights
def test_onnx_export_parity(iat, tmp_path, variant):
    job = compiler.prepare(iat, "fp32", "onnxruntime", variant)
    report = export_onnx(job, tmp_path / "iat.onnx")
    assert report["max_abs_diff"] <= 1e-4
    assert report["shape"] == [1, 3, 400, 600]


@needs_ncnn
def test_ncnn_runs_any_size(iat):
    """The ncnn build (pnnx given a second input size, so the attention's token count stays symbolic) equals
    torch at the build's size and at two others."""
    job = compiler.prepare(iat, "ncnn-fp32")
    session = compiler.load(job, log=lambda m: None)
    assert job.report["parity"]["max_abs_diff"] <= 1e-4 and job.report["parity"]["any_size"]["max_abs_diff"] <= 1e-4
    module = job.torch_module()
    for size in ((37, 53), (120, 90)):
        x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1)) * 0.4
        with torch.no_grad():
            (expected,) = module(x)
        (got,) = session.run(x.numpy())
        assert got.shape == tuple(expected.shape) and float(np.abs(got - expected.numpy()).max()) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_lol_eval15_reproduces(cli, tmp_path, variant):
    """Each variant's saved LOL eval15 evaluation has the measured means (lol-v1: the README's 23.38 / 0.809);
    two of the default's images run again through the CLI score the same (the other variants' networks are
    checked against the official code above; exporting each again would cost CI minutes)."""
    if variant == "lol-v1":
        saved = reproduces_saved(cli, tmp_path, "iat")
    else:
        saved = saved_scores("iat", variant)
    psnr, ssim = MEASURED[variant]
    assert saved["mean"]["psnr"] == pytest.approx(psnr, abs=0.002) and len(saved["images"]) == 15
    assert saved["mean"]["ssim"] == pytest.approx(ssim, abs=0.0005)
