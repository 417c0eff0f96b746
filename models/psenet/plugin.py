"""PSENet as a modelzoo plugin: two weight variants (SICE, Afifi) of one network.

Each official file is a PyTorch Lightning training checkpoint; the card's `key: state_dict` takes its state dict
out (pickle_globals: argparse.Namespace; Lightning's ModelCheckpoint a pickle_placeholder). Its 62 tensors (15,251
values) are the network's under Lightning's `model.` prefix: load_weights removes the prefix and loads strictly, as
the official demo.py's read_pytorch_lightning_state_dict does. The network returns (enhanced, exponent map); the
deploy patch exports the enhanced image only, already in [0, 1].
"""
from pathlib import Path

from modelzoo import Model, hookimpl

PREFIX = "model."


class PSENet(Model):
    def network(self, variant):
        from modelzoo_models.psenet.net import PSENet as Net

        return Net()

    def load_weights(self, network, state_dict):
        foreign = sorted(key for key in state_dict if not key.startswith(PREFIX))
        if foreign:
            raise RuntimeError(f"PSENet checkpoint: keys outside '{PREFIX}': {', '.join(foreign[:5])}")
        network.load_state_dict({key[len(PREFIX):]: value for key, value in state_dict.items()}, strict=True)
        return network

    def deploy(self, network):
        from modelzoo_models.psenet.net import DeployOutputs

        return DeployOutputs(network)


@hookimpl
def register_models(register):
    register(PSENet(Path(__file__).parent / "card.yaml"))
