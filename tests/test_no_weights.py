"""A model without weights or compiled builds (a variant with only a description; torch builds only): it runs,
deterministically, the automatic choice and bench take its only build, and asking for a build it cannot have
is one line that says why (card builds_note)."""
import numpy as np
import pytest
import torch
from torch import nn

from toys import TORCH, ToyModel, registered, write_card

import modelzoo
from modelzoo import validation, weights
from modelzoo import compile as compiler
from modelzoo.choose import choose
from modelzoo.errors import ZooError

NOTE = "no weights: it fits each image at test time, so there is nothing to compile or quantize"


class Fit(nn.Module):
    """Fits a per-image gain by gradient descent (seeded start) so the mean brightness reaches 0.5: the test-time
    optimisation such models do, inside forward, under the engine's inference mode."""

    def __init__(self):
        super().__init__()
        self.mix = nn.Conv2d(3, 3, 1, bias=False)  # fixed (identity), not learnt: there are no weights
        with torch.no_grad():
            self.mix.weight.copy_(torch.eye(3)[:, :, None, None])

    def forward(self, x):
        with torch.inference_mode(False), torch.enable_grad():
            image = self.mix(x.clone()).detach()  # clone: a normal tensor (the input is an inference tensor)
            generator = torch.Generator().manual_seed(0)
            gain = (1 + 0.1 * torch.rand(1, generator=generator)).requires_grad_()
            optimiser = torch.optim.Adam([gain], lr=0.1)
            for _ in range(20):
                optimiser.zero_grad()
                loss = ((image * gain).mean() - 0.5) ** 2
                loss.backward()
                optimiser.step()
            return (torch.clamp(image * gain.detach(), 0, 1),)


class FitModel(ToyModel):
    network_class = Fit


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy-fit")
    card = write_card(folder, "toy-fit", builds={"fp32": TORCH}, builds_note=NOTE,
                      weights={"per-image": {"description": "fits each image; nothing to download"}})
    model = FitModel(card)
    with registered(model):
        yield model


def test_it_validates_and_has_no_weights(fit):
    assert validation.validate_file(fit.card_path)[0] == []
    assert weights.resolve(fit) is None and weights.sha256s(fit) is None
    with pytest.raises(ZooError, match="^--weights: toy-fit variant 'per-image' has no weights$"):
        weights.resolve(fit, explicit="anything.pth")


def test_it_runs_deterministically(fit):
    image = np.random.default_rng(0).integers(0, 60, (24, 30, 3), dtype=np.uint8)
    enhance = modelzoo.load("toy-fit")
    first, second = enhance(image), enhance(image)
    assert np.array_equal(first, second)
    assert first.mean() > 2 * image.mean()


def test_a_build_it_cannot_have_is_one_line(fit, cli):
    result = cli("compile", "toy-fit", "--build", "int8")
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {fit.card_path}: builds: no build 'int8' (have: fp32); {NOTE}"


def test_the_automatic_choice_and_bench_take_the_only_build(fit, monkeypatch):
    from modelzoo import bench

    monkeypatch.setenv("MODELZOO_BUILD", "auto")
    choice = choose(fit)
    assert (choice.build, choice.backend) == ("fp32", "torch") and "the card's only build" in choice.reason
    assert modelzoo.load("toy-fit").job.backend.name == "torch"
    document = bench.run(fit, warmup=0, repeat=1, baseline=True, isolate=False, log=lambda m: None)
    assert [row["build"] for row in document["rows"]] == ["fp32"] and document["baseline"]["build"] == "baseline"
    assert compiler.cache_key(compiler.prepare(fit, "fp32"))[1]["weights_sha256"] is None
