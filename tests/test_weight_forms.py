"""Weights in other forms: several files per variant (roles), HDF5 files, dict-wrapped checkpoints (key), and
classes the restricted unpickler may construct (pickle_globals); every file sha256-checked, found, imported."""
import argparse
import hashlib
import sys
import types

import h5py
import numpy as np
import pytest
import torch

from toys import Plain, ToyModel, registered, weights_for, write_card

import modelzoo
from modelzoo import compile as compiler
from modelzoo import paths, validation, weights
from modelzoo.errors import ZooError


class TwoFiles(ToyModel):
    """The convolution's weight from a wrapped torch checkpoint (role conv), its bias from an HDF5 file (role bias)."""

    network_class = Plain

    def load_weights(self, network, state):
        network.load_state_dict({"conv.weight": state["conv"]["conv.weight"],
                                 "conv.bias": torch.from_numpy(state["bias"]["dense/conv/bias:0"])})


def entry(path, **extra):
    data = path.read_bytes()
    return {"file": path.name, "url": f"https://example.invalid/{path.name}", "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data), **extra}


@pytest.fixture
def source(tmp_path):
    """The two files in a folder of their own (as a user would download them)."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    state = weights_for(Plain)
    state["conv.bias"] = torch.tensor([0.1, -0.1, 0.05])
    torch.save({"epoch": 3, "opts": argparse.Namespace(lr=1e-4), "state_dict": {"conv.weight": state["conv.weight"]}},
               folder / "conv.pth")
    with h5py.File(folder / "bias.h5", "w") as handle:
        handle.create_dataset("dense/conv/bias:0", data=state["conv.bias"].numpy())
    return folder, state


def two_file_model(tmp_path, source, name="toy-files", **overrides):
    folder, _ = source
    files = {"conv": entry(folder / "conv.pth", key="state_dict", pickle_globals=["argparse.Namespace"]),
             "bias": entry(folder / "bias.h5", format="hdf5")}
    for role, changes in overrides.items():
        files[role] = {**files[role], **changes}
        files[role] = {k: v for k, v in files[role].items() if v is not None}
    card = write_card(tmp_path / name, name, weights={"official": {"files": files, "description": "two files"}})
    return TwoFiles(card)


def test_a_variant_of_several_files_in_other_forms_loads_and_runs(tmp_path, source, monkeypatch):
    monkeypatch.setenv("MODELZOO_WEIGHTS", str(source[0]))
    model = two_file_model(tmp_path, source)
    assert validation.validate_file(model.card_path)[0] == []
    resolved = weights.resolve(model)
    assert set(resolved) == {"conv", "bias"}
    network = model.with_weights("official", weights.load(model, None, resolved))
    assert torch.equal(network.conv.bias, source[1]["conv.bias"])
    with registered(model):
        image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
        onnx = modelzoo.load("toy-files", build="fp32")(image)
        x = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)[None] / 255)
        expected = (network(x)[0][0].detach().numpy().transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)
        assert np.abs(onnx.astype(int) - expected).max() <= 1


def test_the_cache_key_covers_every_file(tmp_path, source, monkeypatch):
    monkeypatch.setenv("MODELZOO_WEIGHTS", str(source[0]))
    model = two_file_model(tmp_path, source)
    job = compiler.prepare(model, "fp32")
    key, inputs = compiler.cache_key(job)
    assert inputs["weights_sha256"] == {"conv": model.card["weights"]["official"]["files"]["conv"]["sha256"],
                                        "bias": model.card["weights"]["official"]["files"]["bias"]["sha256"]}
    model.card["weights"]["official"]["files"]["bias"]["sha256"] = "0" * 64
    assert compiler.cache_key(job)[0] != key


@pytest.mark.parametrize("change,message", [
    ({"conv": {"pickle_globals": None}}, "conv.pth: refused to load"),
    ({"conv": {"key": "model"}}, "conv.pth: no 'model' in the checkpoint (the card's key; it holds: epoch, opts, "
                                 "state_dict)"),
    ({"conv": {"pickle_globals": ["argparse.NoSuchThing"]}}, "pickle_globals: cannot import 'argparse.NoSuchThing'"),
    ({"bias": {"sha256": "1" * 64}}, "bias.h5: sha256 is"),
    ({"bias": {"format": None}}, "bias.h5: an HDF5 file, not a torch checkpoint (the card's file entry needs format: hdf5)"),
])
def test_misuse_is_one_line(tmp_path, source, monkeypatch, change, message):
    monkeypatch.setenv("MODELZOO_WEIGHTS", str(source[0]))
    model = two_file_model(tmp_path, source, **change)
    with pytest.raises(ZooError) as error:
        weights.load(model, None, weights.resolve(model))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_explicit_weights_import_and_validation(tmp_path, source, cli):
    model = two_file_model(tmp_path, source)
    with pytest.raises(ZooError, match="has several files \\(conv.pth, bias.h5\\); pass the folder holding them"):
        weights.resolve(model, explicit=source[0] / "conv.pth")
    assert set(weights.resolve(model, explicit=source[0])) == {"conv", "bias"}
    with registered(model):
        result = cli("weights", "import", source[0], "--model", "toy-files")
    assert result.exit_code == 0, result.output
    assert "toy-files/official/conv:" in result.output and "toy-files/official/bias:" in result.output
    assert (paths.cache_dir() / "weights" / "toy-files" / "bias.h5").is_file()
    card = write_card(tmp_path / "bad", "toy-bad", weights={"official": {"files": {
        "conv": {**entry(source[0] / "conv.pth"), "format": "keras"}}}})
    problems, _ = validation.validate_file(card)
    assert problems and "weights.official" in problems[0]


def test_a_class_only_a_training_framework_has_is_read_as_a_placeholder(tmp_path, monkeypatch):
    """A checkpoint keyed by a callback class of a framework that is not installed (as PyTorch Lightning's
    ModelCheckpoint in PSENet's files) loads with pickle_placeholders naming it, and is refused without."""
    framework = types.ModuleType("toytrainer.callbacks")
    framework.Checkpointing = type("Checkpointing", (), {"__module__": "toytrainer.callbacks"})
    monkeypatch.setitem(sys.modules, "toytrainer", types.ModuleType("toytrainer"))
    monkeypatch.setitem(sys.modules, "toytrainer.callbacks", framework)
    state = weights_for(Plain)
    torch.save({"callbacks": {framework.Checkpointing: {"best": 0.1}}, "state_dict": state}, tmp_path / "ckpt.pth")
    for name in ("toytrainer.callbacks", "toytrainer"):  # as on a machine without the framework
        monkeypatch.delitem(sys.modules, name)
    file = entry(tmp_path / "ckpt.pth", key="state_dict")
    with pytest.raises(ZooError, match="ckpt.pth: refused to load"):
        weights.read(tmp_path / "ckpt.pth", file)
    loaded = weights.read(tmp_path / "ckpt.pth", {**file, "pickle_placeholders": ["toytrainer.callbacks.Checkpointing"]})
    assert sorted(loaded) == sorted(state) and torch.equal(loaded["conv.weight"], state["conv.weight"])
    # the card schema takes the field (loading a card validates it)
    ToyModel(write_card(tmp_path / "model", "toy-placeholder",
                        weights={"official": {**file, "pickle_placeholders": ["toytrainer.callbacks.Checkpointing"]}}))
