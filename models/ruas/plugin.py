"""RUAS as a modelzoo plugin: three weight variants of one card, each deploying the stage its official test saves.

The official test.py (KarelZhang/RUAS) saves the denoised image for the LOL weights and the illumination-only
enhanced image for the MIT-5K (`upe`) and DarkFace (`dark`) weights; STAGE records that, network(variant)
builds the net with it, and the deploy patch exports only that image. Each checkpoint carries its own
fine-tuned denoiser (`denoise_net.*`), so one weight file per variant is complete: the upstream
`model/denoise.pt` is the training initialisation, overwritten at test time, and is not needed here.
"""
from pathlib import Path

from modelzoo import Model, hookimpl

# The image the official test saves for each weight set: u_list[-1] (denoised) for lol, u_list[-2] otherwise.
STAGE = {"lol": "denoised", "upe": "enhanced", "dark": "enhanced"}


class RUAS(Model):
    def network(self, variant):
        from modelzoo_models.ruas.net import RUASNet

        return RUASNet(output=STAGE[variant or self.default_variant])

    def deploy(self, network):
        from modelzoo_models.ruas.net import DeployOutputs

        return DeployOutputs(network)


@hookimpl
def register_models(register):
    register(RUAS(Path(__file__).parent / "card.yaml"))
