"""SCL-LLE as a modelzoo plugin: Zero-DCE's network (card `network: zero-dce`) with SCL-LLE's own weights.

The official lowlight_model.py is Zero-DCE's model.py unchanged (torch.tanh for F.tanh), and SCL-LLE.pth is a
plain state dict with the same 14 keys, so the network, the weights loading, the deploy patch and the
post-processing all come from the zero-dce plugin; this plugin only registers the card.
"""
from pathlib import Path

from modelzoo import Model, hookimpl


@hookimpl
def register_models(register):
    register(Model(Path(__file__).parent / "card.yaml"))
