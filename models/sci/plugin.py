"""SCI as a modelzoo plugin: three weight variants of one card, the enhance net, and Retinex post-processing.

The official weight files hold the test-time enhance net (`enhance.*`) and the training-only calibration net
(`calibrate.*`); load_weights keeps the first and loads it strictly. The network's forward returns the official
test outputs (illu, r); the deploy patch keeps only r (the card's one output, `enhanced`), which is all the
post-processing needs (see net.DeployOutputs for why the illumination is not exported as well).
"""
from pathlib import Path

from modelzoo import Model, ZooError, hookimpl

PREFIX = "enhance."


class SCI(Model):
    def network(self, variant):
        from modelzoo_models.sci.net import SCINet

        return SCINet()

    def load_weights(self, network, state_dict):
        """Strict load of the `enhance.*` tensors; the calibration net's `calibrate.*` keys are training-only."""
        enhance = {key: value for key, value in state_dict.items() if key.startswith(PREFIX)}
        if not enhance:
            raise ZooError(f"{self.name}: no '{PREFIX}*' tensors in the state dict (keys start with: "
                           f"{', '.join(sorted({k.split('.')[0] for k in state_dict})[:5]) or 'nothing'})")
        network.load_state_dict(enhance, strict=True)

    def deploy(self, network):
        from modelzoo_models.sci.net import DeployOutputs

        return DeployOutputs(network)


@hookimpl
def register_models(register):
    register(SCI(Path(__file__).parent / "card.yaml"))
