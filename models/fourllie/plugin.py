"""FourLLIE as a modelzoo plugin: four weight variants of one card (LOL-v2 real, LOL-v2 synthetic, LSRW-Huawei,
LSRW-Nikon), one network, the enhanced image as the output.

Each official checkpoint is a plain state dict of FourLLIE(nf=16) (226 tensors), loaded strictly by the default
hook. The network's forward returns test.py's two images (the output and the first stage's x_center); the deploy
patch exports the output clamped to [0, 1], as test.py's tensor2img clamps it, with the FFTs as DFT matrix
products (net.DeployOutputs, modelzoo_models.flol.spectral.MatrixDFT)."""
from pathlib import Path

from modelzoo import Model, hookimpl


class FourLLIE(Model):
    def network(self, variant):
        from modelzoo_models.fourllie.net import FourLLIE as FourLLIENet

        return FourLLIENet(nf=16)

    def deploy(self, network):
        from modelzoo_models.fourllie.net import DeployOutputs

        return DeployOutputs(network)


@hookimpl
def register_models(register):
    register(FourLLIE(Path(__file__).parent / "card.yaml"))
