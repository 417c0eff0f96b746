"""FLOL+ as a modelzoo plugin: two weight variants of one card (LOL-v2 real, UHD-LL), one network, the enhanced
image as the output.

The official checkpoints hold the state dict under 'params' (the card's key: params). The deploy patch
clamps the output to [0, 1] as the official inference.py does before saving, and exports the FFTs as matrix
products (net.DeployOutputs, spectral.MatrixDFT)."""
from pathlib import Path

from modelzoo import Model, hookimpl


class FLOL(Model):
    def network(self, variant):
        from modelzoo_models.flol.net import FLOL as FLOLNet

        return FLOLNet(nf=16)

    def deploy(self, network):
        from modelzoo_models.flol.net import DeployOutputs

        return DeployOutputs(network)


@hookimpl
def register_models(register):
    register(FLOL(Path(__file__).parent / "card.yaml"))
