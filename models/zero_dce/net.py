"""Zero-DCE's network (Guo et al., CVPR 2020), written from the paper and the official model.py's layer layout.

DCE-Net estimates, per pixel and per colour channel, the parameters of eight light-enhancement curves and
applies them one after the other (the paper's iterative quadratic curve, eq. 4):

    LE(x; a) = x + a * (x^2 - x)        a in [-1, 1]: monotonic and keeps [0, 1] inside [0, 1]

    x1 = ReLU(conv(input))              seven 3x3 convolutions, 32 features, zero padding 1, no down-sampling
    x2 = ReLU(conv(x1)); x3 = ReLU(conv(x2)); x4 = ReLU(conv(x3))
    x5 = ReLU(conv([x3, x4])); x6 = ReLU(conv([x2, x5]))    symmetric skip concatenations
    r  = tanh(conv([x1, x6]))           24 channels: the curve maps a1..a8, three channels each
    enhanced = LE(...LE(LE(input; a1); a2)...; a8)

The official test script keeps the second of the three returned tensors (the image after all eight curves)
and saves it with torchvision's save_image, which clamps to [0, 1] and rounds to uint8; the network itself
does not clamp. Parameter names (e_conv1 ... e_conv7) are the official ones, so Epoch99.pth loads strictly.
"""
import torch
from torch import nn

FEATURES = 32
ITERATIONS = 8


def _conv3x3(channels_in, channels_out):
    return nn.Conv2d(channels_in, channels_out, kernel_size=3, stride=1, padding=1)


def curve(x, alpha):
    """One light-enhancement curve LE(x; alpha) = x + alpha * (x^2 - x).

    x * x is bit-identical to the official torch.pow(x, 2) in torch, and exports as a two-input multiply
    instead of a one-input Pow/square, which ncnn would run in place on its input blob.
    """
    return x + alpha * (x * x - x)


class ZeroDCE(nn.Module):
    """DCE-Net; forward returns the official (enhance_image_1, enhance_image, r): the image after four curves,
    after all eight (the enhanced output), and the 24 curve-parameter maps."""

    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()
        self.e_conv1 = _conv3x3(3, FEATURES)
        self.e_conv2 = _conv3x3(FEATURES, FEATURES)
        self.e_conv3 = _conv3x3(FEATURES, FEATURES)
        self.e_conv4 = _conv3x3(FEATURES, FEATURES)
        self.e_conv5 = _conv3x3(2 * FEATURES, FEATURES)
        self.e_conv6 = _conv3x3(2 * FEATURES, FEATURES)
        self.e_conv7 = _conv3x3(2 * FEATURES, 3 * ITERATIONS)

    def forward(self, x):
        x1 = self.relu(self.e_conv1(x))
        x2 = self.relu(self.e_conv2(x1))
        x3 = self.relu(self.e_conv3(x2))
        x4 = self.relu(self.e_conv4(x3))
        x5 = self.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = self.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        r = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        halfway = None
        for index, alpha in enumerate(torch.split(r, 3, dim=1)):
            x = curve(x, alpha)
            if index == ITERATIONS // 2 - 1:
                halfway = x
        return halfway, x, r


class DeployOutputs(nn.Module):
    """The export patch: forward returns only the enhanced image (after all eight curves) as a 1-tuple.

    The half-way image and the curve maps are intermediate results nobody post-processes; leaving them out
    keeps the exported graph to what the card's one output needs.
    """

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        _, enhanced, _ = self.network(x)
        return (enhanced,)
