"""IAT as a modelzoo plugin: three weight variants of one card, one network, the enhanced image as the output.

The official forward returns (mul, add, img_high); img_high is the enhanced image, already in (0, 1]
(see net.DeployOutputs), so the deploy patch exports only it and the engine's default post-processing applies. The
variants differ in their weights and, for LOL-v2, in the input range the official evaluation feeds the
network ([-1, 1]); that scaling is built into the network, so every variant takes the same [0, 1] input.
"""
from pathlib import Path

from modelzoo import Model, hookimpl

# Variants whose official evaluation normalises the input to [-1, 1] (evaluation_lol_v2.py, pre_norm=True).
SIGNED_INPUT = {"lol-v2"}


class IAT(Model):
    def network(self, variant):
        from modelzoo_models.iat.net import IAT as IATNet

        return IATNet(signed_input=variant in SIGNED_INPUT)

    def deploy(self, network):
        from modelzoo_models.iat.net import DeployOutputs

        return DeployOutputs(network)


@hookimpl
def register_models(register):
    register(IAT(Path(__file__).parent / "card.yaml"))
