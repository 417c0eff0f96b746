"""The base class every model plugin registers: a validated card plus the code only this model knows."""
from pathlib import Path

import numpy as np

from modelzoo import documents
from modelzoo.errors import ZooError

# What a card with `network: OTHER` takes from OTHER's card where it does not say it itself: the network's facts.
INHERITED = ("architecture", "input", "outputs", "operators", "complexity", "postprocess", "runtime_inputs")


class Model:
    """Subclass and override `network`; the rest has working defaults.

    Hooks a model supplies:
      network(variant)        the torch nn.Module, weights not loaded
      load_weights(net, sd)   put the weights into it (default: strict load): a state dict for a single-file
                              variant, {role: state dict} for a `files` variant (never called without weights)
      deploy(net)             the export patch: a module whose forward returns only the deploy outputs
      preprocess(image, vdsp) RGB uint8 HxWx3 -> float32 1x3xHxW (default: driven by vdsp params)
      postprocess(outputs, **params)  deploy outputs (numpy, batch of 1) -> RGB float HxWx3 in [0, 1]
                              (default: the first output is the image)
      reference_inputs(low, reference)  runtime inputs derived from the reference image, for protocols with
                              reference_guided: true (both RGB float32 HxWx3 in [0, 1]) -> {name: value}

    A card's runtime_inputs are network inputs beyond the image: the deploy module's forward takes the image,
    then each runtime input in card order as a float32 tensor of shape [1].

    A card with `network: OTHER` reuses the registered model OTHER's network: the registry binds OTHER as
    `base`, every hook above defaults to OTHER's, and the card inherits OTHER's INHERITED fields. Its plugin
    registers a plain Model for the card (its own weights, licence, results).
    """

    base = None  # the Model whose network this one reuses (card `network`), bound by the registry

    def __init__(self, card_path):
        self.card_path = Path(card_path)
        self.folder = self.card_path.parent
        self.card = documents.load(self.card_path, "card")
        self.name = self.card["name"]
        self.plugin = ""

    # -- hooks -----------------------------------------------------------
    def network(self, variant):
        if self.base is not None:  # the base's variant of the same name, else its default
            return self.base.network(variant if variant in self.base.variants else self.base.default_variant)
        raise NotImplementedError(f"{self.name}: the plugin does not define network()")

    def load_weights(self, network, state_dict):
        if self.base is not None:
            return self.base.load_weights(network, state_dict)
        network.load_state_dict(state_dict, strict=True)

    def deploy(self, network):
        return self.base.deploy(network) if self.base is not None else network

    def preprocess(self, image, vdsp, native=False):
        if self.base is not None:
            return self.base.preprocess(image, vdsp, native=native)
        from modelzoo.imaging import vdsp_preprocess

        return vdsp_preprocess(image, vdsp, native=native)

    def reference_inputs(self, low, reference):
        if self.base is not None:
            return self.base.reference_inputs(low, reference)
        raise ZooError(f"{self.card_path}: protocols: a reference-guided protocol needs the plugin's "
                       f"reference_inputs(low, reference), which {self.name} does not define")

    def postprocess(self, outputs, **params):
        """The first deploy output is the enhanced image (1x3xHxW): transposed to HxWx3. A model whose image
        needs more than that (PairLIE's L ** gamma * R) overrides this."""
        if self.base is not None:
            return self.base.postprocess(outputs, **params)
        return outputs[0][0].transpose(1, 2, 0)

    def bind(self, base):
        """Reuse `base`'s network (card `network`): its hooks, and its card's INHERITED fields this card lacks."""
        if base.card.get("network"):
            raise ZooError(f"{self.card_path}: network: '{base.name}' reuses another model's network itself; "
                           f"name that one ({base.card['network']})")
        self.base = base
        self.card = inherit(self.card, base.card)

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

    def with_weights(self, variant, state, label=""):
        """The network for `variant` with `state` loaded through load_weights (None: no weights), in eval mode;
        a state that does not fit is a ZooError naming `label` (the weights files)."""
        network = self.network(variant)
        if state is not None:
            try:
                self.load_weights(network, state)
            except (RuntimeError, KeyError, ValueError) as exc:
                lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
                raise ZooError(f"{label}: not weights for {self.name} ({'; '.join(lines[:2])[:300]})") from None
        return network.eval()

    def weights_entry(self, variant=None):
        variant = variant or self.default_variant
        if variant not in self.card["weights"]:
            raise ZooError(f"{self.card_path}: weights: no variant '{variant}' (have: {', '.join(self.variants)})")
        return self.card["weights"][variant]

    def path(self, field, relative):
        return documents.inside(self.folder, relative, str(self.card_path), field)

    def build_path(self, build):
        if build not in self.card["builds"]:
            note = f"; {self.card['builds_note']}" if self.card.get("builds_note") else ""
            raise ZooError(f"{self.card_path}: builds: no build '{build}' (have: {', '.join(self.builds)}){note}")
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

    def unsupported(self, backend):
        """Why this model cannot run on `backend` (card unsupported), or None."""
        return (self.card.get("unsupported") or {}).get(backend)

    @property
    def multiple_of(self):
        """Height and width the network needs to be multiples of (card input.multiple_of, default 1)."""
        return self.card["input"].get("multiple_of", 1)

    # -- post-processing parameters ----------------------------------------
    def parameter_defaults(self):
        return {name: spec["default"] for name, spec in self.card["postprocess"].items()}

    def check_params(self, params, where="--set"):
        return check_params(self.card, params, where)

    # -- runtime inputs (network inputs beyond the image) --------------------
    @property
    def runtime_inputs(self):
        """name -> spec, in the order the deploy module's forward takes them after the image."""
        return self.card.get("runtime_inputs") or {}

    def settings(self, values, where="--set"):
        """`--set` / load() keywords split into (post-processing parameters, runtime inputs), each checked."""
        runtime = {k: v for k, v in values.items() if k in self.runtime_inputs}
        params = {k: v for k, v in values.items() if k not in runtime}
        return check_params(self.card, params, where), self.check_runtime(runtime, where)

    def check_runtime(self, values, where="--set"):
        """Runtime input values checked against the card and converted to float; unknown names are errors."""
        checked = {}
        for name, value in values.items():
            if name not in self.runtime_inputs:
                raise ZooError(f"{where} {name}: {self.name} has no runtime input '{name}' "
                               f"(allowed: {', '.join(self.runtime_inputs) or 'none'})")
            checked[name] = float(convert_value(value, self.runtime_inputs[name], f"{where} {name}"))
        return checked

    def runtime_values(self, values=None):
        """Every runtime input's value, in card order: the given ones, else the card's defaults."""
        values = values or {}
        return {name: float(values.get(name, spec["default"])) for name, spec in self.runtime_inputs.items()}

    def runtime_arrays(self, values=None):
        """What sessions are fed beside the image: name -> float32 array of shape [1], in card order."""
        return {name: np.array([value], dtype=np.float32) for name, value in self.runtime_values(values).items()}

    def enhance(self, outputs, **params):
        """postprocess with the card's defaults filled in; always float32 RGB in [0, 1]."""
        merged = {**self.parameter_defaults(), **self.check_params(params, "postprocess")}
        image = np.asarray(self.postprocess(outputs, **merged), dtype=np.float32)
        return np.clip(image, 0.0, 1.0)


def inherit(card, base_card):
    """`card` with the INHERITED fields it lacks taken from `base_card` (card `network`)."""
    return {**{k: base_card[k] for k in INHERITED if k in base_card and k not in card}, **card}


def check_params(card, params, where="--set"):
    """Post-processing parameters checked against the card's declarations and converted to their type.

    Values may be strings (from the command line); an unknown name or a value of the wrong type or out of range
    is a one-line ZooError naming the parameter and what is allowed.
    """
    declared = card["postprocess"]
    checked = {}
    for name, value in params.items():
        if name not in declared:
            runtime = card.get("runtime_inputs") or {}
            allowed = ", ".join([*declared, *runtime]) or "none"
            kind = "post-processing parameter or runtime input" if runtime else "post-processing parameter"
            raise ZooError(f"{where} {name}: {card['name']} has no {kind} '{name}' (allowed: {allowed})")
        checked[name] = convert_value(value, declared[name], f"{where} {name}")
    return checked


def convert_value(value, spec, label):
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
