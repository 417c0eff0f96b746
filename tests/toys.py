"""Synthetic toy models for the engine's contract tests: small networks, weights made here, cards written into a
temporary folder from tests/data/toy/card.yaml, registered into the process registry for the test's duration."""
import contextlib
import hashlib
import json
import shutil

import numpy as np
import torch
import yaml
from torch import nn

from conftest import CARD_TEMPLATE_MODEL
from modelzoo import Model, paths

SHAPE = [1, 3, 32, 48]


class Gain(nn.Module):
    """clamp(conv3x3(x) * ratio, 0, 1): a convolution scaled by a runtime input `ratio` (float32 [1])."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x, ratio):
        return (torch.clamp(self.conv(x) * ratio, 0, 1),)


class Plain(nn.Module):
    """clamp(conv3x3(x), 0, 1): the image only."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return (torch.clamp(self.conv(x), 0, 1),)


class ToyModel(Model):
    """network_class: the nn.Module to build; reference_inputs: the ratio of mean brightness, reference / low."""

    network_class = Gain

    def network(self, variant):
        return self.network_class()

    def reference_inputs(self, low, reference):
        return {"ratio": float(np.clip(reference.mean() / max(low.mean(), 1e-6), 1, 20))}


def weights_for(module_class):
    """A state dict close to the identity convolution (seeded), so outputs look like the input."""
    torch.manual_seed(0)
    net = module_class()
    with torch.no_grad():
        net.conv.weight.mul_(0.05)
        for c in range(3):
            net.conv.weight[c, c, 1, 1] += 1.0
        net.conv.bias.zero_()
    return net.state_dict()


def save_weights(name, file, state):
    """Write a weights file into the user cache (where the engine looks); returns its card entry."""
    target = paths.cache_dir() / "weights" / name / file
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    return {"file": file, "url": f"https://example.invalid/{file}", "sha256": digest, "size": target.stat().st_size}


FP32 = {"name": "fp32", "frontend": {"type": "onnx", "checkpoint": None, "dtype": "fp32"},
        "backend": {"type": "onnxruntime", "dtype": "fp32"}}
NCNN = {"name": "ncnn", "frontend": {"type": "pytorch"}, "backend": {"type": "ncnn", "dtype": "fp32"}}
TORCH = {"name": "torch", "frontend": {"type": "pytorch"}, "backend": {"type": "torch", "dtype": "fp32"}}


def int8(calibration_folder):
    return {"name": "int8", "frontend": {"type": "onnx", "checkpoint": None, "dtype": "fp32"},
            "backend": {"type": "onnxruntime", "dtype": "int8",
                        "quantize": {"calibrate_mode": "percentile", "percentile": 99.99}},
            "dataset": {"type": "folder", "path": str(calibration_folder), "process_ops": [{"type": "DecodeImage"}]}}


def write_card(folder, name, builds=None, **fields):
    """A toy card NAME in `folder` (fields replace the template's), its build yamls and vdsp params."""
    folder.mkdir(parents=True, exist_ok=True)
    card = yaml.safe_load(CARD_TEMPLATE_MODEL.read_text())
    card.update(name=name, input={**card["input"], "shape": SHAPE, "min_size": 1},
                complexity={**card["complexity"], "shape": SHAPE, "receptive_radius": 1})
    builds = builds or {"fp32": FP32}
    (folder / "build").mkdir(exist_ok=True)
    for build, spec in builds.items():
        (folder / "build" / f"{build}.yaml").write_text(yaml.safe_dump(spec))
    card["builds"] = {build: f"build/{build}.yaml" for build in builds}
    card.update(fields)
    vdsp = json.loads((CARD_TEMPLATE_MODEL.parent / "vdsp_params.json").read_text())
    for key, value in (("Height", SHAPE[2]), ("Width", SHAPE[3])):
        vdsp["OpConfig"][f"Iimage{key}"] = vdsp["OpConfig"][f"Oimage{key}"] = value
        vdsp["OpConfig"][f"Iimage{key}Pitch"] = value
    (folder / "vdsp_params.json").write_text(json.dumps(vdsp))
    (folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return folder / "card.yaml"


@contextlib.contextmanager
def registered(*models):
    """The models in the process registry (as a plugin would register them) for the duration."""
    from modelzoo.plugins import registry

    table = registry().models
    for model in models:
        model.plugin = "tests"
        table[model.name] = model
    try:
        yield models
    finally:
        for model in models:
            table.pop(model.name, None)


def images(folder, count=3, shape=(32, 48), seed=0):
    """`count` seeded random RGB PNGs in `folder` (dark: values below 100)."""
    from modelzoo.imaging import write_rgb

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        write_rgb(folder / f"im{index}.png", rng.integers(0, 100, (*shape, 3), dtype=np.uint8))
    return folder


def remove_weights(name):
    shutil.rmtree(paths.cache_dir() / "weights" / name, ignore_errors=True)
