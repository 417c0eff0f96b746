"""CPGA-Net+ and CPGA-Net++: the six official checkpoints load (weights_only, state dict unwrapped) strictly into
the network each variant names, the zoo's outputs equal the official demo.py's test-time outputs on LOL eval15
images (the default variant at full size, the others on crops), even sizes of any kind run as the official
code, the ONNX export is within the parity gate, and the LOL eval15 numbers measured here reproduce."""
import functools
import importlib.util
import sys
import types
from unittest import mock

import numpy as np
import pytest
import torch

from conftest import loaded, raw_state, reproduces_saved, LOL, SHARED, WEIGHTS
from modelzoo import compile as compiler
from modelzoo import imaging
from modelzoo.export import export_onnx

REFERENCE = SHARED / "reference" / "cpga-net"
PLUS = ("lol-v1", "lol-v2-real", "lol-v2-syn")
PLUSPLUS = ("pp-lol-v1", "pp-lol-v2-real", "pp-lol-v2-syn")
VARIANTS = PLUS + PLUSPLUS
IMAGES = ("1", "22", "111")  # three LOL eval15 low-light images
# demo.py's flags for each network (README, "Inference"); the rest are config.py's defaults
DEMO_FLAGS = {"plus": ["--plus"], "plusplus": ["--plus", "--iaaf_type", "IAAF_masking", "--block_type", "ConvNeXtBlock"]}
# Measured here (CPU, torch fp32, zoo protocol: float x 255 clipped, MATLAB-style SSIM), mean over the 15 LOL
# eval15 pairs, one variant per network; the README's 22.53 / 0.812 and 22.24 / 0.835 are evaluation.py's
# protocol (see the card).
MEASURED = {"lol-v1": (22.5465, 0.8152), "pp-lol-v1": (22.2384, 0.8371)}

pytestmark = pytest.mark.skipif(not (WEIGHTS / "cpga-net" / "enhance_lolv1.pkl").is_file(),
                                reason="../shared CPGA-Net weights not present")
needs_reference = pytest.mark.skipif(not (REFERENCE / "demo.py").is_file(),
                                     reason="../shared/reference/cpga-net not present")


@pytest.fixture(scope="module")
def cpga():
    from modelzoo.plugins import registry

    return registry().model("cpga-net")


@pytest.fixture(scope="module")
def demo():
    """The official demo.py and config.py's argument parser (model_cpga.py imported on the way), from
    ../shared/reference/cpga-net.

    Stubbed: utils.py (not in the release: weight_init, an initialisation the loaded weights overwrite, and
    str2bool), torchvision (imported for the data loader only) and data.py (the data loader). sys.modules is
    left as it was."""
    utils = types.ModuleType("utils")
    utils.weight_init = lambda module: None
    utils.str2bool = lambda value: str(value).lower() in ("true", "1", "yes")
    torchvision = types.ModuleType("torchvision")
    torchvision.transforms = types.ModuleType("torchvision.transforms")
    data = types.ModuleType("data")
    data.LLIEDataset = None
    stubs = {"utils": utils, "torchvision": torchvision, "torchvision.transforms": torchvision.transforms,
             "data": data}
    names = [*stubs, "config", "model_cpga", "demo"]
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update(stubs)
    try:
        for name in ("config", "model_cpga", "demo"):
            spec = importlib.util.spec_from_file_location(name, REFERENCE / f"{name}.py")
            module = sys.modules[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        return types.SimpleNamespace(parser=sys.modules["config"].parser, demo=module)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def official_net(demo, cpga, variant):
    """demo.load_pretrain_network with the README's flags for the variant's network and its checkpoint. Some
    checkpoints hold cuda tensors and demo.py's torch.load has no map_location: it gets map_location="cpu"."""
    flags = DEMO_FLAGS["plusplus" if variant in PLUSPLUS else "plus"]
    path = WEIGHTS / "cpga-net" / cpga.weights_entry(variant)["file"]
    cfg = demo.parser.parse_args([*flags, "--ckpt", str(path)])
    with mock.patch.object(torch, "load", functools.partial(torch.load, map_location="cpu")):
        return demo.demo.load_pretrain_network(cfg, torch.device("cpu")).eval()


def official_output(network, x):
    """demo.demo's test-time path for one image: the first of the get_all outputs, clamped to [0, 1]. Run with
    subnormals flushed to zero (the official lol-v1 weights hold 41,422 of them, ~1e-40): it changes nothing
    above 1e-30 and saves ~18x CPU time."""
    torch.set_flush_denormal(True)
    try:
        with torch.no_grad():
            return torch.clamp(network(x, get_all=True)[0], 0, 1)
    finally:
        torch.set_flush_denormal(False)  # torch's default


def lol_low(cpga, name):
    """A LOL low-light image as the zoo feeds it (RGB uint8 / 255, 1x3x400x600); demo.py's ToTensor is the same."""
    return torch.from_numpy(cpga.preprocess(imaging.read_rgb(LOL / "low" / f"{name}.png"), cpga.vdsp()))


def zoo_output(cpga, variant, x):
    with torch.no_grad():
        (enhanced,) = cpga.deploy(loaded(cpga, variant)).eval()(x)
    return enhanced


@pytest.mark.parametrize("variant", VARIANTS)
def test_weights_load_strictly(cpga, variant):
    """Each checkpoint is {epoch, state_dict, optimizer}; its state dict fills the variant's network exactly."""
    checkpoint = torch.load(WEIGHTS / "cpga-net" / cpga.weights_entry(variant)["file"], map_location="cpu",
                            weights_only=True)
    assert set(checkpoint) == {"epoch", "state_dict", "optimizer"}
    state = raw_state(cpga, variant)
    assert len(state) == (344 if variant in PLUSPLUS else 193)
    network = loaded(cpga, variant)
    assert set(network.state_dict()) == set(state)
    for key, value in network.state_dict().items():
        assert torch.equal(value, state[key]), key
    params = sum(p.numel() for p in network.parameters())
    assert params == (62304 if variant in PLUSPLUS else cpga.card["complexity"]["params"])


def test_subnormal_weights_read_as_zero(cpga):
    """CPGA-Net+ LOL-v1 holds 41,422 weights below float32's normal range (the other checkpoints none): the
    engine reads them as zero (modelzoo.weights), and the rest exactly."""
    tiny = torch.finfo(torch.float32).tiny
    for variant, expected in (("lol-v1", 41422), ("pp-lol-v1", 0)):
        file = torch.load(WEIGHTS / "cpga-net" / cpga.weights_entry(variant)["file"], map_location="cpu",
                          weights_only=True)["state_dict"]
        read = raw_state(cpga, variant)
        subnormal = {k: (v.abs() < tiny) & (v != 0) for k, v in file.items() if v.is_floating_point()}
        assert sum(int(m.sum()) for m in subnormal.values()) == expected
        for key, mask in subnormal.items():
            assert torch.equal(read[key], file[key].masked_fill(mask, 0)), key


def test_a_checkpoint_of_the_other_network_is_refused(cpga):
    with pytest.raises(RuntimeError, match="conv_scoring"):
        cpga.load_weights(cpga.network("lol-v1"), raw_state(cpga, "pp-lol-v1"))


@needs_reference
@pytest.mark.parametrize("name", IMAGES)
def test_default_equals_the_official_demo_on_lol(cpga, demo, name):
    """The default variant on full 600x400 LOL eval15 images: the zoo's deploy output against demo.py's."""
    x = lol_low(cpga, name)
    actual = zoo_output(cpga, "lol-v1", x)
    expected = official_output(official_net(demo, cpga, "lol-v1"), x)
    assert actual.shape == (1, 3, 400, 600)
    assert float((actual - expected).abs().max()) <= 1e-5
    assert float(actual.min()) >= 1e-4 and float(actual.max()) <= 1.0


@needs_reference
@pytest.mark.parametrize("variant", VARIANTS[1:])
def test_other_variants_equal_the_official_demo_on_lol_crops(cpga, demo, variant):
    """Every other variant on 96x128 crops of three LOL eval15 images (at different offsets)."""
    network = official_net(demo, cpga, variant)
    for index, name in enumerate(IMAGES):
        x = lol_low(cpga, name)[:, :, 60 * index:60 * index + 96, 100 * index:100 * index + 128].contiguous()
        actual, expected = zoo_output(cpga, variant, x), official_output(network, x)
        assert float((actual - expected).abs().max()) <= 1e-5, name


@needs_reference
@pytest.mark.parametrize("variant", ["lol-v1", "pp-lol-v1"])
@pytest.mark.parametrize("size", [(2, 2), (6, 10), (34, 50), (130, 18)])
def test_any_even_size_runs_as_the_official_code(cpga, demo, variant, size):
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(sum(size))) * 0.4
    actual = zoo_output(cpga, variant, x)
    assert actual.shape == x.shape
    torch.testing.assert_close(actual, official_output(official_net(demo, cpga, variant), x), rtol=0, atol=1e-5)


def test_odd_sizes_are_padded_to_even_and_cropped_back(cpga):
    """The card's multiple_of 2: the engine's torch session reflect-pads 37x53 to 38x54 and crops the output back;
    the crop equals the network run on the padded input."""
    job = compiler.prepare(cpga, "fp32", "torch")
    session = compiler.load(job, log=lambda m: None)
    x = np.random.default_rng(0).random((1, 3, 37, 53), dtype=np.float32) * 0.4
    (got,) = session.run(x)
    padded = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)), mode="reflect")
    expected = zoo_output(cpga, "lol-v1", torch.from_numpy(padded)).numpy()[:, :, :37, :53]
    assert got.shape == (1, 3, 37, 53) and float(np.abs(got - expected).max()) <= 1e-6


def test_deploy_and_postprocess_give_the_enhanced_image(cpga):
    network = loaded(cpga, "lol-v1")
    x = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(1)) * 0.3
    with torch.no_grad():
        outputs = [o.numpy() for o in cpga.deploy(network).eval()(x)]
        enhanced, gamma = network(x)
    assert len(outputs) == 1
    np.testing.assert_array_equal(outputs[0], enhanced.numpy())
    assert gamma.shape == (1, 1, 1, 1) and 0.01 <= float(gamma) <= 4
    np.testing.assert_array_equal(cpga.enhance(outputs), outputs[0][0].transpose(1, 2, 0))


@pytest.mark.parametrize("variant", ["lol-v1", "pp-lol-v1"])
def test_onnx_export_parity(cpga, tmp_path, variant):
    """One export per network (the variants of a network differ only in weights)."""
    job = compiler.prepare(cpga, "fp32", "onnxruntime", variant)
    report = export_onnx(job, tmp_path / "cpga.onnx")
    assert report["max_abs_diff"] <= 1e-4
    assert report["shape"] == [1, 3, 400, 600]


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(MEASURED))
def test_lol_eval15_reproduces(cli, tmp_path, variant):
    """The saved LOL eval15 evaluation has the measured means, and two of its images run again score the same."""
    saved = reproduces_saved(cli, tmp_path, "cpga-net", variant=variant)
    psnr, ssim = MEASURED[variant]
    assert saved["mean"]["psnr"] == pytest.approx(psnr, abs=0.002) and len(saved["images"]) == 15
    assert saved["mean"]["ssim"] == pytest.approx(ssim, abs=0.0005)
