"""The base class every model plugin registers: a validated card plus the code only this model knows."""
from pathlib import Path

import numpy as np

from modelzoo import documents
from modelzoo.errors import ZooError


class Model:
    """Subclass and override `network` and `postprocess`; the rest has working defaults.

    Hooks a model supplies:
      network(variant)        the torch nn.Module, weights not loaded
      load_weights(net, sd)   put a state dict into it (default: strict load)
      deploy(net)             the export patch: a module whose forward returns only the deploy outputs
      preprocess(image, vdsp) RGB uint8 HxWx3 -> float32 1x3xHxW (default: driven by vdsp params)
      postprocess(outputs, **params)  deploy outputs (numpy, batch of 1) -> RGB float HxWx3 in [0, 1]
    """

    def __init__(self, card_path):
        self.card_path = Path(card_path)
        self.folder = self.card_path.parent
        self.card = documents.load(self.card_path, "card")
        self.name = self.card["name"]
        self.plugin = ""

    # -- hooks -----------------------------------------------------------
    def network(self, variant):
        raise NotImplementedError(f"{self.name}: the plugin does not define network()")

    def load_weights(self, network, state_dict):
        network.load_state_dict(state_dict, strict=True)

    def deploy(self, network):
        return network

    def preprocess(self, image, vdsp, native=False):
        from modelzoo.imaging import vdsp_preprocess

        return vdsp_preprocess(image, vdsp, native=native)

    def postprocess(self, outputs, **params):
        raise NotImplementedError(f"{self.name}: the plugin does not define postprocess()")

    # -- card helpers ----------------------------------------------------
    @property
    def variants(self):
        return list(self.card["weights"])

    @property
    def default_variant(self):
        return self.variants[0]

    @property
    def builds(self):
        return list(self.card["builds"])

    def weights_entry(self, variant=None):
        variant = variant or self.default_variant
        if variant not in self.card["weights"]:
            raise ZooError(f"{self.card_path}: weights: no variant '{variant}' (have: {', '.join(self.variants)})")
        return self.card["weights"][variant]

    def path(self, field, relative):
        return documents.inside(self.folder, relative, str(self.card_path), field)

    def build_path(self, build):
        if build not in self.card["builds"]:
            raise ZooError(f"{self.card_path}: builds: no build '{build}' (have: {', '.join(self.builds)})")
        return self.path(f"builds.{build}", self.card["builds"][build])

    def results_dir(self):
        """Where measured results files (eval, bench) live: the card's `results` folder."""
        return self.path("results", self.card.get("results") or "results")

    def vdsp_path(self):
        return self.path("vdsp_params", self.card["vdsp_params"])

    def vdsp(self):
        return documents.load(self.vdsp_path(), "vdsp")

    def protocol(self, name=None):
        protocols = self.card["protocols"]
        name = name or next(iter(protocols))
        if name not in protocols:
            raise ZooError(f"{self.card_path}: protocols: no protocol '{name}' (have: {', '.join(protocols)})")
        return name, protocols[name]

    def input_shape(self):
        return list(self.card["input"]["shape"])

    def enhance(self, outputs, **params):
        """postprocess with the card's defaults filled in; always float32 RGB in [0, 1]."""
        merged = {**self.card["postprocess"], **params}
        image = np.asarray(self.postprocess(outputs, **merged), dtype=np.float32)
        return np.clip(image, 0.0, 1.0)
