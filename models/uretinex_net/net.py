"""URetinex-Net's network (Wu et al., CVPR 2022), written from the paper and the official code's layer layout.

A Retinex model unfolded into a few rounds of an optimisation: I = R * L.
  round 0:  P, Q = Decom(I)                                  (initial reflectance and illumination)
  round t:  P = (I * Q + g_t * R) / (Q * Q + g_t)            (closed-form least-squares updates,
            Q = (sum_c I_c * P_c + l_t * L) / (sum_c P_c^2 + l_t)   g_t = gamma + offset * t, l_t = lamda + offset * t)
  every round: R = Restore(P, Q), L = Illuminate(Q)          (learned priors replace the proximal steps)
then the illumination is brightened by a learned adjustment that takes the ratio as a second input channel:
  enhanced = Adjust(L, ratio) * R.
The ratio is a network input (one float per image), not post-processing. Parameter names match the official
state dicts (`decom.0.weight`, `se_layer.fc.0.weight`, ...), one sub-module per official checkpoint entry.
"""
import torch
from torch import nn


def conv(cin, cout, kernel, stride=1, padding=0):
    return nn.Conv2d(cin, cout, kernel_size=kernel, stride=stride, padding=padding)


class Decom(nn.Module):
    """Four 3x3 convolutions (3 -> 32 -> 32 -> 32 -> 4), LeakyReLU(0.2) between, ReLU last: R (3) and L (1)."""

    def __init__(self):
        super().__init__()
        self.decom = nn.Sequential(conv(3, 32, 3, padding=1), nn.LeakyReLU(0.2), conv(32, 32, 3, padding=1),
                                   nn.LeakyReLU(0.2), conv(32, 32, 3, padding=1), nn.LeakyReLU(0.2),
                                   conv(32, 4, 3, padding=1), nn.ReLU())

    def forward(self, image):
        out = self.decom(image)
        return out[:, 0:3], out[:, 3:4]


class SqueezeExcite(nn.Module):
    """Channel attention: global average, Linear(c, c/16) ReLU Linear(c/16, c) sigmoid, scale (no biases)."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction, bias=False), nn.ReLU(),
                                nn.Linear(channels // reduction, channels, bias=False), nn.Sigmoid())

    def forward(self, x):
        b, c = x.shape[:2]
        return x * self.fc(self.avg_pool(x).view(b, c)).view(b, c, 1, 1)


class Restore(nn.Module):
    """The reflectance prior (official HalfDnCNNSE with concat_L): R = P + noise(P, Q)."""

    def __init__(self):
        super().__init__()
        self.conv1 = conv(3, 32, 3, padding=1)
        self.conv2 = conv(1, 32, 3, padding=1)
        self.se_layer = SqueezeExcite(64)
        for index in range(3, 8):
            setattr(self, f"conv{index}", conv(64, 64, 3, padding=1))
        self.conv8 = conv(64, 3, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, reflectance, illumination):
        x = torch.cat([self.relu(self.conv1(reflectance)), self.relu(self.conv2(illumination))], dim=1)
        x = self.se_layer(x)
        for index in range(3, 8):
            x = self.relu(getattr(self, f"conv{index}")(x))
        return reflectance + self.conv8(x)


class Illuminate(nn.Module):
    """The illumination prior (official Illumination_Alone): four 5x5 convolutions of 32, LeakyReLU(0.2), a 1x1
    to one channel, ReLU."""

    def __init__(self):
        super().__init__()
        self.conv1 = conv(1, 32, 5, padding=2)
        self.conv2 = conv(32, 32, 5, padding=2)
        self.conv3 = conv(32, 32, 5, padding=2)
        self.conv4 = conv(32, 32, 5, padding=2)
        self.conv5 = conv(32, 1, 1)
        self.leaky_relu = nn.LeakyReLU(0.2)
        self.relu = nn.ReLU()

    def forward(self, x):
        for index in range(1, 5):
            x = self.leaky_relu(getattr(self, f"conv{index}")(x))
        return self.relu(self.conv5(x))


class Adjust(nn.Module):
    """The illumination adjustment (official Adjust_naive): [L, ratio map] -> four 5x5 convolutions (2 -> 32 -> 32
    -> 32 -> 1), LeakyReLU(0.2) between, ReLU last."""

    def __init__(self):
        super().__init__()
        self.conv1 = conv(2, 32, 5, padding=2)
        self.conv2 = conv(32, 32, 5, padding=2)
        self.conv3 = conv(32, 32, 5, padding=2)
        self.conv4 = conv(32, 1, 5, padding=2)
        self.leaky_relu = nn.LeakyReLU(0.2)
        self.relu = nn.ReLU()

    def forward(self, illumination, ratio):
        """ratio: float32 tensor of shape [1], spread over the illumination map as the official code's
        torch.ones(L.shape) * ratio."""
        ratio_map = torch.ones_like(illumination) * ratio.reshape(-1, 1, 1, 1)
        x = self.conv1(torch.cat([illumination, ratio_map], dim=1))
        x = self.conv2(self.leaky_relu(x))
        x = self.conv3(self.leaky_relu(x))
        return self.relu(self.conv4(self.leaky_relu(x)))


class Unfolding(nn.Module):
    """Decomposition, then `rounds` rounds of the P/Q updates and the R/L priors; returns every round's (R, L)."""

    def __init__(self, gamma, lamda, offset=0.05, rounds=3):
        super().__init__()
        self.gamma, self.lamda, self.offset, self.rounds = gamma, lamda, offset, rounds
        self.decom = Decom()
        self.restore = Restore()
        self.illuminate = Illuminate()

    def forward(self, image):
        results = []
        for t in range(self.rounds):
            if t == 0:
                p, q = self.decom(image)
            else:
                w_p = self.gamma + self.offset * t
                w_q = self.lamda + self.offset * t
                p = (image * q + w_p * r) / (w_p + q * q)
                q = (image[:, 0:1] * p[:, 0:1] + image[:, 1:2] * p[:, 1:2] + image[:, 2:3] * p[:, 2:3]
                     + w_q * l) / ((p[:, 0:1] * p[:, 0:1] + p[:, 1:2] * p[:, 1:2] + p[:, 2:3] * p[:, 2:3]) + w_q)
            r = self.restore(p, q)
            l = self.illuminate(q)
            results.append((r, l))
        return results


class URetinexNet(nn.Module):
    """forward(image, ratio) -> enhanced = Adjust(L, ratio) * R, with (R, L) from the last unfolding round: the
    official test.py. Its evaluate.py also decomposes the ground truth (init_high.pth), only to derive the ratio:
    see gt_ratio."""

    def __init__(self, gamma=0.1, lamda=0.5, offset=0.05, rounds=3):
        super().__init__()
        self.unfolding = Unfolding(gamma, lamda, offset, rounds)
        self.adjust = Adjust()

    def forward(self, image, ratio):
        reflectance, illumination = self.unfolding(image)[-1]
        return self.adjust(illumination, ratio) * reflectance


def gt_ratio(network, decom_high, image, reference):
    """The official evaluate.py's ratio: 1 / (mean(L_low / (L_high + 1e-4)) + 1e-4), L_low from the network's
    unfolding of the low-light image, L_high from the normal-light decomposition of the ground truth."""
    with torch.no_grad():
        _, illumination = network.unfolding(image)[-1]
        _, high = decom_high(reference)
        return float(1 / ((illumination / (high + 0.0001)).mean() + 0.0001))


def tensor(image):
    """RGB float32 HxWx3 (numpy) -> 1x3xHxW torch tensor."""
    return torch.from_numpy(image.transpose(2, 0, 1).copy()).unsqueeze(0)


class DeployOutputs(nn.Module):
    """The export patch: the enhanced image as the one output of a tuple, as sessions return a list of outputs."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, image, ratio):
        return (self.network(image, ratio),)
