"""CoLIE as a modelzoo plugin: no weights, one torch build; the fit's settings are the card's runtime inputs.

The network receives the image's raw 8-bit values (vdsp NormaType EQUAL) and divides them by their maximum,
as the official get_image does: x / 255 / (max / 255) would round differently from x / max, and the fit's
guided filter (eps = 1e-8) turns a last-bit difference into ~1e-4 on the output.
"""
from pathlib import Path

from modelzoo import Model, hookimpl


class CoLIE(Model):
    def network(self, variant):
        from modelzoo_models.colie.net import CoLIE as Network

        return Network({name: spec["default"] for name, spec in self.runtime_inputs.items()})


@hookimpl
def register_models(register):
    register(CoLIE(Path(__file__).parent / "card.yaml"))
