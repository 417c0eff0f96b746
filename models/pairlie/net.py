"""PairLIE's network (Fu et al., CVPR 2023), written from the paper and the official code's layer layout.

Three sub-nets share one shape: five 3x3 convolutions 3->64->64->64->64->out, each after a ReflectionPad2d(1),
ReLU between, sigmoid at the end. N denoises the input; L (1 channel) and R (3 channels) are the Retinex
illumination and reflectance. Parameter names match the official state dict (`L_net.L_net.1.weight`, ...).
"""
from torch import nn


def _branch(out_channels, width=64):
    layers = []
    channels = [3, width, width, width, width, out_channels]
    for index, (cin, cout) in enumerate(zip(channels, channels[1:])):
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=0)]
        layers.append(nn.ReLU(inplace=True) if index < 4 else nn.Sigmoid())
    return nn.Sequential(*layers)


class _Branch(nn.Module):
    def __init__(self, attribute, out_channels):
        super().__init__()
        self.attribute = attribute
        setattr(self, attribute, _branch(out_channels))

    def forward(self, x):
        return getattr(self, self.attribute)(x)


class PairLIENet(nn.Module):
    """forward returns (L, R, X) like the official net; the deploy patch keeps (L, R)."""

    def __init__(self):
        super().__init__()
        self.L_net = _Branch("L_net", 1)
        self.R_net = _Branch("R_net", 3)
        self.N_net = _Branch("N_net", 3)

    def forward(self, image):
        x = self.N_net(image)
        return self.L_net(x), self.R_net(x), x


class DeployOutputs(nn.Module):
    """The export patch: forward returns only the deploy outputs L and R.

    The reference zoo asks users to edit upstream net.py line 88 to `return L, R`; wrapping replaces that edit.
    """

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, image):
        illumination, reflectance, _ = self.network(image)
        return illumination, reflectance
