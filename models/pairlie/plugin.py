"""PairLIE as a modelzoo plugin: the card, the network, the export patch and Retinex post-processing."""
from pathlib import Path

import numpy as np

from modelzoo import Model, hookimpl


class PairLIE(Model):
    def network(self, variant):
        from modelzoo_models.pairlie.net import PairLIENet

        return PairLIENet()

    def deploy(self, network):
        from modelzoo_models.pairlie.net import DeployOutputs

        return DeployOutputs(network)

    def postprocess(self, outputs, gamma=0.2, **_):
        """Enhanced image = L ** gamma * R (official code: gamma 0.2 by default, 0.14 for its LOL results)."""
        illumination, reflectance = outputs[0][0], outputs[1][0]
        enhanced = np.power(np.maximum(illumination, 0.0), gamma) * reflectance
        return enhanced.transpose(1, 2, 0)


@hookimpl
def register_models(register):
    register(PairLIE(Path(__file__).parent / "card.yaml"))
