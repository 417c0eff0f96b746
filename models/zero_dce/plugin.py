"""Zero-DCE as a modelzoo plugin: one weight variant, DCE-Net, and the engine's default post-processing (the image is the one output).

The official Epoch99.pth is a plain state dict whose keys are the network's own (e_conv1 ... e_conv7), so the
engine's default strict load applies. The network returns the official three tensors; the deploy patch keeps
the enhanced image only (the card's one output). The curves map [0, 1] into [0, 1], and the engine clips the
post-processed image to [0, 1] as the official save_image does, so nothing else is needed here.
"""
from pathlib import Path

from modelzoo import Model, hookimpl


class ZeroDCE(Model):
    def network(self, variant):
        from modelzoo_models.zero_dce.net import ZeroDCE as Net

        return Net()

    def deploy(self, network):
        from modelzoo_models.zero_dce.net import DeployOutputs

        return DeployOutputs(network)


@hookimpl
def register_models(register):
    register(ZeroDCE(Path(__file__).parent / "card.yaml"))
