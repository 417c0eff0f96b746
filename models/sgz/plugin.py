"""SGZ as a modelzoo plugin: Zero-DCE++'s network (card `network: zero-dce-pp`) with SGZ's own weights.

The official modeling/model.py, built the way test.py builds it (enhance_net_nopool(12, conv_type='dsc')), is
Zero-DCE++'s model.py with its CSDN_Tem block renamed DSC: the same depthwise-separable layers, the same 1/12
down- and up-scaling, the same eight curves. Epoch99.pth is a plain state dict with the same 28 keys, and
test.py crops and saves the way Zero-DCE++'s lowlight_test.py does, so the network, the weights loading, the
deploy patch and the pre- and post-processing all come from the zero-dce-pp plugin; this plugin only
registers the card.
"""
from pathlib import Path

from modelzoo import Model, hookimpl


@hookimpl
def register_models(register):
    register(Model(Path(__file__).parent / "card.yaml"))
