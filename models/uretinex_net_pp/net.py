"""URetinex-Net++'s network (Wu et al., TPAMI 2025), written from the paper and the official code's layer layout.

The unfolding and the illumination adjustment are URetinex-Net's (imported from its plugin, trained anew); what is
new at test time is the fusion: instead of the last round's reflectance, the reflectances of all three rounds are
blended per pixel and per colour by softmax weights that a small network with an enhanced spatial attention (ESA)
block predicts, and the blend is multiplied by the adjusted illumination:
  enhanced = sum_t softmax_t(W(R_1, R_2, R_3))_c * R_t,c  *  Adjust(L_3, ratio).
Parameter names match the official state dicts (`conv1.weight`, `esa_layer.conv_max.weight`, ...).
"""
import torch
import torch.nn.functional as F
from torch import nn

from modelzoo_models.uretinex_net.net import Adjust, Unfolding, conv


class SpatialAttention(nn.Module):
    """The ESA block: a strided, max-pooled branch sees a wide context, is upsampled back (bilinear) and gates the
    features by a sigmoid mask."""

    def __init__(self, channels):
        super().__init__()
        f = channels // 4
        self.conv1 = conv(channels, f, 1)
        self.conv_f = conv(f, f, 1)
        self.conv_max = conv(f, f, 3, padding=1)
        self.conv2 = conv(f, f, 3, stride=2)
        self.conv3 = conv(f, f, 3, padding=1)
        self.conv3_ = conv(f, f, 3, padding=1)
        self.conv4 = conv(f, channels, 1)
        self.relu = nn.ReLU()

    def forward(self, x):
        c1_ = self.conv1(x)
        c1 = self.conv2(c1_)
        v_max = F.max_pool2d(c1, kernel_size=7, stride=3)
        c3 = self.relu(self.conv3(self.relu(self.conv_max(v_max))))
        c3 = F.interpolate(self.conv3_(c3), (x.size(2), x.size(3)), mode="bilinear")
        return x * torch.sigmoid(self.conv4(c3 + self.conv_f(c1_)))


class Fusion(nn.Module):
    """The official ESAFusion3: three reflectances -> per-pixel, per-colour softmax weights over the rounds."""

    def __init__(self, inputs=3, width=32):
        super().__init__()
        self.inputs = inputs
        for index in range(1, inputs + 1):
            setattr(self, f"conv{index}", conv(3, width, 3, padding=1))
        self.esa_layer = SpatialAttention(width * inputs)
        self.re_map_layer = conv(width * inputs, width, 1)
        self.weight_layer = conv(width, 3 * inputs, 1)
        self.leaky_relu = nn.LeakyReLU(0.2)

    def forward(self, reflectances):
        features = [self.leaky_relu(getattr(self, f"conv{k + 1}")(r)) for k, r in enumerate(reflectances)]
        x = self.esa_layer(torch.cat(features, dim=1))
        logits = self.weight_layer(self.leaky_relu(self.re_map_layer(x)))
        # logits channel 3k + c: round k, colour c; the softmax runs over the rounds, per colour
        channels = []
        for c in range(3):
            weights = torch.softmax(torch.cat([logits[:, 3 * k + c:3 * k + c + 1] for k in range(self.inputs)], 1), 1)
            channels.append(sum(reflectances[k][:, c:c + 1] * weights[:, k:k + 1] for k in range(self.inputs)))
        return torch.cat(channels, dim=1)


class URetinexNetPP(nn.Module):
    """forward(image, ratio) -> enhanced = Fusion(R_1, R_2, R_3) * Adjust(L_3, ratio)."""

    def __init__(self, gamma=0.5, lamda=0.5, offset=0.05, rounds=3):
        super().__init__()
        self.unfolding = Unfolding(gamma, lamda, offset, rounds)
        self.adjust = Adjust()
        self.fusion = Fusion(inputs=rounds)

    def forward(self, image, ratio):
        rounds = self.unfolding(image)
        illumination = self.adjust(rounds[-1][1], ratio)
        return self.fusion([r for r, _ in rounds]) * illumination


def gt_ratio(network, image, reference, min_ratio=1.0):
    """The official test.py's ratio (the fusion checkpoint's net_L is False, so no decomposition of the ground
    truth): mean(max_c(ground truth) / (L + 1e-4)), at least min_ratio (the checkpoint's 1.0)."""
    with torch.no_grad():
        _, illumination = network.unfolding(image)[-1]
        high = torch.max(reference, dim=1, keepdim=True)[0]
        return float(max((high / (illumination + 0.0001)).mean(), min_ratio))
