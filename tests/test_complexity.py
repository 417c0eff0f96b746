"""Parameters and MACs are counted from the layers; every registered model's card must state the counted values."""
import pytest
from torch import nn

from modelzoo.complexity import count, count_model, summary
from modelzoo.plugins import registry


def _models():
    return sorted(registry().models)


@pytest.mark.parametrize("name", _models())
def test_card_complexity_equals_the_count(name):
    model = registry().model(name)
    card = model.card["complexity"]
    counted = count_model(model, shape=card["shape"])
    assert counted["params"] == card["params"], f"{name}: card params {card['params']}, counted {counted['params']}"
    assert counted["macs"] == card["macs"], f"{name}: card macs {card['macs']}, counted {counted['macs']}"


def test_pairlie_figures():
    counted = count_model(registry().model("pairlie"), shape=[1, 3, 400, 600])
    assert counted["params"] == 341_767
    assert counted["macs"] == 81_838_080_000
    assert summary(counted) == "341,767 params, 81.84 G MACs (163.7 GFLOPs) at 1x3x400x600"


def test_count_rules():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=4),
                        nn.Flatten(), nn.Linear(8 * 4 * 5, 10))
    counted = count(net, [2, 3, 4, 5])
    conv1 = 2 * 8 * 4 * 5 * 3 * 9
    conv2 = 2 * 8 * 4 * 5 * 2 * 9
    linear = 2 * 10 * 160
    assert counted["macs"] == conv1 + conv2 + linear
    assert counted["params"] == sum(p.numel() for p in net.parameters())
    assert counted["flops"] == 2 * counted["macs"]


def test_functional_convolutions_and_matrix_products_count_too():
    """Arithmetic done in the network's own code (a convolution with computed weights, an attention product)
    costs the same as a layer's: IAT spends 0.76 G of its 6.0 G MACs there."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Functional(nn.Module):
        def forward(self, x):  # 1x3x8x8
            mixed = F.conv2d(x, torch.ones(5, 3, 1, 1))  # 64 x 5 x 3
            tokens = mixed.flatten(2)  # 1x5x64
            return tokens @ tokens.transpose(1, 2)  # 1x5x5 over 64

    counted = count(Functional(), [1, 3, 8, 8])
    assert counted["macs"] == 64 * 5 * 3 + 25 * 64 and counted["layers"] == 2


def test_products_with_a_folded_bias_count_as_products():
    """torch.addmm (what nn.Linear runs, called directly by a network with preallocated outputs) and
    torch.baddbmm cost their matrix product."""
    import torch
    from torch import nn

    class Folded(nn.Module):
        def forward(self, x):  # 1x3x4x5
            rows = x.reshape(12, 5)
            out = torch.addmm(torch.zeros(7), rows, torch.ones(5, 7), out=torch.empty(12, 7))
            return torch.baddbmm(torch.zeros(1, 12, 2), out[None], torch.ones(1, 7, 2))

    counted = count(Folded(), [1, 3, 4, 5])
    assert counted["macs"] == 12 * 7 * 5 + 12 * 2 * 7 and counted["layers"] == 2
