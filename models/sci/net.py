"""SCI's test-time network (Ma et al., CVPR 2022), written from the paper and the official code's layer layout.

Only the self-calibrated illumination estimator `EnhanceNetwork(layers=1, channels=3)` runs at test time; the
calibration module that the official weight files also hold (keys `calibrate.*`) is used for training only.

    fea  = ReLU(conv3x3(input))                          # in_conv
    fea  = fea + ReLU(BN(conv3x3(fea)))                  # blocks[0], the same module as `conv`
    illu = clamp(sigmoid(conv3x3(fea)) + input, 1e-4, 1)  # out_conv, then the residual to the input
    r    = clamp(input / illu, 0, 1)                     # Retinex: enhanced = input / illumination

Parameter names match the official state dict under `enhance.`: the official module keeps the residual block as
the attribute `conv` and appends that same module to `blocks`, so its state dict holds every block tensor twice
(`enhance.conv.*` and `enhance.blocks.0.*`, identical). Sharing the module here reproduces both key sets, so the
enhance net loads with strict=True.
"""
import torch
from torch import nn


def _conv3x3(channels_in, channels_out):
    return nn.Conv2d(channels_in, channels_out, kernel_size=3, stride=1, padding=1)


class EnhanceNetwork(nn.Module):
    """Returns the illumination map `illu` in [1e-4, 1], the same shape as the input."""

    def __init__(self, layers=1, channels=3):
        super().__init__()
        self.in_conv = nn.Sequential(_conv3x3(3, channels), nn.ReLU())
        self.conv = nn.Sequential(_conv3x3(channels, channels), nn.BatchNorm2d(channels), nn.ReLU())
        # The official code appends the one `conv` module `layers` times: the blocks share their weights.
        self.blocks = nn.ModuleList([self.conv for _ in range(layers)])
        self.out_conv = nn.Sequential(_conv3x3(channels, 3), nn.Sigmoid())

    def forward(self, input):
        fea = self.in_conv(input)
        for conv in self.blocks:
            fea = fea + conv(fea)
        fea = self.out_conv(fea)
        return torch.clamp(fea + input, 0.0001, 1)


class SCINet(nn.Module):
    """The official `Finetunemodel` without its loss: `enhance` is the only sub-module, forward returns (illu, r)."""

    def __init__(self):
        super().__init__()
        self.enhance = EnhanceNetwork(layers=1, channels=3)

    def forward(self, input):
        illu = self.enhance(input)
        return illu, torch.clamp(input / illu, 0, 1)


class DeployOutputs(nn.Module):
    """The export patch: forward returns only the enhanced image r, as a 1-tuple (the deploy outputs).

    The illumination stays inside the graph. Exporting it as a second output as well breaks the fp16 build:
    onnxconverter-common's keep_io_types casts a graph output back to fp32 and then feeds that fp32 copy to the
    Div that still consumes it inside the graph (ONNX Runtime: "Type parameter (T) of Optype (Div) bound to
    different types"). Post-processing needs only r; SCINet itself still returns (illu, r) for inspection.
    """

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, input):
        _, enhanced = self.network(input)
        return (enhanced,)
