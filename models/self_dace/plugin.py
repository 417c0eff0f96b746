"""Self-DACE as a modelzoo plugin: one card, two Stage-I light nets, one weight file each.

`lit` (the default) is Self-DACE++'s Stage-I as the official test_1stage.py runs it: Epoch70.pth is a training
checkpoint {net_decay, net_intact, optimizer} and the test loads net_decay (the card's `key`) into
light_net(mode='test', layers=12). `pre-train-1` is the seven-curve net Stage II starts from, a plain state
dict. Both load strictly (the engine's default). The deploy patch exports the enhanced image only, and the
engine's default post-processing takes it as the image.
"""
from pathlib import Path

from modelzoo import Model, hookimpl

# Variants whose weights are the seven-curve net's; the others are Self-DACE++ Stage-I (LitNet).
SEVEN_CURVE = {"pre-train-1"}


class SelfDACE(Model):
    def network(self, variant):
        from modelzoo_models.self_dace.net import LitNet, SevenCurveNet

        return SevenCurveNet() if variant in SEVEN_CURVE else LitNet()

    def deploy(self, network):
        from modelzoo_models.self_dace.net import DeployOutputs

        return DeployOutputs(network)


@hookimpl
def register_models(register):
    register(SelfDACE(Path(__file__).parent / "card.yaml"))
