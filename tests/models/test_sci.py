"""SCI: the enhance net loads the three official weight files strictly, its forward matches a functional
re-implementation from the raw tensors, exports to ONNX within the parity gate, and LOL eval15 reproduces."""
import json

import pytest
import torch
import torch.nn.functional as F

from conftest import loaded, raw_state, LOL, WEIGHTS
from modelzoo import compile as compiler
from modelzoo.export import export_onnx

VARIANTS = ("medium", "easy", "difficult")
# Measured here (CPU, onnxruntime fp32 = the default build, zoo protocol: float x 255 clipped): mean over the 15
# LOL eval15 pairs. Not published numbers; the card's `reported` stays empty.
MEASURED_PSNR = {"medium": 14.8534, "easy": 9.6281, "difficult": 13.8695}

pytestmark = pytest.mark.skipif(not (WEIGHTS / "sci" / "medium.pt").is_file(),
                                reason="../shared SCI weights not present")


@pytest.fixture(scope="module")
def sci():
    from modelzoo.plugins import registry

    return registry().model("sci")


def functional_sci(x, state):
    """The test-time SCI forward written directly with torch.nn.functional on the raw state-dict tensors."""
    def conv(t, name):
        return F.conv2d(t, state[f"enhance.{name}.weight"], state[f"enhance.{name}.bias"], stride=1, padding=1)

    fea = F.relu(conv(x, "in_conv.0"))
    block = conv(fea, "blocks.0.0")
    block = F.batch_norm(block, state["enhance.blocks.0.1.running_mean"], state["enhance.blocks.0.1.running_var"],
                         state["enhance.blocks.0.1.weight"], state["enhance.blocks.0.1.bias"], training=False,
                         eps=1e-5)
    fea = fea + F.relu(block)
    illu = torch.clamp(torch.sigmoid(conv(fea, "out_conv.0")) + x, 1e-4, 1.0)
    return illu, torch.clamp(x / illu, 0.0, 1.0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_enhance_net_loads_strictly(sci, variant):
    state = raw_state(sci, variant)
    enhance = {k: v for k, v in state.items() if k.startswith("enhance.")}
    assert len(state) == 83 and len(enhance) == 18
    network = loaded(sci, variant)
    # strict: every `enhance.*` key has a home and every parameter/buffer of the net is in the file
    assert set(network.state_dict()) == set(enhance)
    for key, value in network.state_dict().items():
        assert torch.equal(value, enhance[key]), key
    assert sum(p.numel() for p in network.parameters()) == sci.card["complexity"]["params"] == 258


def test_a_missing_enhance_key_is_refused(sci):
    state = raw_state(sci, "medium")
    del state["enhance.out_conv.0.bias"]
    with pytest.raises(RuntimeError, match="out_conv.0.bias"):
        sci.load_weights(sci.network("medium"), state)


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_matches_the_functional_reference(sci, variant):
    network = loaded(sci, variant)
    state = raw_state(sci, variant)
    x = torch.rand(2, 3, 13, 21, generator=torch.Generator().manual_seed(7)) * 0.3
    x[0, :, :3, :3] = 0.0  # exercise the 1e-4 floor of the illumination
    with torch.no_grad():
        illu, r = network(x)
        expected_illu, expected_r = functional_sci(x, state)
        (deployed,) = sci.deploy(network).eval()(x)
    torch.testing.assert_close(illu, expected_illu, rtol=0, atol=1e-6)
    torch.testing.assert_close(r, expected_r, rtol=0, atol=1e-5)
    torch.testing.assert_close(deployed, expected_r, rtol=0, atol=1e-5)


def test_outputs_stay_in_range(sci):
    network = sci.deploy(loaded(sci, "medium")).eval()
    generator = torch.Generator().manual_seed(1)
    for x in (torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8), torch.rand(1, 3, 8, 8, generator=generator),
              torch.rand(1, 3, 1, 1, generator=generator) * 1e-3):
        with torch.no_grad():
            (r,) = network(x)
        assert r.shape == x.shape
        assert float(r.min()) >= 0.0 and float(r.max()) <= 1.0
        image = sci.enhance([r.numpy()])
        assert image.shape == (x.shape[2], x.shape[3], 3) and image.min() >= 0.0 and image.max() <= 1.0


@pytest.mark.parametrize("variant", VARIANTS)
def test_onnx_export_parity(sci, tmp_path, variant):
    job = compiler.prepare(sci, "fp32", "onnxruntime", variant)
    report = export_onnx(job, tmp_path / "sci.onnx")
    assert report["max_abs_diff"] <= 1e-5
    assert report["shape"] == [1, 3, 400, 600]


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_lol_eval15_psnr_reproduces(cli, tmp_path, variant):
    result = cli("run", "sci", "--input", LOL / "low", "--reference", LOL / "high", "--variant", variant,
                 "--output", tmp_path, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary["images"]) == 15 and not summary["failures"]
    assert summary["protocol"] == "zoo" and summary["backend"] == "onnxruntime"
    assert summary["mean"]["psnr"] == pytest.approx(MEASURED_PSNR[variant], abs=0.002)
