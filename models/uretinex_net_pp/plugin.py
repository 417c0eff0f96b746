"""URetinex-Net++ as a modelzoo plugin: URetinex-Net's plugin (runtime ratio, gt-ratio protocol, checkpoints with a
pickled argparse Namespace) with the ++ network, its three test-time checkpoints and its ground-truth ratio.

The unfolding's hyper-parameters (3 rounds, gamma 0.5, lamda 0.5, offsets 0.05) are the Namespace's values in
unfolding_model.pth; the fusion checkpoint's (fusion_layers [1, 2, 3], net_L False, min_ratio 1.0) fix the fusion of
all three rounds and the ground-truth ratio without a decomposition of the ground truth.
"""
from pathlib import Path

from modelzoo import hookimpl
from modelzoo_models.uretinex_net.plugin import URetinexNet


class URetinexNetPP(URetinexNet):
    def network(self, variant):
        from modelzoo_models.uretinex_net_pp.net import URetinexNetPP as Net

        return Net(gamma=0.5, lamda=0.5, offset=0.05, rounds=3)

    def load_weights(self, network, states):
        """{role: checkpoint state_dict}: decom <- decom_low_light model_R, restore and illuminate <- unfolding_model
        model_R / model_L, adjust and fusion <- fusion model_A / model_compositor (the official test.py)."""
        network.unfolding.decom.load_state_dict(states["decom"]["model_R"])
        network.unfolding.restore.load_state_dict(states["unfolding"]["model_R"])
        network.unfolding.illuminate.load_state_dict(states["unfolding"]["model_L"])
        network.adjust.load_state_dict(states["fusion"]["model_A"])
        network.fusion.load_state_dict(states["fusion"]["model_compositor"])

    def ground_truth_ratio(self, states, low, reference):
        """The official test.py: max(mean(max_c(ground truth) / (L + 1e-4)), 1)."""
        from modelzoo_models.uretinex_net_pp.net import gt_ratio

        return gt_ratio(self.loaded(states), low, reference)


@hookimpl
def register_models(register):
    register(URetinexNetPP(Path(__file__).parent / "card.yaml"))
