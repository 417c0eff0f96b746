"""ZERO-IG as a modelzoo plugin: three weight variants (LOL, LSRW-Huawei, LSRW-Nikon) of one network.

Each official checkpoint is the complete test-time state dict of Finetunemodel (44 tensors: enhance.*,
denoise_1.*, denoise_2.*), loaded strictly by the default hook. The network's forward returns test.py's two
images (enhanced, denoised); the deploy patch exports the denoised one, the method's result.
"""
from pathlib import Path

from modelzoo import Model, hookimpl


class ZeroIG(Model):
    def network(self, variant):
        from modelzoo_models.zero_ig.net import ZeroIGNet

        return ZeroIGNet()

    def deploy(self, network):
        from modelzoo_models.zero_ig.net import DeployOutputs

        return DeployOutputs(network)


@hookimpl
def register_models(register):
    register(ZeroIG(Path(__file__).parent / "card.yaml"))
