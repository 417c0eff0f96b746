"""CoLIE: the SIREN starts as the official constructor makes it under the same seed, a step's gradients are the
official autograd's bit for bit, and the whole enhancement equals the official colie.py, run unmodified side by
side under the same seed, on LOL eval15 crops; runs repeat exactly.

The official script runs on CUDA only (.cuda() calls): here Tensor.cuda and Module.cuda are made no-ops, so it
runs on the CPU with the same torch and the same threads as the zoo's code. Its fit always works at
down_size x down_size, whatever the image size, so these tests use the CLI's --down_size 64 --epochs 20 (the
official code under other settings, not other code); the default settings at 600x400 were compared once
(max abs difference 0, see the card).
"""
import runpy
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import LOL, SHARED, official_module

from modelzoo.errors import ZooError
from modelzoo.plugins import registry
from modelzoo_models.colie import net

REFERENCE = SHARED / "reference" / "colie"
DEFAULTS = dict(down_size=256, epochs=100, window=1, level=0.5, alpha=1.0, beta=20.0, gamma=8.0, delta=5.0, seed=0)
SMALL = dict(DEFAULTS, down_size=64, epochs=20)
CROP = (200, 150, 296, 214)  # left, top, right, bottom: 96 x 64

pytestmark = pytest.mark.skipif(not (REFERENCE / "colie.py").is_file(), reason="../shared/reference/colie not present")


@pytest.fixture
def official(monkeypatch):
    """The official modules, importable by their bare names as colie.py expects, running on the CPU."""
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *args, **kwargs: self)
    monkeypatch.setattr(torch.nn.Module, "cuda", lambda self, *args, **kwargs: self)
    modules = {}
    for name in ("filter", "utils", "loss", "siren", "color"):  # utils imports filter
        modules[name] = official_module(name, REFERENCE / f"{name}.py")
        monkeypatch.setitem(sys.modules, name, modules[name])
    return modules


def run_official(folder, output, settings, monkeypatch):
    """colie.py itself on every image of `folder`, the global generator seeded with settings['seed'] (it sets
    none); returns its last image before the uint8 save: float RGB (1, 3, H, W) in [0, 1]."""
    argv = ["colie.py", "--input_folder", str(folder), "--output_folder", str(output)]
    for name, flag in (("down_size", "down_size"), ("epochs", "epochs"), ("window", "window"), ("level", "L"),
                       ("alpha", "alpha"), ("beta", "beta"), ("gamma", "gamma"), ("delta", "delta")):
        argv += [f"--{flag}", str(settings[name])]
    monkeypatch.setattr(sys, "argv", argv)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings["seed"])
        namespace = runpy.run_path(str(REFERENCE / "colie.py"), run_name="__main__")
    return namespace["img_rgb_fixed"].detach()


def crop(name, folder):
    """A 96 x 64 crop of a LOL eval15 low-light image, saved as the only PNG of `folder`; returns its pixels."""
    folder.mkdir()
    image = Image.open(LOL / "low" / f"{name}.png").convert("RGB").crop(CROP)
    image.save(folder / f"{name}.png")
    return np.asarray(image)


def zoo(pixels, settings):
    """The zoo's network as the engine calls it: raw 8-bit values (vdsp EQUAL), runtime inputs as float32 [1]
    tensors, under torch.inference_mode."""
    network = net.CoLIE(DEFAULTS)
    x = torch.from_numpy(pixels.astype(np.float32).transpose(2, 0, 1)[None].copy())
    with torch.inference_mode():
        (out,) = network(x, *(torch.tensor([float(settings[name])]) for name in DEFAULTS))
    return out


@pytest.mark.parametrize("window, seed", [(1, 0), (1, 7), (3, 0)])
def test_siren_starts_as_the_official_constructor(official, window, seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        expected = official["siren"].INF(patch_dim=window ** 2, num_layers=4, hidden_dim=256, add_layer=2).state_dict()
    params = net.siren_init(window, seed)
    assert params.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(params[key], value), key
    assert sum(p.numel() for p in params.values()) == (133_121 if window == 1 else 133_121 + 8 * 256)


def test_a_step_gives_the_official_gradients_bit_for_bit(official):
    """The hand-written backward (preallocated buffers, the patch branch's first layer once per distinct value)
    against autograd through the official INF and loss, on a real image's value channel at 32 x 32."""
    size, settings = 32, dict(SMALL, down_size=32)
    utils, color = official["utils"], official["color"]
    v = utils.get_v_component(color.rgb2hsv_torch(utils.get_image(str(LOL / "low" / "22.png"))))
    v_lr = utils.interpolate_image(v, size, size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        inf = official["siren"].INF(patch_dim=1, num_layers=4, hidden_dim=256, add_layer=2)
    illu = inf(utils.get_patches(v_lr, 1), utils.get_coords(size, size)).view(1, 1, size, size) + v_lr
    fixed = v_lr / (illu + 1e-4)
    loss = official["loss"]
    (torch.mean(torch.abs(torch.pow(illu - v_lr, 2))) * 1.0 + loss.L_TV()(illu) * 20.0
     + torch.mean(loss.L_exp(16, 0.5)(illu)) * 8.0 + torch.mean(fixed) * 5.0).backward()

    params = {k: p.requires_grad_() for k, p in net.siren_init(1, 3).items()}
    distinct, inverse = net.distinct_patches(net.patches_of(v_lr, 1))
    assert len(distinct) < net.MIN_DISTINCT  # the patch branch really is deduplicated, and padded
    workspace = net.Workspace(distinct, inverse, net.coordinates(size))
    mine = net.siren(params, workspace).view(1, 1, size, size) + v_lr
    assert torch.equal(mine, illu.detach())
    net.fit_loss(mine, v_lr / (mine + 1e-4), v_lr, **{k: settings[k] for k in ("level", "alpha", "beta", "gamma",
                                                                                   "delta")}).backward()
    for name, parameter in inf.named_parameters():
        assert torch.equal(params[name].grad, parameter.grad), name


@pytest.mark.parametrize("name", ["1", "22", "23"])
def test_equals_the_official_colie_side_by_side(official, monkeypatch, tmp_path, name):
    pixels = crop(name, tmp_path / "in")
    expected = run_official(tmp_path / "in", tmp_path / "out", SMALL, monkeypatch)
    out = zoo(pixels, SMALL)
    assert out.shape == expected.shape == (1, 3, 64, 96)
    assert float((out - expected).abs().max()) <= 1e-5  # measured: 0 (the same arithmetic in the same order)
    assert float(out.min()) >= 0 and float(out.max()) == 1.0


def test_every_setting_reaches_the_fit(official, monkeypatch, tmp_path):
    """The Colab notebook's settings (--gamma 9 --L 0.1), a 3 x 3 context window and another seed: still equal
    to the official script, and unlike the defaults' output."""
    settings = dict(SMALL, window=3, level=0.1, gamma=9.0, alpha=2.0, beta=10.0, delta=4.0, seed=5, epochs=12)
    pixels = crop("55", tmp_path / "in")
    expected = run_official(tmp_path / "in", tmp_path / "out", settings, monkeypatch)
    out = zoo(pixels, settings)
    # measured: 0 on an AVX-512 machine, 1.6e-4 on an AVX2 one (the 3 x 3 window's wider reductions round
    # differently there, and 12 Adam steps carry it); 50x below what the settings change (> 0.05)
    assert float((out - expected).abs().max()) <= 1e-3
    assert float((out - zoo(pixels, SMALL)).abs().max()) > 0.05


def test_runs_repeat_exactly_and_the_seed_matters():
    pixels = np.asarray(Image.open(LOL / "low" / "79.png").convert("RGB").crop(CROP))
    settings = dict(SMALL, epochs=10)
    first, second = zoo(pixels, settings), zoo(pixels, settings)
    assert torch.equal(first, second)
    assert not torch.equal(first, zoo(pixels, dict(settings, seed=1)))


def test_an_even_window_is_refused():
    with pytest.raises(ZooError, match="^window: CoLIE's context window must be odd"):
        zoo(np.full((8, 8, 3), 40, np.uint8), dict(SMALL, window=2))


def test_a_flat_image_one_distinct_value_equals_the_official(official, monkeypatch, tmp_path):
    """One distinct value: the patch branch runs on MIN_DISTINCT copies of it (BLAS rounds a single row
    differently)."""
    (tmp_path / "in").mkdir()
    pixels = np.full((40, 56, 3), (30, 20, 10), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in" / "flat.png")
    expected = run_official(tmp_path / "in", tmp_path / "out", dict(SMALL, epochs=8), monkeypatch)
    assert float((zoo(pixels, dict(SMALL, epochs=8)) - expected).abs().max()) <= 1e-5


# -- the plugin, through the engine ----------------------------------------------------------------------------
def test_card_validates_and_there_is_only_the_torch_build(cli):
    from modelzoo import validation

    model = registry().model("colie")
    assert validation.validate_file(model.card_path)[0] == []
    assert model.builds == ["fp32"] and model.card["runtime_inputs"]["epochs"]["default"] == DEFAULTS["epochs"]
    assert {name: spec["default"] for name, spec in model.runtime_inputs.items()} == DEFAULTS
    result = cli("compile", "colie", "--build", "int8")
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "PyTorch eager fp32" in result.output


def test_modelzoo_run_twice_gives_identical_files(cli, tmp_path):
    pixels = np.asarray(Image.open(LOL / "low" / "111.png").convert("RGB").crop(CROP))
    (tmp_path / "in").mkdir()
    Image.fromarray(pixels).save(tmp_path / "in" / "111.png")
    small = ["--set", "epochs=6", "--set", "down_size=48", "--quiet"]
    for out in ("a", "b"):
        result = cli("run", "colie", "--input", tmp_path / "in", "--output", tmp_path / out, *small)
        assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "111.png").read_bytes() == (tmp_path / "b" / "111.png").read_bytes()
    written = np.asarray(Image.open(tmp_path / "a" / "111.png"))
    expected = zoo(pixels, dict(SMALL, epochs=6, down_size=48))[0].numpy().transpose(1, 2, 0)
    assert np.abs(written.astype(np.float32) - np.round(expected * 255)).max() <= 1  # the engine's rounding
    result = cli("run", "colie", "--input", tmp_path / "in", "--output", tmp_path / "c", "--set", "epochs=abc")
    assert result.exit_code != 0 and "--set epochs: expected an integer, got 'abc'" in result.output


@pytest.mark.slow
def test_a_lol_image_at_the_default_settings_scores_the_saved_result(cli, tmp_path):
    """One image of the saved LOL eval15 reproduction (results/, all 15 images), run again at the defaults:
    the same score (a different thread count moves flat-region pixels by ~1e-4, far below 0.01 dB)."""
    saved = sorted(registry().model("colie").results_dir().glob("eval-lol-eval15-fp32-*.json"))
    if not saved:
        pytest.skip("no saved LOL eval15 results for colie yet")
    import json

    expected = json.loads(saved[0].read_text())["metrics"]["zoo"]["images"]["1"]["psnr"]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "1.png").symlink_to(LOL / "low" / "1.png")
    result = cli("run", "colie", "--input", tmp_path / "in", "--reference", LOL / "high", "--protocol", "zoo",
                 "--output", tmp_path / "out", "--json", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"][0]["psnr"] == pytest.approx(expected, abs=0.01)
