"""RUAS: the three official checkpoints load strictly, each variant deploys the stage the official test saves,
our network equals the official code on full-size LOL images, exports to ONNX within the parity gate, and LOL
eval15 reproduces the official outputs' score."""
import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import loaded, raw_state, LOL, SHARED, WEIGHTS
from modelzoo import compile as compiler
from modelzoo import weights
from modelzoo.export import export_onnx

VARIANTS = ("lol", "upe", "dark")
REFERENCE = SHARED / "reference" / "ruas"
# The three LOL eval15 images the fidelity test runs at full size (600x400) through both implementations.
FIDELITY_IMAGES = ("1.png", "111.png", "780.png")
# Measured here (CPU, onnxruntime fp32 = the default build): mean over the 15 LOL eval15 pairs. The official
# code's outputs (reference/ruas test.py logic on CPU, scored by modelzoo.metrics) give the same numbers:
# lol 16.4462 dB float x 255 clipped (zoo) and 16.4047 dB as its saved uint8 PNGs (paper); upe 11.3705 / 11.3086;
# dark 16.1894 / 16.1461. Not published numbers; the card's `reported` stays empty.
MEASURED_PSNR = {"zoo": {"lol": 16.4462, "upe": 11.3705, "dark": 16.1894},
                 "paper": {"lol": 16.4047, "upe": 11.3086, "dark": 16.1461}}

pytestmark = pytest.mark.skipif(not (WEIGHTS / "ruas" / "lol.pt").is_file(),
                                reason="../shared RUAS weights not present")


@pytest.fixture(scope="module")
def ruas():
    from modelzoo.plugins import registry

    return registry().model("ruas")


def lol_image(name):
    """A LOL eval15 low-light image as the official loader gives it: ToTensor(), RGB in [0, 1], 1x3xHxW."""
    pixels = np.asarray(Image.open(LOL / "low" / name).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy())[None]


@pytest.fixture(scope="module")
def official():
    """The official model.py imported from ../shared/reference/ruas, its sibling modules registered only while
    it loads. Its Network() loads './model/denoise.pt' (saved on CUDA) relative to the working directory; that
    one method is pointed at the shared copy with map_location='cpu', which is all that changes."""
    if not (REFERENCE / "model.py").is_file():
        pytest.skip("../shared/reference/ruas not present")

    with pytest.MonkeyPatch.context() as patch:  # sys.modules is restored when the block ends

        def load(name, path):
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            patch.setitem(sys.modules, name, module)
            spec.loader.exec_module(module)
            return module

        load("genotypes", REFERENCE / "genotypes.py")
        load("operations", REFERENCE / "operations.py")
        module = load("ruas_official_model", REFERENCE / "model.py")

    def init_weights(self):
        self.denoise_net.load_state_dict(torch.load(WEIGHTS / "ruas" / "denoise.pt", map_location="cpu"))

    module.Network._init_weights = init_weights
    return module


@pytest.mark.parametrize("variant", VARIANTS)
def test_checkpoints_load_strictly(ruas, variant):
    state = raw_state(ruas, variant)
    assert len(state) == 76 and {key.split(".")[0] for key in state} == {"enhance_net", "denoise_net"}
    network = loaded(ruas, variant)
    assert set(network.state_dict()) == set(state)
    for key, value in network.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert sum(p.numel() for p in network.parameters()) == ruas.card["complexity"]["params"] == 3438
    assert sum(p.numel() for p in network.enhance_net.parameters()) == 1161


def test_a_missing_key_is_refused(ruas):
    state = raw_state(ruas, "lol")
    del state["denoise_net.activate.0.bias"]
    with pytest.raises(RuntimeError, match="denoise_net.activate.0.bias"):
        ruas.load_weights(ruas.network("lol"), state)


@pytest.mark.skipif(not (WEIGHTS / "ruas" / "denoise.pt").is_file(), reason="denoise.pt not present")
@pytest.mark.parametrize("variant", VARIANTS)
def test_each_checkpoint_carries_its_own_denoiser(ruas, variant):
    """Why the card needs no second weight file: every checkpoint holds a complete, fine-tuned denoiser with
    the same tensors as model/denoise.pt but other values, and test.py's strict load replaces denoise.pt's."""
    initial = weights.load_state_dict(WEIGHTS / "ruas" / "denoise.pt")
    state = raw_state(ruas, variant)
    carried = {key.removeprefix("denoise_net."): value for key, value in state.items()
               if key.startswith("denoise_net.")}
    assert set(carried) == set(initial) and len(initial) == 40
    assert max(float((carried[key] - initial[key]).abs().max()) for key in initial) > 1e-4


@pytest.mark.parametrize("variant, stage", [("lol", "denoised"), ("upe", "enhanced"), ("dark", "enhanced")])
def test_each_variant_deploys_the_stage_its_official_test_saves(ruas, variant, stage):
    network = loaded(ruas, variant)
    assert network.output == stage
    x = torch.rand(1, 3, 17, 23, generator=torch.Generator().manual_seed(3)) * 0.4
    calls = []
    network.denoise_net.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        enhanced, denoised = network(x)
        calls.clear()
        (deployed,) = ruas.deploy(network).eval()(x)
    expected = denoised.clamp(0, 1) if stage == "denoised" else enhanced
    torch.testing.assert_close(deployed, expected, rtol=0, atol=0)
    # the enhanced-only variants leave the denoiser out of the exported graph
    assert len(calls) == (1 if stage == "denoised" else 0)
    if stage == "denoised":
        assert not torch.equal(deployed, enhanced)


@pytest.mark.parametrize("variant", VARIANTS)
def test_matches_the_official_code_on_lol(ruas, official, variant):
    """Full-size LOL images through the official Network (loaded as test.py does) and ours: every IEM's u and t,
    the denoised image and the deploy output (the stage test.py saves, clipped as save_images does)."""
    reference = official.Network()
    reference.load_state_dict(torch.load(WEIGHTS / "ruas" / f"{variant}.pt", map_location="cpu"))
    reference.eval()
    network = loaded(ruas, variant)
    deployed = ruas.deploy(network).eval()
    worst = 0.0
    for name in FIDELITY_IMAGES:
        x = lol_image(name)
        assert x.shape == (1, 3, 400, 600)
        with torch.no_grad():
            u_ref, t_ref = reference(x)
            u_ours, t_ours = network.enhance_net(x)
            _, denoised = network(x)
            (ours,) = deployed(x)
        for a, b in zip(u_ours + t_ours + [denoised], u_ref[:-1] + t_ref + [u_ref[-1]], strict=True):
            worst = max(worst, float((a - b).abs().max()))
        saved = u_ref[-1] if variant == "lol" else u_ref[-2]
        worst = max(worst, float((ours - saved.clamp(0, 1)).abs().max()))
    assert worst <= 1e-5


def test_outputs_stay_in_range_at_any_size(ruas):
    generator = torch.Generator().manual_seed(1)
    for variant in ("lol", "upe"):
        network = ruas.deploy(loaded(ruas, variant)).eval()
        for x in (torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8), torch.rand(1, 3, 1, 1, generator=generator),
                  torch.rand(1, 3, 2, 3, generator=generator), torch.rand(1, 3, 9, 7, generator=generator) * 1e-3):
            with torch.no_grad():
                (y,) = network(x)
            assert y.shape == x.shape
            assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
            image = ruas.enhance([y.numpy()])
            assert image.shape == (x.shape[2], x.shape[3], 3)


@pytest.mark.parametrize("variant, radius", [("lol", 17), ("upe", 9)])
def test_receptive_radius(ruas, variant, radius):
    """The input pixels one output pixel depends on reach `radius` px (right/down; one less left/up, from the
    one-sided 2x2 max): the card's receptive_radius is the default variant's, which tiling uses as overlap."""
    network = ruas.deploy(loaded(ruas, variant)).eval()
    centre = 2 * radius
    x = (torch.rand(1, 3, 4 * radius + 1, 4 * radius + 1, generator=torch.Generator().manual_seed(5)) * 0.3)
    x.requires_grad_()
    (y,) = network(x)
    y[0, :, centre, centre].sum().backward()
    rows, cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1)) > 0, as_tuple=True)
    reach = max(centre - int(rows.min()), int(rows.max()) - centre, centre - int(cols.min()),
                int(cols.max()) - centre)
    assert reach == radius
    if variant == ruas.default_variant:
        assert ruas.card["complexity"]["receptive_radius"] == radius


@pytest.mark.parametrize("variant", VARIANTS)
def test_onnx_export_parity(ruas, tmp_path, variant):
    job = compiler.prepare(ruas, "fp32", "onnxruntime", variant)
    report = export_onnx(job, tmp_path / "ruas.onnx")
    assert report["max_abs_diff"] <= 1e-4
    assert report["shape"] == [1, 3, 400, 600]


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["zoo", "paper"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_lol_eval15_reproduces_the_official_outputs(cli, tmp_path, variant, protocol):
    result = cli("run", "ruas", "--input", LOL / "low", "--reference", LOL / "high", "--variant", variant,
                 "--protocol", protocol, "--output", tmp_path, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary["images"]) == 15 and not summary["failures"]
    assert summary["protocol"] == protocol and summary["backend"] == "onnxruntime"
    assert summary["mean"]["psnr"] == pytest.approx(MEASURED_PSNR[protocol][variant], abs=0.002)
