"""CPGA-Net as a modelzoo plugin: one card, two networks (CPGA-Net+ and CPGA-Net++), three weight sets each.

The official checkpoints are dicts {epoch, state_dict, optimizer}; the card's `key: state_dict` has the engine
unwrap them, and the state dicts' keys are the network's own: a strict load (CPGA-Net+'s LOL-v1 checkpoint's 41,422
subnormal weights are read as zero by the engine: no output changes, the CPU forward is 18x faster). Which network
a variant needs is this plugin's table below (the card's variants, each described there). The network returns
(enhanced, gamma); the deploy patch exports the enhanced image only, already in [1e-4, 1].
"""
from pathlib import Path

from modelzoo import Model, hookimpl

# Variants whose weights are CPGA-Net++'s (ConvNeXt blocks, IAAF with masking); the others are CPGA-Net+.
PLUSPLUS = {"pp-lol-v1", "pp-lol-v2-real", "pp-lol-v2-syn"}


class CPGANet(Model):
    def network(self, variant):
        from modelzoo_models.cpga_net.net import CPGANet as Net

        return Net(convnext=variant in PLUSPLUS)

    def deploy(self, network):
        from modelzoo_models.cpga_net.net import DeployOutputs

        return DeployOutputs(network)


@hookimpl
def register_models(register):
    register(CPGANet(Path(__file__).parent / "card.yaml"))
