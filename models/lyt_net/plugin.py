"""LYT-Net as a modelzoo plugin: three Keras .h5 weight sets of one card, one torch network written from the
official TensorFlow architecture, the enhanced image in [0, 1] as the output.

The engine reads each .h5 with h5py into {dataset path: array}; load_weights maps the Keras names and layouts to
the torch parameters (net.torch_state). The network works in [-1, 1] as the official loader; the deploy patch
scales [0, 1] in and out (net.DeployOutputs)."""
from pathlib import Path

from modelzoo import Model, hookimpl


class LYTNet(Model):
    def network(self, variant):
        from modelzoo_models.lyt_net.net import LYT

        return LYT(filters=32)

    def load_weights(self, network, state_dict):
        from modelzoo_models.lyt_net.net import torch_state

        network.load_state_dict(torch_state(state_dict), strict=True)

    def deploy(self, network):
        from modelzoo_models.lyt_net.net import DeployOutputs

        return DeployOutputs(network)


@hookimpl
def register_models(register):
    register(LYTNet(Path(__file__).parent / "card.yaml"))
