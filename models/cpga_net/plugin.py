"""CPGA-Net as a modelzoo plugin: one card, two networks (CPGA-Net+ and CPGA-Net++), three weight sets each.

The official checkpoints are dicts {epoch, state_dict, optimizer}; the card's `key: state_dict` has the engine
unwrap them, and the state dicts' keys are the network's own: a strict load, after setting the subnormal weights
of CPGA-Net+'s LOL-v1 checkpoint to zero (they change no output; CPU arithmetic on them is 18x slower). Which network
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

    def load_weights(self, network, state_dict):
        """Strict load, with subnormal weights set to zero (net.flush_subnormals: same outputs, 18x faster on CPU)."""
        from modelzoo_models.cpga_net.net import flush_subnormals

        network.load_state_dict(flush_subnormals(state_dict), strict=True)

    def deploy(self, network):
        from modelzoo_models.cpga_net.net import DeployOutputs

        return DeployOutputs(network)


@hookimpl
def register_models(register):
    register(CPGANet(Path(__file__).parent / "card.yaml"))
