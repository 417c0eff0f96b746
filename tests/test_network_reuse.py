"""A model that reuses another's network by reference (card `network: OTHER`): its own weights, OTHER's network,
hooks and network facts (input, outputs, complexity, ...), no code of its own."""
import numpy as np
import pytest
import torch
import yaml

from toys import Plain, ToyModel, registered, save_weights, weights_for, write_card

import modelzoo
from modelzoo import Model, validation
from modelzoo import compile as compiler
from modelzoo.plugins import Registry


class Base(ToyModel):
    network_class = Plain

    def deploy(self, network):
        network.deployed = True
        return network


def sibling_card(folder, name, network="toy-base", **fields):
    """A card with only what is the sibling's own: weights, licence, builds; the network facts left out."""
    path = write_card(folder, name, network=network, **fields)
    card = yaml.safe_load(path.read_text())
    for field in ("input", "outputs", "operators", "complexity", "postprocess"):
        card.pop(field)
    path.write_text(yaml.safe_dump(card, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reuse")
    base = Base(write_card(folder / "base", "toy-base", weights={"official": save_weights(
        "toy-base", "base.pth", weights_for(Plain))}))
    (base.folder / "net.py").write_text("# the base's network code: part of the sibling's artifact key too\n")
    other = weights_for(Plain)
    other["conv.weight"] = other["conv.weight"] * 0.5
    sibling = Model(sibling_card(folder / "sibling", "toy-sibling", weights={"retrained": save_weights(
        "toy-sibling", "sibling.pth", other)}))
    with registered(base, sibling):
        from modelzoo.plugins import registry

        registry()._bind_networks()
        yield base, sibling, other


def test_the_sibling_takes_the_network_hooks_and_facts(pair):
    base, sibling, other = pair
    assert sibling.base is base
    for field in ("input", "outputs", "operators", "complexity", "postprocess"):
        assert sibling.card[field] == base.card[field]
    assert sibling.card["weights"] != base.card["weights"]
    network = sibling.with_weights("retrained", other)
    assert isinstance(network, Plain) and torch.equal(network.conv.weight, other["conv.weight"])
    assert sibling.deploy(network).deployed
    assert validation.validate_file(sibling.card_path)[0] == []


def test_it_runs_with_its_own_weights_and_its_own_artifacts(pair):
    base, sibling, other = pair
    image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    mine = modelzoo.load("toy-sibling", build="fp32")
    theirs = modelzoo.load("toy-base", build="fp32")
    assert mine.job.workdir != theirs.job.workdir
    network = sibling.with_weights("retrained", other)
    x = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)[None] / 255)
    with torch.no_grad():
        expected = np.floor(network(x)[0][0].numpy().transpose(1, 2, 0) * 255 + 0.5)
    assert np.abs(mine(image).astype(int) - expected).max() <= 1
    assert np.abs(mine(image).astype(int) - theirs(image).astype(int)).max() > 10
    assert compiler.code_hash(sibling) != compiler.code_hash(Model(sibling.card_path))  # the base's code counts


def test_an_unknown_or_chained_network_is_a_problem_not_a_crash(pair, tmp_path):
    base, sibling, _ = pair
    registry = Registry()
    lost = Model(sibling_card(tmp_path / "lost", "toy-lost", network="toy-nowhere"))
    chained = Model(sibling_card(tmp_path / "chain", "toy-chain", network="toy-sibling"))
    fresh_sibling = Model(sibling.card_path)
    registry.models.update({"toy-base": base, "toy-sibling": fresh_sibling, "toy-lost": lost, "toy-chain": chained})
    registry._bind_networks()
    assert "toy-lost" not in registry.models and "toy-chain" not in registry.models
    assert any("network: 'toy-nowhere' is not a registered model" in p for p in registry.problems)
    assert any("network: 'toy-sibling' reuses another model's network itself; name that one (toy-base)" in p
               for p in registry.problems)
    problems, _ = validation.validate_file(lost.card_path)
    assert problems == [f"{lost.card_path}: network: 'toy-nowhere' is not a registered model (see `modelzoo list`)"]
