"""ZERO-IG's test-time network (Shi et al., CVPR 2024), written from the paper and the official code's layer layout
(Doyle59217/ZeroIG, model.py `Finetunemodel`, the module test.py runs with a saved checkpoint).

At test time three sub-networks run once, at the input's own size (every convolution stride 1, 'same' padding):

    x   = input + 1e-4
    L   = clamp(x - denoise_1(x), 1e-4, 1)                   # denoised low-light image
    s   = enhance(L)                                          # illumination in [1e-4, 1]
    H   = clamp(x / s, 1e-4, 1)                               # enhanced (Retinex), still noisy: test.py's _enhance
    out = clamp([H, s] - denoise_2([H, s]), 1e-4, 1)[:, :3]   # denoised enhanced image: test.py's _denoise

The denoisers predict the noise (a residual): two 3x3 convolutions with LeakyReLU(0.2) and a 1x1 convolution.
The training-time branches (pair down-sampling, texture differences, blurs) never run at test time.

Parameter names match the official state dicts, so a checkpoint loads with strict=True. The official Enhancer
keeps its residual block as the attribute `conv` and appends that same module three times to `blocks`, so the
state dict holds the block's tensors four times (`enhance.conv.*`, `enhance.blocks.{0,1,2}.*`, identical):
sharing one module here reproduces every key.
"""
import torch
from torch import nn

EPS = 1e-4  # the official forward's eps: added to the input, and the floor of every clamp
STAGES = ("enhanced", "denoised")


def _conv3x3(channels_in, channels_out):
    return nn.Conv2d(channels_in, channels_out, kernel_size=3, stride=1, padding=1)


class NoiseEstimator(nn.Module):
    """The official Denoise_1 (3 channels) and Denoise_2 (6: image and illumination); returns the noise."""

    def __init__(self, channels, width=48):
        super().__init__()
        self.act = nn.LeakyReLU(negative_slope=0.2)
        self.conv1 = _conv3x3(channels, width)
        self.conv2 = _conv3x3(width, width)
        self.conv3 = nn.Conv2d(width, channels, kernel_size=1)

    def forward(self, x):
        return self.conv3(self.act(self.conv2(self.act(self.conv1(x)))))


class Enhancer(nn.Module):
    """The illumination estimator: returns s in [1e-4, 1], the same size as its input."""

    def __init__(self, layers=3, channels=64):
        super().__init__()
        self.in_conv = nn.Sequential(_conv3x3(3, channels), nn.ReLU())
        self.conv = nn.Sequential(_conv3x3(channels, channels), nn.BatchNorm2d(channels), nn.ReLU())
        # One module appended `layers` times, as the official code does: the blocks share their weights.
        self.blocks = nn.ModuleList([self.conv for _ in range(layers)])
        self.out_conv = nn.Sequential(_conv3x3(channels, 3), nn.Sigmoid())

    def forward(self, x):
        fea = self.in_conv(x)
        for block in self.blocks:
            fea = fea + block(fea)
        return torch.clamp(self.out_conv(fea), EPS, 1)


class ZeroIGNet(nn.Module):
    """The official Finetunemodel without its file loading; forward returns (enhanced, denoised) as it does."""

    def __init__(self):
        super().__init__()
        self.enhance = Enhancer(layers=3, channels=64)
        self.denoise_1 = NoiseEstimator(3)
        self.denoise_2 = NoiseEstimator(6)

    def forward(self, input):
        x = input + EPS
        low = torch.clamp(x - self.denoise_1(x), EPS, 1)
        illumination = self.enhance(low)
        enhanced = torch.clamp(x / illumination, EPS, 1)
        both = torch.cat([enhanced, illumination], 1)
        denoised = torch.clamp(both - self.denoise_2(both), EPS, 1)[:, :3]
        return enhanced, denoised


class DeployOutputs(nn.Module):
    """The export patch: the denoised enhanced image (test.py's `<name>_denoise.png`, the method's result), as a
    1-tuple, already in [1e-4, 1]. The noisy enhanced image is consumed inside the graph (it feeds denoise_2), so
    it is not exported as well: a graph output that is also used inside breaks the fp16 build (see SCI's)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, input):
        _, denoised = self.network(input)
        return (denoised,)
