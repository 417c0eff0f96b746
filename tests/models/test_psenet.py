"""PSENet: both official Lightning checkpoints load strictly through the card's key, pickle_globals and
pickle_placeholders (and are refused without the placeholder), the zoo's network equals the official UnetTMO side by side (both outputs) on LOL
eval15 images (saturated pixels included) and at odd sizes down to the 5 px minimum, the deploy patch exports the
enhanced image, an output pixel depends on the whole image (no receptive radius, no tiling), ONNX stays within the
parity gate, and the saved LOL eval15 evaluation reproduces and scores what the official PNGs score."""
import cv2
import numpy as np
import pytest
import torch

from conftest import LOL, SHARED, WEIGHTS, loaded, official_module, raw_state, reproduces_saved
from modelzoo import compile as compiler
from modelzoo import imaging, metrics, weights
from modelzoo.errors import ZooError
from modelzoo.export import export_onnx

REFERENCE = SHARED / "reference" / "psenet" / "source"
VARIANTS = ("sice", "afifi")
IMAGES = ("1", "22", "111")  # three LOL eval15 low-light images, 600x400

pytestmark = [pytest.mark.skipif(not (WEIGHTS / "psenet" / "sice.pth").is_file(),
                                 reason="../shared PSENet weights not present"),
              pytest.mark.skipif(not (REFERENCE / "model.py").is_file(),
                                 reason="../shared/reference/psenet not present")]


@pytest.fixture(scope="module")
def psenet():
    from modelzoo.plugins import registry

    return registry().model("psenet")


@pytest.fixture(scope="module")
def official():
    """The official source/model.py (it imports torch only)."""
    return official_module("official_psenet_model", REFERENCE / "model.py")


def official_net(official, state):
    """UnetTMO with the checkpoint's state dict as demo.py's read_pytorch_lightning_state_dict gives it (the
    `model.` prefix removed), in eval mode."""
    network = official.UnetTMO()
    network.load_state_dict({key.removeprefix("model."): value for key, value in state.items()})
    return network.eval()


def official_input(name):
    """demo.py's read_image: cv2 BGR -> RGB, / 255.0 (float64), then float32, 1x3xHxW."""
    pixels = cv2.imread(str(LOL / "low" / f"{name}.png"))[:, :, ::-1] / 255.0
    return torch.from_numpy(pixels).float().permute(2, 0, 1).unsqueeze(0)


def saved_png(tensor):
    """torchvision.utils.save_image's pixels: x * 255 + 0.5 clamped to [0, 255], truncated to uint8, HxWx3."""
    return tensor[0].mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def max_diff(a, b):
    return float((a - b).abs().max())


@pytest.mark.parametrize("variant", VARIANTS)
def test_checkpoints_load_strictly(psenet, variant):
    state = raw_state(psenet, variant)
    assert len(state) == 62 and all(key.startswith("model.") for key in state)
    network = loaded(psenet, variant)
    assert {f"model.{key}" for key in network.state_dict()} == set(state)
    for key, value in network.state_dict().items():
        assert torch.equal(value, state[f"model.{key}"]), key
    assert sum(p.numel() for p in network.parameters()) == psenet.card["complexity"]["params"] == 15251


def test_a_missing_or_foreign_key_is_refused(psenet):
    state = raw_state(psenet)
    with pytest.raises(RuntimeError, match="last_conv.conv.5.bias"):
        psenet.load_weights(psenet.network("sice"),
                            {k: v for k, v in state.items() if k != "model.last_conv.conv.5.bias"})
    with pytest.raises(RuntimeError, match="conv9.weight"):
        psenet.load_weights(psenet.network("sice"), {**state, "model.conv9.weight": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="iqa.weight"):
        psenet.load_weights(psenet.network("sice"), {**state, "iqa.weight": torch.zeros(1)})


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_lightning_checkpoint_needs_the_placeholder(psenet, variant):
    """Without the card's pickle_placeholders the restricted unpickler refuses the file on Lightning's
    ModelCheckpoint class (the callbacks dict's key); with them it reads, the class only a placeholder key."""
    path = WEIGHTS / "psenet" / psenet.weights_entry(variant)["file"]
    entry = psenet.weights_entry(variant)
    with pytest.raises(ZooError, match="refused to load"):
        weights.read(path, {k: v for k, v in entry.items() if k != "pickle_placeholders"})
    checkpoint = weights.read(path, {k: v for k, v in entry.items() if k != "key"})
    (stand_in,) = checkpoint["callbacks"]
    assert f"{stand_in.__module__}.{stand_in.__name__}" == "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"
    assert checkpoint["epoch"] == {"sice": 140, "afifi": 30}[variant]
    read = raw_state(psenet, variant)
    assert set(read) == set(checkpoint["state_dict"])
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(read[key], value), key  # no subnormals: the engine's read changes nothing


def assert_equals_official(psenet, official, variant, x):
    """Both outputs of the official forward (the image demo.py saves and the exponent map) within 1e-5."""
    with torch.no_grad():
        theirs, their_exponent = official_net(official, raw_state(psenet, variant))(x)
        ours, exponent = loaded(psenet, variant)(x)
    assert ours.shape == exponent.shape == x.shape
    assert max_diff(ours, theirs) <= 1e-5 and max_diff(exponent, their_exponent) <= 1e-5
    assert float(theirs.min()) >= 0 and float(theirs.max()) <= 1  # the tolerance is on [0, 1] images
    return ours


@pytest.mark.parametrize("name", IMAGES)
def test_default_equals_the_official_code_on_lol(psenet, official, name):
    x = official_input(name)
    assert x.shape == (1, 3, 400, 600)
    # the zoo's preprocessing gives demo.py's input exactly
    assert torch.equal(torch.from_numpy(psenet.preprocess(imaging.read_rgb(LOL / "low" / f"{name}.png"),
                                                          psenet.vdsp())), x)
    enhanced = assert_equals_official(psenet, official, "sice", x)
    assert float(enhanced.mean()) > 2 * float(x.mean())  # it does brighten the low-light image


def test_afifi_equals_the_official_code_on_lol(psenet, official):
    assert_equals_official(psenet, official, "afifi", official_input("22"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_saturated_pixels_stay_as_the_official_code_gives_them(psenet, official, variant):
    """Where x = 1 (255) the zoo never raises 0 to a power (ncnn's pow(0, g) is 2.4e38), yet gives the official
    output: on LOL image 748's saturated pixels, and on a white image, where g is small (0.02-0.03)."""
    x = official_input("748")
    assert int((x == 1).sum()) > 100
    ours = assert_equals_official(psenet, official, variant, x)
    assert float(ours[x == 1].min()) > 1 - 1e-5
    white = assert_equals_official(psenet, official, variant, torch.ones(1, 3, 16, 16))
    assert torch.equal(white, torch.ones_like(white))


@pytest.mark.parametrize("size", [(5, 5), (5, 12), (7, 6), (17, 9), (33, 50)])
def test_any_size_from_the_minimum_runs_as_the_official_code(psenet, official, size):
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(sum(size))) * 0.4
    assert_equals_official(psenet, official, "afifi", x)


def test_below_the_minimum_size_neither_runs(psenet, official):
    """4 px: the stride-2 convolutions leave 1 px at 1/4 size, which reflect padding cannot pad (card min_size 5)."""
    assert psenet.card["input"]["min_size"] == 5 and "multiple_of" not in psenet.card["input"]
    x = torch.rand(1, 3, 4, 9)
    for network in (official_net(official, raw_state(psenet)), loaded(psenet)):
        with torch.no_grad(), pytest.raises(RuntimeError, match="[Pp]adding size"):
            network(x)


def test_deploy_exports_the_enhanced_image(psenet):
    network = loaded(psenet)
    generator = torch.Generator().manual_seed(2)
    for x in (torch.rand(1, 3, 24, 40, generator=generator) * 0.3, torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)):
        with torch.no_grad():
            outputs = psenet.deploy(network).eval()(x)
            enhanced, exponent = network(x)
        assert isinstance(outputs, tuple) and len(outputs) == len(psenet.card["outputs"]) == 1
        torch.testing.assert_close(outputs[0], enhanced, rtol=0, atol=0)
        assert float(enhanced.min()) >= 0 and float(enhanced.max()) <= 1 and float(exponent.min()) >= 0
        image = psenet.enhance([outputs[0].numpy()])
        np.testing.assert_array_equal(image, outputs[0][0].numpy().transpose(1, 2, 0))


def test_an_output_pixel_depends_on_the_whole_image(psenet):
    """The squeeze-excitation's global average: changing the far corner moves the centre, so the card gives no
    receptive radius and the engine never tiles PSENet."""
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3)) * 0.3
    far = x.clone()
    far[:, :, :4, :4] = 0.9
    network = psenet.deploy(loaded(psenet)).eval()
    with torch.no_grad():
        (a,), (b,) = network(x), network(far)
    assert max_diff(a[:, :, 48:, 48:], b[:, :, 48:, 48:]) > 1e-4
    assert "receptive_radius" not in psenet.card["complexity"]


def test_onnx_export_parity(psenet, tmp_path):
    report = export_onnx(compiler.prepare(psenet, "fp32", "onnxruntime"), tmp_path / "psenet.onnx")
    assert report["max_abs_diff"] <= 1e-4
    assert report["shape"] == [1, 3, 400, 600]


@pytest.mark.slow
def test_lol_eval15_reproduces_and_scores_the_official_pngs(psenet, official, cli, tmp_path):
    """Two LOL images through the CLI score what the saved full evaluation recorded for them, and the saved
    paper-protocol scores are those of the official network's outputs saved as demo.py saves them."""
    for protocol in ("zoo", "paper"):
        (tmp_path / protocol).mkdir()
        saved = reproduces_saved(cli, tmp_path / protocol, "psenet", protocol=protocol)
    network = official_net(official, raw_state(psenet))
    for name in ("1", "111"):
        with torch.no_grad():
            output, _ = network(official_input(name))
        theirs = metrics.score(saved_png(output), imaging.read_rgb(LOL / "high" / f"{name}.png"))
        # the saved run is ONNX Runtime's, within 1e-4 of torch: a few pixels round to the other uint8 value
        for metric, tolerance in (("psnr", 1e-3), ("ssim", 1e-4)):
            assert saved["images"][name][metric] == pytest.approx(theirs[metric], abs=tolerance), (name, metric)
