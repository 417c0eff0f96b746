"""The three spectral operations FLOL needs, two ways: torch.fft (the official code's) and a DFT as matrix products.

    polar_rfft2(x)                -> |X|, angle(X)       X = rfft2(x), the one-sided 2-D spectrum
    irfft2_polar(mag, pha, h, w)  -> irfft2(mag * e^(i pha), s=(h, w))
    divide_spectrum(x, gain)      -> Re(ifft2(fft2(x) / gain))   (gain > 0, real, one value per frequency)

`TorchFFT` is what the official code computes. `MatrixDFT` computes the same sums as products with cos/sin
tables built in the graph from the input's height and width, so a traced export holds only MatMul, Cos, Sin, Atan,
Where and elementwise arithmetic: ONNX Runtime and OpenVINO run it at any size (TorchScript export has no FFT
operator). It is exact up to float rounding, with two details kept as pocketfft has them:

- bins whose imaginary part is zero in exact arithmetic (kw = 0 or W/2, kh = 0 or H/2) get an exactly zero
  imaginary part (the sin tables are set to 0 where 2*k*n is a multiple of N), and a negative real part there has
  the phase +pi, as torch.angle gives for pocketfft's +0.0;
- the c2r inverse ignores the imaginary parts of the kw = 0 and W/2 bins, as a Hermitian inverse does.

The cost is O(H*W*(H+W)) multiply-adds per channel instead of O(H*W*log(H*W)).
"""
import math

import torch


class TorchFFT:
    """The official code's operations, op for op."""

    @staticmethod
    def polar_rfft2(x):
        spectrum = torch.fft.rfft2(x, norm="backward")
        return torch.abs(spectrum), torch.angle(spectrum)

    @staticmethod
    def irfft2_polar(mag, pha, height, width):
        spectrum = torch.complex(mag * torch.cos(pha), mag * torch.sin(pha))
        return torch.fft.irfft2(spectrum, s=(height, width), norm="backward")

    @staticmethod
    def divide_spectrum(x, gain):
        height, width = x.shape[-2:]
        spectrum = torch.fft.fft2(x, norm="backward")
        mag = torch.abs(spectrum) / gain
        pha = torch.angle(spectrum)
        enhanced = torch.complex(mag * torch.cos(pha), mag * torch.sin(pha))
        return torch.fft.ifft2(enhanced, s=(height, width), norm="backward").real


def tables(n, bins, dtype=torch.float32):
    """cos and sin of 2*pi*j*k/n for j < n (rows) and k < bins (columns), in `dtype`.

    Reduced in integers to the nearest quarter turn q and a remainder angle phi in [-pi/4, pi/4], so the angle is
    never rounded at more than pi/4 (float32 tables within an ulp of the float64 ones, and no Cast from float64 in
    the graph, which the fp16 converter mistypes); the axis values are exact: sin is exactly 0 at j*k = 0 and n/2
    (mod n), cos exactly 0 at n/4 and 3n/4."""
    turns = (torch.arange(n)[:, None] * torch.arange(bins)[None, :]) % n
    quarter = torch.div(4 * turns + n // 2, n, rounding_mode="floor")
    phi = (4 * turns - quarter * n).to(dtype) * (math.pi / 2) / n
    cos, sin = torch.cos(phi), torch.sin(phi)
    quarter = quarter % 4
    rotated_cos = torch.where(quarter == 0, cos, torch.where(quarter == 1, -sin, torch.where(quarter == 2, -cos, sin)))
    rotated_sin = torch.where(quarter == 0, sin, torch.where(quarter == 1, cos, torch.where(quarter == 2, -sin, -cos)))
    return rotated_cos, rotated_sin


def atan2(y, x):
    """torch.atan2 from Atan and Where (ONNX has no Atan2): a zero y of either sign gives +pi for x < 0, and
    x = y = 0 gives 0."""
    zero = x == 0
    base = torch.atan(y / torch.where(zero, torch.ones_like(x), x))
    angle = torch.where(x < 0, torch.where(y < 0, base - math.pi, base + math.pi), base)
    return torch.where(zero, torch.sign(y) * (math.pi / 2), angle)


class MatrixDFT:
    """The same operations as matrix products (see the module docstring)."""

    @staticmethod
    def _forward_h(re, im, cos_h, sin_h):
        """(cos - i sin) @ (re + i im) along H."""
        return cos_h @ re + sin_h @ im, cos_h @ im - sin_h @ re

    @staticmethod
    def _inverse_h(re, im, cos_h, sin_h):
        """(cos + i sin) @ (re + i im) along H."""
        return cos_h @ re - sin_h @ im, sin_h @ re + cos_h @ im

    @classmethod
    def rfft2(cls, x):
        height, width = x.shape[-2:]
        cos_w, sin_w = tables(width, width // 2 + 1, x.dtype)
        cos_h, sin_h = tables(height, height, x.dtype)
        return cls._forward_h(x @ cos_w, -(x @ sin_w), cos_h, sin_h)

    @classmethod
    def polar_rfft2(cls, x):
        re, im = cls.rfft2(x)
        return torch.sqrt(re * re + im * im), atan2(im, re)

    @classmethod
    def irfft2_polar(cls, mag, pha, height, width):
        cos_h, sin_h = tables(height, height, mag.dtype)
        re, im = cls._inverse_h(mag * torch.cos(pha), mag * torch.sin(pha), cos_h, sin_h)
        cos_w, sin_w = tables(width, width // 2 + 1, mag.dtype)
        # Hermitian weights: every bin but kw = 0 and kw = W/2 stands for itself and its mirror
        bins = torch.arange(width // 2 + 1)
        weight = torch.where((2 * bins) % width == 0, torch.ones_like(cos_w[0]), 2 * torch.ones_like(cos_w[0]))
        return (re @ (cos_w * weight).transpose(0, 1) - im @ (sin_w * weight).transpose(0, 1)) / (height * width)

    @classmethod
    def divide_spectrum(cls, x, gain):
        """With unitary tables (1/sqrt(N) on each axis, both ways): the same result, and the DC term of a bright
        frame (up to H*W) stays far below float16's 65504 in an fp16 build."""
        height, width = x.shape[-2:]
        cos_w, sin_w = (t / width ** 0.5 for t in tables(width, width, x.dtype))
        cos_h, sin_h = (t / height ** 0.5 for t in tables(height, height, x.dtype))
        re, im = cls._forward_h(x @ cos_w, -(x @ sin_w), cos_h, sin_h)
        re, im = cls._inverse_h(re / gain, im / gain, cos_h, sin_h)
        return re @ cos_w - im @ sin_w
