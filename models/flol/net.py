"""FLOL+ (Benito et al., 2025, "FLOL: Fast Baselines for Real-World Low-Light Enhancement"), written from the paper
and the official code's layer layout (model/flol.py, utils/utils.py; create_model() = FLOL(nf=16)).

Two stages on a 1x3xHxW input x in [0, 1] (H, W multiples of 8 here; the official forward reflect-pads to 8
after its frequency stage, a no-op then):

    frequency:  gain = sigmoid(AmpNet(x))                   # per-frequency gain, computed at H/2 x W/2
                x_center = Re(ifft2(fft2(x) / (gain + 1e-8)))
    spatial:    an encoder (3x3 convolutions, two of stride 2) on [x_center, x], then at H/4 x W/4 a
                frequency branch (SFNet: 4 blocks mixing rfft2 magnitude and phase with 1x1 convolutions) and a
                spatial branch (6 residual blocks), blended by an SNR map of x_center (light / |dark - light|,
                light = 5x5 Gaussian blur, normalised by its maximum); a pixel-shuffle decoder with skips,
                and the result added to x.

AmpNet (8 channels) runs three SFBlocks (NAFNet-style blocks whose gate is an rfft2 magnitude/phase block) on a
bilinear half-size copy of x and upsamples bilinearly. Parameter names match the official state dict (182
tensors under the checkpoint's 'params'). The spectral operations come from `spectral`: torch.fft as the
official code, or a DFT as matrix products for export (`use_spectral`).
"""
import torch
import torch.nn.functional as F
from torch import nn

from modelzoo_models.flol.spectral import MatrixDFT, TorchFFT


class LayerNorm2d(nn.Module):
    """Normalise over channels at every pixel (the official LayerNorm2d's forward)."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


def _gate(x):
    """SimpleGate: the first half of the channels times the second."""
    x1, x2 = x.chunk(2, dim=1)
    return x1 * x2


def _conv1x1(channels_in, channels_out):
    return nn.Conv2d(channels_in, channels_out, 1)


class FreBlock(nn.Module):
    """x + irfft2(process1(|X|) * e^(i process2(angle X))), X = rfft2(fpre(x))."""
    spectral = TorchFFT

    def __init__(self, nc):
        super().__init__()
        self.fpre = _conv1x1(nc, nc)
        self.process1 = nn.Sequential(_conv1x1(nc, nc), nn.LeakyReLU(0.1), _conv1x1(nc, nc))
        self.process2 = nn.Sequential(_conv1x1(nc, nc), nn.LeakyReLU(0.1), _conv1x1(nc, nc))

    def forward(self, x):
        height, width = x.shape[-2:]
        mag, pha = self.spectral.polar_rfft2(self.fpre(x))
        return self.spectral.irfft2_polar(self.process1(mag), self.process2(pha), height, width) + x


class SGE(nn.Module):
    """Gate whose first half passes a depthwise 3x3 convolution."""

    def __init__(self, dw_channel):
        super().__init__()
        half = dw_channel // 2
        self.dwc = nn.Conv2d(half, half, 3, padding=1, groups=half)

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        return self.dwc(x1) * x2


class SFBlock(nn.Module):
    """A NAFNet block whose attention is a FreBlock: y = x' + beta * x' (x' the mixed features of norm1(x)),
    out = y + gamma * conv5(gate(conv4(norm2(y)))). As the official forward, x' is built on norm1(x) and the
    block's input itself is not added back."""

    def __init__(self, nc, dw_expand=2, ffn_expand=2):
        super().__init__()
        dw_channel = nc * dw_expand
        self.conv1 = _conv1x1(nc, dw_channel)
        self.conv2 = nn.Conv2d(dw_channel, dw_channel, 3, padding=1, groups=dw_channel)
        self.conv3 = _conv1x1(dw_channel // 2, nc)
        self.fatt = FreBlock(dw_channel // 2)
        self.sge = SGE(dw_channel)
        self.conv4 = _conv1x1(nc, ffn_expand * nc)
        self.conv5 = _conv1x1(ffn_expand * nc // 2, nc)
        self.norm1 = LayerNorm2d(nc)
        self.norm2 = LayerNorm2d(nc)
        self.beta = nn.Parameter(torch.zeros(1, nc, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, nc, 1, 1))

    def forward(self, x):
        x = self.conv3(self.fatt(self.sge(self.conv2(self.conv1(self.norm1(x))))))
        y = x + x * self.beta
        return y + self.conv5(_gate(self.conv4(self.norm2(y)))) * self.gamma


class AmplitudeNet(nn.Module):
    """The official AmplitudeNet_skip: three SFBlocks at half resolution, bilinear down and up."""

    def __init__(self, nc):
        super().__init__()
        self.conv_init = _conv1x1(3, nc)
        self.conv1 = SFBlock(nc)
        self.conv2 = SFBlock(nc)
        self.conv3 = SFBlock(nc)
        self.conv_out = _conv1x1(nc, 3)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=0.5, mode="bilinear")
        x = self.conv_out(self.conv3(self.conv2(self.conv1(self.conv_init(x)))))
        return F.interpolate(x, scale_factor=2, mode="bilinear")


class ProcessBlock(nn.Module):
    """The official ProcessBlock(spatial=False): x + conv1x1(FreBlock(x))."""

    def __init__(self, nc):
        super().__init__()
        self.frequency_process = FreBlock(nc)
        self.cat = _conv1x1(nc, nc)

    def forward(self, x):
        return self.cat(self.frequency_process(x)) + x


class SFNet(nn.Module):
    def __init__(self, nc, n=4):
        super().__init__()
        self.block = nn.Sequential(*(ProcessBlock(nc) for _ in range(n)))

    def forward(self, x):
        return x + self.block(x)


class ResidualBlock(nn.Module):
    """x + conv(relu(conv(x))) (the official ResidualBlock_noBN)."""

    def __init__(self, nf):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv2 = nn.Conv2d(nf, nf, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


def _gaussian_taps(size=5, sigma=1.5):
    """kornia's get_gaussian_kernel1d(5, 1.5): exp(-n^2 / (2 sigma^2)) for n = -2..2 in float32, summing to 1."""
    taps = torch.arange(size, dtype=torch.float32) - size // 2
    kernel = torch.exp(-taps.pow(2) / (2 * sigma ** 2))
    return kernel / kernel.sum()


GAUSSIAN_5 = _gaussian_taps()


def gaussian_blur5(rgb):
    """kornia.filters.gaussian_blur2d(rgb, (5, 5), (1.5, 1.5)) on 3 channels: separable, reflect border, x then y."""
    kernel = GAUSSIAN_5.to(rgb.dtype)
    rgb = F.conv2d(F.pad(rgb, (2, 2, 0, 0), mode="reflect"), kernel.view(1, 1, 1, 5).expand(3, 1, 1, 5), groups=3)
    return F.conv2d(F.pad(rgb, (0, 0, 2, 2), mode="reflect"), kernel.view(1, 1, 5, 1).expand(3, 1, 5, 1), groups=3)


def _luma(x):
    return x[:, 0:1] * 0.299 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.114


def snr_mask(dark):
    """The official get_mask: luma(blur) / (|luma - luma(blur)| + 1e-4), divided by its maximum (+1e-4), in [0, 1]."""
    light = _luma(gaussian_blur5(dark))
    mask = light / (torch.abs(_luma(dark) - light) + 0.0001)
    peak = torch.amax(mask, dim=(1, 2, 3), keepdim=True)
    return torch.clamp(mask * 1.0 / (peak + 0.0001), min=0, max=1.0)


class FLOL(nn.Module):
    """FLOL+ with nf=16 (the official create_model()). forward(x) -> enhanced image, not clamped (the official
    evaluation scores it unclamped, inference.py clamps it to [0, 1] before saving)."""

    def __init__(self, nf=16):
        super().__init__()
        self.AmpNet = nn.Sequential(AmplitudeNet(8), nn.Sigmoid())
        self.conv_first_1 = nn.Conv2d(3 * 2, nf, 3, 1, 1)
        self.conv_first_2 = nn.Conv2d(nf, nf, 3, 2, 1)
        self.conv_first_3 = nn.Conv2d(nf, nf, 3, 2, 1)
        self.feature_extraction = nn.Sequential(ResidualBlock(nf))
        self.recon_trunk = nn.Sequential(ResidualBlock(nf))
        self.upconv1 = nn.Conv2d(nf * 2, nf * 4, 3, 1, 1)
        self.upconv2 = nn.Conv2d(nf * 2, nf * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.HRconv = nn.Conv2d(nf * 2, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1)
        self.transformer = SFNet(nf, n=4)
        self.recon_trunk_light = nn.Sequential(*(ResidualBlock(nf) for _ in range(6)))
        self.spectral = TorchFFT

    def use_spectral(self, spectral):
        """Compute every FFT with `spectral` (TorchFFT or MatrixDFT)."""
        self.spectral = spectral
        for module in self.modules():
            if isinstance(module, FreBlock):
                module.spectral = spectral
        return self

    def forward(self, x):
        height, width = x.shape[-2:]
        x_center = self.spectral.divide_spectrum(x, self.AmpNet(x) + 0.00000001)
        pad_h, pad_w = -height % 8, -width % 8
        if pad_h or pad_w:  # the official code's; the card's input.multiple_of 8 makes it a no-op
            x_center = F.pad(x_center, (0, pad_w, 0, pad_h), "reflect")
            x = F.pad(x, (0, pad_w, 0, pad_h), "reflect")

        fea_1 = self.lrelu(self.conv_first_1(torch.cat((x_center, x), dim=1)))
        fea_2 = self.lrelu(self.conv_first_2(fea_1))
        fea_3 = self.lrelu(self.conv_first_3(fea_2))
        fea = self.feature_extraction(fea_3)
        fea_light = self.recon_trunk_light(fea)
        mask = F.interpolate(snr_mask(x_center), size=fea.shape[-2:], mode="nearest")
        fea = self.transformer(fea) * (1 - mask) + fea_light * mask

        out = torch.cat([self.recon_trunk(fea), fea_3], dim=1)
        out = torch.cat([self.lrelu(self.pixel_shuffle(self.upconv1(out))), fea_2], dim=1)
        out = torch.cat([self.lrelu(self.pixel_shuffle(self.upconv2(out))), fea_1], dim=1)
        out = self.conv_last(self.lrelu(self.HRconv(out))) + x
        return out[:, :, :height, :width]


class DeployOutputs(nn.Module):
    """The export patch: (enhanced,) clamped to [0, 1] (the official inference.py's clamp before saving). Run
    eagerly (the torch backend) the FFTs are torch.fft's; traced for export they are matrix products, which
    every runtime has (TorchScript export knows no FFT operator)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        self.network.use_spectral(MatrixDFT if torch.jit.is_tracing() else TorchFFT)
        return (torch.clamp(self.network(x), 0.0, 1.0),)

