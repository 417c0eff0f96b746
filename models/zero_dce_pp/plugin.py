"""Zero-DCE++ as a modelzoo plugin: one weight variant, DCE-Net++ at the official scale 12, and the
engine's default post-processing (the image is the one output).

The official Epoch99.pth is a plain state dict whose keys are the network's own (e_conv*.depth_conv /
point_conv), so the engine's default strict load applies. The network needs H and W divisible by 12; the
card's input.multiple_of: 12 has the engine reflect-pad the input and crop the output back, so the network
never pads or crops itself. The deploy patch keeps the enhanced image only (the card's one output).
"""
from pathlib import Path

from modelzoo import Model, hookimpl


class ZeroDCEPP(Model):
    def network(self, variant):
        from modelzoo_models.zero_dce_pp.net import ZeroDCEPP as Net

        return Net(scale_factor=12)

    def deploy(self, network):
        from modelzoo_models.zero_dce_pp.net import DeployOutputs

        return DeployOutputs(network)


@hookimpl
def register_models(register):
    register(ZeroDCEPP(Path(__file__).parent / "card.yaml"))
