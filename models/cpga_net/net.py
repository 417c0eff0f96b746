"""CPGA-Net+ and CPGA-Net++ (Weng et al., "Rethinking Theoretical Illumination for Efficient Low-Light Image
Enhancement", arXiv 2409.05274), written from the paper and the official code's layer layout
(model_cpga.py, class CPGAnet_blk, with the demo's settings) for the test-time path only.

One image x (1x3xHxW in [0, 1], H and W even) goes through two priors of the atmospheric scattering model
and a gamma correction:

    gamma  = GammaEstimator(x)                         # one gamma per image, in [0.01, 4]
    y      = CPBlock(x)                                # 3 -> 8 channels
    twice:   y' = CPBlock(y) + y                       # channel-prior block: (J - A) * t + A
             y  = IAAF(gamma, y') + y'                 # intensity-adaptive fusion of y' ** gamma and y'
    out    = CPBlock(y) + x                            # 8 -> 3 channels
    output = IAAF(gamma, out [, x])                    # in [1e-4, 1]

A CPBlock estimates a transmission map t (from the per-pixel max, min and mean of its input) and an
atmospheric light A (an encoder-decoder at half resolution), and returns clamp((J - A) * t + A, 1e-4, 1)
with J a 3x3 convolution of its input. The IAAF blends the gamma-corrected input with the features and
subtracts a learned "intersection".

The two networks share this layout:
- CPGA-Net+ (`convnext=False`): residual blocks of two 3x3 convolutions, plain IAAF (sum of both branches).
- CPGA-Net++ (`convnext=True`): ConvNeXt blocks (depthwise 3x3, channel LayerNorm, 4x MLP, layer scale), and
  IAAF with masking: both branches are weighted by a scoring network's sigmoid mask and mixed with a learned
  rate; the last IAAF gamma-corrects the input image x instead of the features.

Module names match the official state dicts (193 tensors for CPGA-Net+, 344 for CPGA-Net++), so the weights
load with strict=True; every operation is the official one in the official order, so outputs are equal to
float rounding. The stride-2 downsampling and x2 upsampling in each CPBlock need even H and W.
"""
import torch
import torch.nn.functional as F
from torch import nn


def conv(in_channels, out_channels, kernel_size, stride=1, bias=True):
    """A 'same'-padded convolution (the official default_conv)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)


def downsample_like(x, reference):
    """Bilinear resize of x to reference's size (half resolution here: the mean of each 2x2 block)."""
    return F.interpolate(x, size=reference.shape[2:], mode="bilinear", align_corners=False)


class ResBlock(nn.Module):
    """conv - act - conv plus the input; with stride 2 the input is bilinearly downsampled to match."""

    def __init__(self, channels, act, stride=1):
        super().__init__()
        self.body = nn.Sequential(conv(channels, channels, 3, stride), act, conv(channels, channels, 3))
        self.strided = stride > 1

    def forward(self, x):
        res = self.body(x)
        return res + (downsample_like(x, res) if self.strided else x)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of an NCHW tensor, written out as the official code does."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight.view(1, -1, 1, 1) * x + self.bias.view(1, -1, 1, 1)


class ConvNeXtBlock(nn.Module):
    """Depthwise 3x3, LayerNorm, 1x1 to 4C, GELU, 1x1 back, layer scale, plus the input (1x1 stride-2
    convolution of it when strided)."""

    def __init__(self, channels, stride=1):
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, groups=channels)
        self.norm = ChannelLayerNorm(channels)
        self.pwconv1 = nn.Conv2d(channels, 4 * channels, 1)
        self.act = nn.GELU()
        self.pwconv2 = nn.Conv2d(4 * channels, channels, 1)
        self.gamma = nn.Parameter(torch.ones(channels, 1, 1))
        self.downsample = nn.Sequential(nn.Conv2d(channels, channels, 1, stride=stride)) if stride > 1 else None

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(self.dwconv(x)))))
        return residual + self.gamma * x


def block(channels, convnext, act, stride=1):
    return ConvNeXtBlock(channels, stride) if convnext else ResBlock(channels, act, stride)


class ChannelAttention(nn.Module):
    def __init__(self, channels, ratio):
        super().__init__()
        hidden = channels // ratio
        self.fc = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(),
                                nn.Conv2d(hidden, channels, 1, bias=False))

    def forward(self, x):
        return torch.sigmoid(self.fc(F.adaptive_avg_pool2d(x, 1)) + self.fc(F.adaptive_max_pool2d(x, 1)))


class SpatialAttention(nn.Module):
    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x):
        pooled = torch.cat([torch.mean(x, dim=1, keepdim=True), torch.max(x, dim=1, keepdim=True)[0]], dim=1)
        return torch.sigmoid(self.conv1(pooled))


class ResCBAM(nn.Module):
    """A residual block with BatchNorm and CBAM attention (channel, then spatial); GELU throughout."""

    def __init__(self, channels, stride=1):
        super().__init__()
        self.conv1 = conv(channels, channels, 3, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv(channels, channels, 3)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act = nn.GELU()
        self.ca = ChannelAttention(channels, ratio=min(channels, 16))
        self.sa = SpatialAttention()
        self.downsample = conv(channels, channels, 1, stride) if stride > 1 else None

    def forward(self, x):
        out = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
        out = self.ca(out) * out
        out = self.sa(out) * out
        residual = x if self.downsample is None else self.downsample(x)
        return self.act(out + residual)


class GammaEstimator(nn.Module):
    """One gamma per image: CBAM residual blocks at half resolution, a 1x1 convolution to one channel, the
    global mean, clamped to [0.01, 4] (the official Gamma_est_p)."""

    def __init__(self, channels=16):
        super().__init__()
        self.conv1_g = conv(3, channels, 3)
        self.conv2_g = nn.Sequential(ResCBAM(channels, stride=2))
        self.conv3_g = nn.Sequential(ResCBAM(channels), ResCBAM(channels))
        self.conv4_g = conv(channels, 1, 1)

    def forward(self, x):
        full = self.conv1_g(x)
        half = self.conv2_g(full)
        half = self.conv3_g(half) + downsample_like(full, half)
        return torch.clamp(F.adaptive_avg_pool2d(self.conv4_g(half), 1), min=1e-2, max=4.0)


class Transmission(nn.Module):
    """t from the dark/bright channel prior: the per-pixel max, min and mean of the input (the official
    t_module); one channel, unbounded."""

    def __init__(self, in_channels, hidden=4):
        super().__init__()
        self.prep = nn.Sequential(nn.Conv2d(3, hidden, 3, padding=1), nn.GELU())
        self.conv = ResBlock(hidden + in_channels, nn.GELU())
        self.postp = conv(hidden + 2 * in_channels, 1, 1)
        self.gelu = nn.GELU()

    def forward(self, x):
        priors = torch.cat((torch.max(x, 1, keepdim=True)[0], torch.min(x, 1, keepdim=True)[0],
                            torch.mean(x, 1, keepdim=True)), dim=1)
        y = self.conv(torch.cat((self.prep(priors), x), 1))
        return self.postp(self.gelu(torch.cat((y, x), 1)))


class AtmosphericLight(nn.Module):
    """A from a small encoder-decoder: 1x1 in, a stride-2 block, a block, x2 bilinear upsampling (corners
    aligned), a block, 1x1 out (the official At_module)."""

    def __init__(self, in_channels, out_channels, channels=8, convnext=False):
        super().__init__()
        self.conv1_A = conv(in_channels, channels, 1)
        self.conv2_A = nn.Sequential(block(channels, convnext, nn.GELU(), stride=2))
        self.conv3_A = block(channels, convnext, nn.GELU())
        self.gelu = nn.GELU()
        self.conv4_A = nn.Sequential(conv(2 * channels, channels, 3),
                                     nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                                     block(channels, convnext, nn.GELU()))
        self.conv5_A = nn.Conv2d(2 * channels, out_channels, 1)

    def forward(self, x):
        full = self.conv1_A(x)
        half = self.conv2_A(full)
        y = self.gelu(torch.cat((self.conv3_A(half), half), 1))
        return self.conv5_A(torch.cat((self.conv4_A(y), full), 1))


class CPBlock(nn.Module):
    """clamp((J - A) * t + A, 1e-4, 1): the scattering model inverted with learned J, A and t."""

    def __init__(self, in_channels, out_channels, channels=8, convnext=False):
        super().__init__()
        self.prep_module = nn.Sequential(conv(in_channels, out_channels, 3), nn.GELU())
        self.t_module = Transmission(in_channels, channels // 2)
        self.a_module = AtmosphericLight(in_channels, out_channels, channels, convnext)

    def forward(self, x):
        t = self.t_module(x)
        a = self.a_module(x)
        return torch.clamp((self.prep_module(x) - a) * t + a, min=1e-4, max=1)


class IAAF(nn.Module):
    """Intensity-adaptive fusion of base ** gamma with the features llie, minus a learned intersection.

    Without masking (CPGA-Net+): base ** gamma + llie - intersection. With masking (CPGA-Net++): a scoring
    network's sigmoid weights each branch before the intersection is estimated, and the branches are mixed
    with the learned rate m (clamped to [0.1, 1]): (1 - m) * base ** gamma + m * llie - intersection.
    """

    def __init__(self, in_channels=6, out_channels=3, channels=16, act=None, convnext=False, masking=False):
        super().__init__()
        act = act or nn.GELU()
        self.conv1_post_g = conv(in_channels, channels, 1)
        self.conv2_post_g = block(channels, convnext, act)
        self.conv3_post_g = conv(channels, out_channels, 1)
        self.masking = masking
        if masking:
            self.conv_scoring = nn.Sequential(conv(in_channels // 2, channels, 1), block(channels, convnext, act),
                                              block(channels, convnext, act), conv(channels, out_channels, 1),
                                              nn.Sigmoid())

    def forward(self, gamma, llie, base=None, rate=None):
        out_g = torch.pow(llie if base is None else base, gamma)
        if self.masking:
            fused = torch.cat((out_g * self.conv_scoring(out_g), llie * self.conv_scoring(llie)), dim=1)
        else:
            fused = torch.cat((out_g, llie), dim=1)
        intersection = self.conv3_post_g(self.conv2_post_g(self.conv1_post_g(fused)))
        if self.masking:
            rate = torch.clamp(rate, min=0.1, max=1.0)
            output = (1 - rate) * out_g + rate * llie - intersection
        else:
            output = out_g + llie - intersection
        return torch.clamp(output, min=1e-4, max=1)


class CPGANet(nn.Module):
    """CPGA-Net+ (convnext=False) or CPGA-Net++ (convnext=True): returns (enhanced, gamma), the first two of
    the official forward's get_all outputs; enhanced is in [1e-4, 1]."""

    def __init__(self, convnext=False, channels=8, gamma_channels=16, iaaf_channels=16, blocks=2):
        super().__init__()
        self.convnext = convnext
        self.cpblks_pre = CPBlock(3, channels, channels, convnext)
        self.cpblks = nn.ModuleList(CPBlock(channels, channels, channels, convnext) for _ in range(blocks))
        self.cpblk_post = CPBlock(channels, 3, channels, convnext)
        self.ga_est = GammaEstimator(gamma_channels)
        # CPGA-Net+'s last IAAF uses ReLU in its residual block (the official IAAF's default act); the rest GELU
        self.iaaf = IAAF(channels=iaaf_channels, act=None if convnext else nn.ReLU(), convnext=convnext,
                         masking=convnext)
        self.iaafblks = nn.ModuleList(
            IAAF(2 * channels, channels, iaaf_channels, nn.GELU(), convnext, masking=convnext) for _ in range(blocks))
        if convnext:
            self.iaaf_masking_rate = nn.Parameter(torch.full((1,), 0.5))
            self.iaafblks_masking_rate = nn.Parameter(torch.full((blocks,), 0.5))

    def forward(self, x):
        gamma = self.ga_est(x)
        y = self.cpblks_pre(x)
        for index, (cpblk, iaaf) in enumerate(zip(self.cpblks, self.iaafblks)):
            y = cpblk(y) + y
            rate = self.iaafblks_masking_rate[index] if self.convnext else None
            y = iaaf(gamma, y, rate=rate) + y
        out = self.cpblk_post(y) + x
        if self.convnext:
            return self.iaaf(gamma, out, base=x, rate=self.iaaf_masking_rate), gamma
        return self.iaaf(gamma, out), gamma


class DeployOutputs(nn.Module):
    """The export patch: forward returns only the enhanced image, as a 1-tuple (the deploy outputs)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        return (self.network(x)[0],)
