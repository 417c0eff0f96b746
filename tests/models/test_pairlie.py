"""PairLIE: the network matches the official weights, and the published numbers reproduce."""
import json

import numpy as np
import pytest
import torch

from conftest import LOL, PAIRLIE_WEIGHTS, needs_shared
from modelzoo import compile as compiler
from modelzoo import imaging

pytestmark = needs_shared


def test_official_weights_load_strictly(pairlie):
    network = pairlie.network("official")
    state = torch.load(PAIRLIE_WEIGHTS, map_location="cpu", weights_only=True)
    assert len(state) == 30
    network.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in network.parameters()) == pairlie.card["complexity"]["params"] == 341767
    assert "L_net.L_net.13.weight" in state and state["L_net.L_net.13.weight"].shape == (1, 64, 3, 3)


def test_deploy_patch_returns_l_and_r(pairlie):
    job = compiler.prepare(pairlie, "fp32", "torch")
    module = job.torch_module()
    with torch.no_grad():
        outputs = module(torch.rand(1, 3, 16, 24))
    assert [tuple(o.shape) for o in outputs] == [(1, 1, 16, 24), (1, 3, 16, 24)]


def test_postprocess_is_l_to_the_gamma_times_r(pairlie):
    rng = np.random.default_rng(0)
    illumination = rng.random((1, 1, 4, 5), dtype=np.float32)
    reflectance = rng.random((1, 3, 4, 5), dtype=np.float32)
    enhanced = pairlie.enhance([illumination, reflectance], gamma=0.14)
    expected = (illumination[0] ** 0.14 * reflectance[0]).transpose(1, 2, 0)
    np.testing.assert_allclose(enhanced, expected, rtol=1e-6)
    default = pairlie.enhance([illumination, reflectance])
    np.testing.assert_allclose(default, (illumination[0] ** 0.2 * reflectance[0]).transpose(1, 2, 0), rtol=1e-6)


def test_onnxruntime_matches_torch_on_a_real_image(pairlie):
    image = imaging.read_rgb(LOL / "low" / "1.png")
    x = pairlie.preprocess(image, pairlie.vdsp())
    reference = compiler.load(compiler.prepare(pairlie, "fp32", "torch"), log=lambda m: None).run(x)
    onnx = compiler.load(compiler.prepare(pairlie, "fp32", "onnxruntime"), log=lambda m: None).run(x)
    for expected, actual in zip(reference, onnx):
        assert float(np.max(np.abs(expected - actual))) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_reference_zoo_numbers_reproduce(cli, tmp_path, backend):
    result = cli("run", "pairlie", "--input", LOL / "low", "--reference", LOL / "high", "--backend", backend,
                 "--output", tmp_path, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary["images"]) == 15
    assert summary["mean"]["psnr"] == pytest.approx(18.498, abs=0.002)
    assert summary["mean"]["ssim"] == pytest.approx(0.748, abs=0.001)


@pytest.mark.slow
def test_paper_numbers_reproduce(cli, tmp_path):
    result = cli("run", "pairlie", "--input", LOL / "low", "--reference", LOL / "high", "--protocol", "paper",
                 "--output", tmp_path, "--json", "--quiet")
    summary = json.loads(result.stdout)
    assert summary["mean"]["psnr"] == pytest.approx(19.514, abs=0.002)
    assert summary["mean"]["ssim"] == pytest.approx(0.736, abs=0.001)
