"""Zero-DCE++'s network (Li et al., TPAMI 2021), written from the paper and the official model.py's layer layout.

Zero-DCE++ keeps Zero-DCE's curve, LE(x; a) = x + a * (x^2 - x), and its seven-layer skip-connected DCE-Net,
with three changes that make it tiny and fast:
  - every 3x3 convolution becomes depthwise-separable (a 3x3 depthwise convolution, then a 1x1 pointwise one);
  - one 3-channel curve map is estimated and shared by all eight iterations (instead of eight maps);
  - the curve map is estimated on a down-scaled input and bilinearly up-scaled to the input's size.

    small = bilinear(input, 1/scale)      align_corners=False (F.interpolate's default); see Downscale
    x1..x6 as in Zero-DCE on `small`, every conv depthwise-separable, 32 features
    a = upsample(tanh(conv([x1, x6])), scale)             align_corners=True (nn.UpsamplingBilinear2d)
    enhanced = LE applied eight times with the same a

The official test uses scale 12 and crops the image to a multiple of 12 first; this network does not crop or
pad: H and W must be multiples of `scale_factor` (the card's input.multiple_of has the engine pad to that).
The two different align_corners settings are the official code's (F.interpolate vs nn.UpsamplingBilinear2d)
and are kept as they are: changing either moves a LOL output by 0.02 to 0.03, far above the 1e-5 target.
Parameter names (e_conv1..7 . depth_conv / point_conv) are the official ones, so Epoch99.pth loads strictly.
"""
import torch
import torch.nn.functional as F
from torch import nn

FEATURES = 32
ITERATIONS = 8
SCALE = 12


class SeparableConv(nn.Module):
    """The official CSDN_Tem: a 3x3 depthwise convolution (zero padding 1, bias) then a 1x1 convolution (bias)."""

    def __init__(self, channels_in, channels_out):
        super().__init__()
        self.depth_conv = nn.Conv2d(channels_in, channels_in, kernel_size=3, stride=1, padding=1,
                                    groups=channels_in)
        self.point_conv = nn.Conv2d(channels_in, channels_out, kernel_size=1, stride=1, padding=0)

    def forward(self, x):
        return self.point_conv(self.depth_conv(x))


def curve(x, alpha):
    """One light-enhancement curve LE(x; alpha) = x + alpha * (x^2 - x).

    x * x is bit-identical to the official torch.pow(x, 2) in torch, and exports as a two-input multiply
    instead of a one-input Pow/square, which ncnn would run in place on its input blob.
    """
    return x + alpha * (x * x - x)


class Downscale(nn.Module):
    """The official F.interpolate(x, scale_factor=1 / scale, mode="bilinear") for H and W divisible by `scale`.

    Bilinear down-scaling without antialiasing samples each scale x scale block at its centre,
    scale * i + (scale - 1) / 2: for scale 12 that is the mean of the 2x2 pixels at offsets 5 and 6, for an odd
    scale the one centre pixel. Written as a fixed depthwise convolution (stride `scale`, weight 1/4 on those
    pixels, 0 elsewhere) it reads only the input, as every runtime here supports it: a slice then a pooling
    made runtimes copy and reorder the whole full-size input first, the largest cost of a 720p frame after
    the up-scaling, and strided slices are not in ncnn. The sum order differs from the official one by at
    most an ulp (6e-8). It carries no fractional scale factor, which breaks the exports: fp16 conversion
    rounds 1/12 to 0.0833 and ONNX Runtime then makes 33 rows of 408, not 34; an explicit size instead would
    be frozen into the ncnn graph, which must run any size. The kernel is a non-persistent buffer: the
    official state dict still loads strictly.
    """

    def __init__(self, scale, channels=3):
        super().__init__()
        self.scale = scale
        start, window = (scale - 1) // 2, 2 - scale % 2
        kernel = torch.zeros(channels, 1, scale, scale)
        kernel[:, :, start:start + window, start:start + window] = 1 / window ** 2
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.kernel, stride=self.scale, groups=x.shape[1])


class ZeroDCEPP(nn.Module):
    """DCE-Net++; forward returns the official (enhance_image, x_r): the image after eight curves and the
    up-scaled curve map, both of the input's size."""

    def __init__(self, scale_factor=SCALE):
        super().__init__()
        self.scale_factor = scale_factor
        self.downscale = Downscale(scale_factor)
        self.relu = nn.ReLU()
        self.e_conv1 = SeparableConv(3, FEATURES)
        self.e_conv2 = SeparableConv(FEATURES, FEATURES)
        self.e_conv3 = SeparableConv(FEATURES, FEATURES)
        self.e_conv4 = SeparableConv(FEATURES, FEATURES)
        self.e_conv5 = SeparableConv(2 * FEATURES, FEATURES)
        self.e_conv6 = SeparableConv(2 * FEATURES, FEATURES)
        self.e_conv7 = SeparableConv(2 * FEATURES, 3)

    def forward(self, x):
        scale = self.scale_factor
        if x.shape[-2] % scale or x.shape[-1] % scale:
            raise ValueError(f"Zero-DCE++ needs H and W that are multiples of {scale}, got "
                             f"{x.shape[-2]}x{x.shape[-1]}: pad the input first (the engine does, input.multiple_of)")
        small = self.downscale(x)
        x1 = self.relu(self.e_conv1(small))
        x2 = self.relu(self.e_conv2(x1))
        x3 = self.relu(self.e_conv3(x2))
        x4 = self.relu(self.e_conv4(x3))
        x5 = self.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = self.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        alpha = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        if scale != 1:
            alpha = F.interpolate(alpha, scale_factor=scale, mode="bilinear", align_corners=True)
        for _ in range(ITERATIONS):
            x = curve(x, alpha)
        return x, alpha


class DeployOutputs(nn.Module):
    """The export patch: forward returns only the enhanced image as a 1-tuple (the curve map is intermediate)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        enhanced, _ = self.network(x)
        return (enhanced,)
