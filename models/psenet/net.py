"""PSENet's enhancement network (Nguyen et al., WACV 2023), written from the paper and the official code's layer
layout (VinAIResearch/PSENet-Image-Enhancement, source/model.py `UnetTMO`, the module demo.py and the Lightning
test step run).

PSENet fuses pseudo-exposures only while it trains: each training image, gamma-corrected copies of it
(1 - (1 - x) ** g for random g) and the network's previous output are scored by a no-reference quality measure and
the best-scored one per pixel becomes the target. At test time none of that runs: the network sees the image alone
and predicts a per-pixel exponent map g > 0, and the output is the same curve applied with it:

    y = 1 - (1 - x) ** g,    g = |last_conv([first_conv(x), up(decoder)]) + 1|

The body is a small two-level U-Net of MobileNetV3 inverted-residual blocks (1x1 expansion, depthwise 3x3 with
reflect padding, optional squeeze-excitation, 1x1 projection; LeakyReLU(0.01); a residual connection where the
stride is 1 and the channel count is kept). Two blocks downsample by stride 2; the decoder upsamples with bilinear
interpolation (corners aligned) to the skip connection's size and then to the input's own size, so any size from
5 px up runs without padding (the depthwise reflect padding needs at least 2 rows and columns at 1/4 size).

The squeeze-excitation of the first and last blocks multiplies the features by two 1x1 convolutions (ReLU between,
no sigmoid) of their global average: an output pixel depends on the whole image.

Parameter names match the official state dict (after the Lightning checkpoint's `model.` prefix is removed), so a
checkpoint loads with strict=True.
"""
import torch
import torch.nn.functional as F
from torch import nn

FLOOR = 2.0 ** -16  # the least base the output curve raises to a power (see _power)


class SqueezeExcite(nn.Module):
    """x times a per-channel gain from the global average: conv 1x1, ReLU, conv 1x1 (no gate nonlinearity)."""

    def __init__(self, channels):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, channels, 1))

    def forward(self, x):
        return x * self.fc(self.pool(x))


class InvertedResidual(nn.Module):
    """A MobileNetV3 bottleneck as the official MobileBottleneck builds it with LeakyReLU ('LeRE'):
    conv.0 expand 1x1, conv.2 depthwise 3x3 (reflect padding), conv.3 squeeze-excitation or nothing,
    conv.5 project 1x1; the parameter-free modules keep the official indices."""

    def __init__(self, channels_in, channels_out, stride, expanded, squeeze):
        super().__init__()
        self.residual = stride == 1 and channels_in == channels_out
        self.conv = nn.Sequential(
            nn.Conv2d(channels_in, expanded, 1),
            nn.LeakyReLU(0.01),
            nn.Conv2d(expanded, expanded, 3, stride=stride, padding=1, groups=expanded, padding_mode="reflect"),
            SqueezeExcite(expanded) if squeeze else nn.Identity(),
            nn.LeakyReLU(0.01),
            nn.Conv2d(expanded, channels_out, 1),
        )

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.residual else y


def _resize(x, like):
    return F.interpolate(x, size=(like.shape[2], like.shape[3]), mode="bilinear", align_corners=True)


class PSENet(nn.Module):
    """The official UnetTMO; forward returns (enhanced, exponent map) as it does."""

    def __init__(self, base=16):
        super().__init__()
        half = base * 3 // 2  # 24: the expansion of the 16-channel blocks
        self.first_conv = InvertedResidual(3, 3, 1, 6, squeeze=True)
        self.conv1 = InvertedResidual(3, base, 2, half, squeeze=False)               # 1/2
        self.conv2 = InvertedResidual(base, base, 1, half, squeeze=False)
        self.conv3 = InvertedResidual(base, 2 * base, 2, 3 * base, squeeze=False)    # 1/4
        self.conv5 = InvertedResidual(2 * base, 2 * base, 1, 3 * base, squeeze=False)
        self.conv6 = InvertedResidual(2 * base, base, 1, 3 * base, squeeze=False)
        self.conv7 = InvertedResidual(2 * base, base, 1, 3 * base, squeeze=False)    # 1/2, after the skip
        self.conv8 = InvertedResidual(base, 3, 1, half, squeeze=False)
        self.last_conv = InvertedResidual(6, 3, 1, 9, squeeze=True)                   # full size

    def forward(self, x):
        head = self.first_conv(x)
        skip = self.conv2(self.conv1(head))
        deep = self.conv6(self.conv5(self.conv3(skip)))
        up = self.conv8(self.conv7(torch.cat([skip, _resize(deep, skip)], dim=1)))
        exponent = torch.abs(self.last_conv(torch.cat([head, _resize(up, x)], dim=1)) + 1)
        return 1 - _power(1 - x, exponent), exponent


def _power(base, exponent):
    """base ** exponent for base in [0, 1], exponent >= 0, without ever raising 0: runtimes get pow(0, g) wrong
    (ncnn's gives 2.4e38, so a white pixel came out black; OpenVINO's int8 build, computing 1 - x from a quantized
    copy of the input, saw bases a little below 0 at saturated pixels, a NaN to a fractional power). The base is
    floored at 2^-16 and the result multiplied by `gate`, 1 where base >= 2^-16 and 0 where base <= 0: exactly the
    official (1 - x) ** g for every base >= 2^-16 (every 8- or 16-bit input value) and for base 0 (x = 255: the
    official 0 ** g = 0, g > 0), linear in between."""
    gate = torch.clamp(base * (1 / FLOOR), 0, 1)
    return gate * torch.clamp(base, min=FLOOR) ** exponent


class DeployOutputs(nn.Module):
    """The export patch: the enhanced image only, as a 1-tuple (the exponent map is consumed inside the graph, and
    a graph output that is also used inside breaks the fp16 build, see SCI's)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, input):
        enhanced, _ = self.network(input)
        return (enhanced,)
