"""URetinex-Net as a modelzoo plugin: three official checkpoints make the test-time network, the illumination ratio
is a runtime input of it (card runtime_inputs), and the ground-truth-derived ratio of the official evaluate.py is
the reference-guided `gt-ratio` protocol (reference_inputs).

Each official checkpoint holds {'state_dict': {sub-model: state dict}, ...} with an argparse Namespace of training
options pickled beside it (card: key state_dict, pickle_globals argparse.Namespace). The unfolding's
hyper-parameters (3 rounds, gamma 0.1, lamda 0.5, offsets 0.05) are that Namespace's values in unfolding.pth.
"""
import hashlib
from pathlib import Path

from modelzoo import Model, hookimpl, weights


class URetinexNet(Model):
    def network(self, variant):
        from modelzoo_models.uretinex_net.net import URetinexNet as Net

        return Net(gamma=0.1, lamda=0.5, offset=0.05, rounds=3)

    def deploy(self, network):
        from modelzoo_models.uretinex_net.net import DeployOutputs

        return DeployOutputs(network)

    def load_weights(self, network, states):
        """{role: checkpoint state_dict}, loaded as the official test.py does: decom <- init_low model_R, restore
        and illuminate <- unfolding model_R / model_L, adjust <- L_adjust model_A. decom_high (init_high) is not
        part of the network: only the gt-ratio protocol uses it (see ground_truth_ratio)."""
        network.unfolding.decom.load_state_dict(states["decom"]["model_R"])
        network.unfolding.restore.load_state_dict(states["unfolding"]["model_R"])
        network.unfolding.illuminate.load_state_dict(states["unfolding"]["model_L"])
        network.adjust.load_state_dict(states["adjust"]["model_A"])

    def reference_inputs(self, low, reference):
        """The ratio the official evaluation derives from the ground truth, computed in torch with the official
        weights whatever build is evaluated; cached per image pair, as every build of an evaluation asks again."""
        key = hashlib.sha1(low.tobytes() + reference.tobytes()).hexdigest()
        cache = self.__dict__.setdefault("_ratios", {})
        if key not in cache:
            from modelzoo_models.uretinex_net.net import tensor

            cache[key] = self.ground_truth_ratio(self.states(), tensor(low), tensor(reference))
        return {"ratio": cache[key]}

    def ground_truth_ratio(self, states, low, reference):
        """The official evaluate.py: 1 / (mean(L_low / (L_high + 1e-4)) + 1e-4), L_high from init_high's
        decomposition of the ground truth."""
        from modelzoo_models.uretinex_net.net import Decom, gt_ratio

        decom_high = Decom()
        decom_high.load_state_dict(states["decom_high"]["model_R"])
        return gt_ratio(self.loaded(states), decom_high.eval(), low, reference)

    def states(self):
        """The default variant's checkpoints (verified), read once."""
        if getattr(self, "_states", None) is None:
            self._states = weights.load(self, None, weights.resolve(self))
        return self._states

    def loaded(self, states):
        network = self.network(self.default_variant)
        self.load_weights(network, states)
        return network.eval()


@hookimpl
def register_models(register):
    register(URetinexNet(Path(__file__).parent / "card.yaml"))
