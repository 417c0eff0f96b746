"""FourLLIE (Wang, Wu and Jin, ACM MM 2023, "FourLLIE: Boosting Low-Light Image Enhancement by Fourier Frequency
Information"), written from the paper and the official code's layer layout (models/archs/FourLLIE.py,
SFBlock.py, arch_util.py; options/test/LOLv2_real.yml: FourLLIE(nf=16)).

Two stages on a 1x3xHxW input x in [0, 1]:

    stage 1 (amplitude):  gain = sigmoid(AmpNet(x))                 # one gain per fft2 frequency and channel
                          x_center = Re(ifft2(fft2(x) / (gain + 1e-8)))
    stage 2 (details):    an encoder (3x3 convolutions, two of stride 2) on [x_center, x]; at H/4 x W/4 a
                          Fourier branch (SFNet: 5 blocks mixing rfft2 magnitude and phase with 1x1 convolutions)
                          and a spatial branch (6 residual blocks) blended by an SNR map of x_center
                          (light / |dark - light|, light = 5x5 Gaussian blur, normalised by its maximum); a
                          pixel-shuffle decoder with skips, the result added to x.

AmpNet (the official AmplitudeNet_skip, 8 channels, at full resolution) is seven ProcessBlocks with a spatial
branch (two 3x3 convolutions) and a Fourier branch side by side, with U-shaped skips. The stride-2 encoder needs
multiples of 4; the official forward reflect-pads x and x_center to multiples of 8 after stage 1 and crops the
output back. Parameter names match the official state dict (226 tensors). The FFTs are torch.fft as in the
official code, or DFT matrix products for export (`use_spectral`; modelzoo_models.flol.spectral, which computes
exactly the three spectral operations FourLLIE has: FLOL is a FourLLIE derivative).
"""
import torch
import torch.nn.functional as F
from torch import nn

from modelzoo_models.flol.net import FreBlock  # FLOL's Fourier block is FourLLIE's (FLOL derives from FourLLIE)
from modelzoo_models.flol.spectral import MatrixDFT, TorchFFT


def _conv1x1(channels_in, channels_out):
    return nn.Conv2d(channels_in, channels_out, 1)


def _conv3x3(channels_in, channels_out, stride=1):
    return nn.Conv2d(channels_in, channels_out, 3, stride, 1)


class SpaBlock(nn.Module):
    """x + lrelu(conv3x3(lrelu(conv3x3(x))))."""

    def __init__(self, nc):
        super().__init__()
        self.block = nn.Sequential(_conv3x3(nc, nc), nn.LeakyReLU(0.1), _conv3x3(nc, nc), nn.LeakyReLU(0.1))

    def forward(self, x):
        return x + self.block(x)


class ProcessBlock(nn.Module):
    """x + cat1x1([SpaBlock(x), FreBlock(x)]) with the spatial branch, x + conv1x1(FreBlock(x)) without."""

    def __init__(self, nc, spatial=True):
        super().__init__()
        self.spatial = spatial
        if spatial:
            self.spatial_process = SpaBlock(nc)
        self.frequency_process = FreBlock(nc)
        self.cat = _conv1x1(2 * nc if spatial else nc, nc)

    def forward(self, x):
        frequency = self.frequency_process(x)
        if self.spatial:
            frequency = torch.cat([self.spatial_process(x), frequency], 1)
        return self.cat(frequency) + x


class AmplitudeNet(nn.Module):
    """The official AmplitudeNet_skip(8): 1x1 in, ProcessBlocks with skips, 1x1 out to 3 channels (no sigmoid:
    FourLLIE.AmpNet appends it)."""

    def __init__(self, nc):
        super().__init__()
        self.conv0 = nn.Sequential(_conv1x1(3, nc), ProcessBlock(nc))
        self.conv1 = ProcessBlock(nc)
        self.conv2 = ProcessBlock(nc)
        self.conv3 = ProcessBlock(nc)
        self.conv4 = nn.Sequential(ProcessBlock(2 * nc), _conv1x1(2 * nc, nc))
        self.conv5 = nn.Sequential(ProcessBlock(2 * nc), _conv1x1(2 * nc, nc))
        self.convout = nn.Sequential(ProcessBlock(2 * nc), _conv1x1(2 * nc, 3))

    def forward(self, x):
        x0 = self.conv0(x)
        x1 = self.conv1(x0)
        x2 = self.conv2(x1)
        x3 = self.conv3(x2)
        x4 = self.conv4(torch.cat((x2, x3), 1))
        x5 = self.conv5(torch.cat((x1, x4), 1))
        return self.convout(torch.cat((x0, x5), 1))


class SFNet(nn.Module):
    """x + five chained ProcessBlocks without the spatial branch (conv1..conv5, the official names)."""

    def __init__(self, nc, n=5):
        super().__init__()
        self.n = n
        for index in range(1, n + 1):
            setattr(self, f"conv{index}", ProcessBlock(nc, spatial=False))

    def forward(self, x):
        y = x
        for index in range(1, self.n + 1):
            y = getattr(self, f"conv{index}")(y)
        return x + y


class ResidualBlock(nn.Module):
    """x + conv3x3(relu(conv3x3(x))) (the official ResidualBlock_noBN)."""

    def __init__(self, nf):
        super().__init__()
        self.conv1 = _conv3x3(nf, nf)
        self.conv2 = _conv3x3(nf, nf)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


def gaussian_kernel5(dtype=torch.float32):
    """kornia.filters.gaussian_blur2d's 1-D kernel for size 5, sigma 1.5: exp(-n^2 / 4.5), n = -2..2, sum 1."""
    n = torch.arange(-2, 3, dtype=torch.float32)
    taps = torch.exp(-(n * n) / (2 * 1.5 ** 2))
    return (taps / taps.sum()).to(dtype)


def blur5(rgb):
    """kornia.filters.gaussian_blur2d(rgb, (5, 5), (1.5, 1.5)) on 3 channels: separable, reflect border, along W
    then H. The kernels' shapes are constants (3 channels), so a dynamic-size export knows them."""
    taps = gaussian_kernel5(rgb.dtype)
    rgb = F.conv2d(F.pad(rgb, (2, 2, 0, 0), mode="reflect"), taps.view(1, 1, 1, 5).expand(3, 1, 1, 5), groups=3)
    return F.conv2d(F.pad(rgb, (0, 0, 2, 2), mode="reflect"), taps.view(1, 1, 5, 1).expand(3, 1, 5, 1), groups=3)


def luma(rgb):
    return rgb[:, 0:1] * 0.299 + rgb[:, 1:2] * 0.587 + rgb[:, 2:3] * 0.114


def snr_map(image):
    """The official get_mask: s = luma(blur) / (|luma - luma(blur)| + 1e-4), s / (max s + 1e-4) clamped to [0, 1]."""
    light = luma(blur5(image))
    snr = light / (torch.abs(luma(image) - light) + 0.0001)
    peak = torch.amax(snr, dim=(1, 2, 3), keepdim=True)
    return torch.clamp(snr / (peak + 0.0001), 0.0, 1.0)


class FourLLIE(nn.Module):
    """FourLLIE(nf=16) (every released checkpoint). forward(x) -> (enhanced, x_center): the output and the first
    stage's image (test.py's `rlt` and `rlt_s1`), neither clamped; test.py clamps both to [0, 1] when it saves."""

    def __init__(self, nf=16):
        super().__init__()
        self.AmpNet = nn.Sequential(AmplitudeNet(8), nn.Sigmoid())
        self.conv_first_1 = _conv3x3(2 * 3, nf)
        self.conv_first_2 = _conv3x3(nf, nf, stride=2)
        self.conv_first_3 = _conv3x3(nf, nf, stride=2)
        self.feature_extraction = nn.Sequential(ResidualBlock(nf))
        self.recon_trunk = nn.Sequential(ResidualBlock(nf))
        self.upconv1 = _conv3x3(2 * nf, 4 * nf)
        self.upconv2 = _conv3x3(2 * nf, 4 * nf)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.HRconv = _conv3x3(2 * nf, nf)
        self.conv_last = _conv3x3(nf, 3)
        self.lrelu = nn.LeakyReLU(0.1)
        self.transformer = SFNet(nf)
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
        stage1 = x_center
        pad_h, pad_w = -height % 8, -width % 8
        if pad_h or pad_w:  # the official forward's; a no-op at the card's multiple_of 8
            x_center = F.pad(x_center, (0, pad_w, 0, pad_h), "reflect")
            x = F.pad(x, (0, pad_w, 0, pad_h), "reflect")

        fea_1 = self.lrelu(self.conv_first_1(torch.cat((x_center, x), 1)))
        fea_2 = self.lrelu(self.conv_first_2(fea_1))
        fea_3 = self.lrelu(self.conv_first_3(fea_2))
        fea = self.feature_extraction(fea_3)
        light = self.recon_trunk_light(fea)
        mask = F.interpolate(snr_map(x_center), size=fea.shape[-2:], mode="nearest")
        fea = self.transformer(fea) * (1 - mask) + light * mask

        out = torch.cat([self.recon_trunk(fea), fea_3], 1)
        out = torch.cat([self.lrelu(self.pixel_shuffle(self.upconv1(out))), fea_2], 1)
        out = torch.cat([self.lrelu(self.pixel_shuffle(self.upconv2(out))), fea_1], 1)
        out = self.conv_last(self.lrelu(self.HRconv(out))) + x
        return out[:, :, :height, :width], stage1


class DeployOutputs(nn.Module):
    """The export patch: (enhanced,) clamped to [0, 1], as test.py's tensor2img clamps before it saves. Run
    eagerly (the torch backend) the FFTs are torch.fft's; traced for export they are DFT matrix products (ONNX and
    TorchScript export have no FFT operator)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        self.network.use_spectral(MatrixDFT if torch.jit.is_tracing() else TorchFFT)
        return (torch.clamp(self.network(x)[0], 0.0, 1.0),)
