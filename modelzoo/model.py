"""The base class every model plugin registers: a validated card plus the code only this model knows."""
from pathlib import Path

import numpy as np

from modelzoo import documents
from modelzoo.errors import ZooError


class Model:
    """Subclass and override `network`; the rest has working defaults.

    Hooks a model supplies:
      network(variant)        the torch nn.Module, weights not loaded
      load_weights(net, sd)   put a state dict into it (default: strict load)
      deploy(net)             the export patch: a module whose forward returns only the deploy outputs
      preprocess(image, vdsp) RGB uint8 HxWx3 -> float32 1x3xHxW (default: driven by vdsp params)
      postprocess(outputs, **params)  deploy outputs (numpy, batch of 1) -> RGB float HxWx3 in [0, 1]
                              (default: the first output is the image)
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
        # deferred: plugins import modelzoo (and so this module) without paying for OpenCV and Pillow
        from modelzoo.imaging import vdsp_preprocess

        return vdsp_preprocess(image, vdsp, native=native)

    def postprocess(self, outputs, **params):
        """The first deploy output is the enhanced image (1x3xHxW): transposed to HxWx3. A model whose image
        needs more than that (PairLIE's L ** gamma * R) overrides this."""
        return outputs[0][0].transpose(1, 2, 0)

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

    @property
    def multiple_of(self):
        """Height and width the network needs to be multiples of (card input.multiple_of, default 1)."""
        return self.card["input"].get("multiple_of", 1)

    # -- post-processing parameters ----------------------------------------
    def parameter_defaults(self):
        return {name: spec["default"] for name, spec in self.card["postprocess"].items()}

    def check_params(self, params, where="--set"):
        return check_params(self.card, params, where)

    def enhance(self, outputs, **params):
        """postprocess with the card's defaults filled in; always float32 RGB in [0, 1]."""
        merged = {**self.parameter_defaults(), **self.check_params(params, "postprocess")}
        image = np.asarray(self.postprocess(outputs, **merged), dtype=np.float32)
        return np.clip(image, 0.0, 1.0)


def check_params(card, params, where="--set"):
    """Post-processing parameters checked against the card's declarations and converted to their type.

    Values may be strings (from the command line); an unknown name or a value of the wrong type or out of range
    is a one-line ZooError naming the parameter and what is allowed.
    """
    declared = card["postprocess"]
    checked = {}
    for name, value in params.items():
        if name not in declared:
            allowed = ", ".join(declared) or "none"
            raise ZooError(f"{where} {name}: {card['name']} has no post-processing parameter '{name}' "
                           f"(allowed: {allowed})")
        checked[name] = _convert(value, declared[name], f"{where} {name}")
    return checked


def _convert(value, spec, label):
    """One parameter value as its declared type, inside its declared range or choices."""
    kind = spec["type"]
    try:
        if kind == "boolean":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = value.lower() in ("true", "1", "yes")
            value = bool(value)
        elif kind == "integer":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            value = int(value)
        elif kind == "number":
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
            if value != value:  # NaN passes no range check
                raise ValueError
        else:
            value = str(value)
    except (TypeError, ValueError):
        article = "an" if kind == "integer" else "a"
        raise ZooError(f"{label}: expected {article} {kind}, got '{value}'") from None
    low, high = spec.get("minimum"), spec.get("maximum")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{low if low is not None else '-inf'} to {high if high is not None else 'inf'}"
        raise ZooError(f"{label}: {value} is out of range ({bounds})")
    if spec.get("choices") and value not in spec["choices"]:
        raise ZooError(f"{label}: '{value}' is not one of {', '.join(spec['choices'])}")
    return value
