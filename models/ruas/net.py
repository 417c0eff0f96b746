"""RUAS's test-time network (Liu et al., CVPR 2021), written from the paper and the official code's layer layout.

RUAS unrolls a Retinex model: three illumination estimation modules (IEM) refine an illumination map t and
the enhanced image u = clamp(input / t, 0, 1); a noise removal module (NRM) then subtracts a predicted noise
map from the last u. Each module's cell is a searched "distillation" block (SearchBlock below) whose seven
operations were fixed by the architecture search (the official genotypes IEM and NRM):

    IEM k:  t_hat = maxpool2x2(input)                          k = 0
            t_hat = maxpool2x2(u) - 0.5 * (u - input)          k > 0 (u: the previous module's output)
            t = clamp(sigmoid(cell(t_hat)), 0.001, 1);  u = clamp(input / t, 0, 1)
    NRM:    denoised = u - conv3x3(cells(conv3x3(u)))          3 cells at 6 channels; not clamped

`maxpool2x2` is the official `max_operation`: the maximum over each pixel and its right, lower and lower-right
neighbours, zero beyond the bottom and right borders (a 2x2 window, stride 1, padded on one side only).

Which stage is "the" output depends on the weights: the official test.py saves the denoised image for the LOL
weights and the last IEM's u (the denoiser computed and discarded) for the MIT-5K (`upe`) and DarkFace (`dark`)
weights. RUASNet takes that stage as `output` and DeployOutputs exports only it.

Parameter names match the official state dicts (`enhance_net.iems.{k}.cell.*`, `denoise_net.*`), so a
checkpoint loads with strict=True. Every official checkpoint holds its own fine-tuned denoiser; the
separate `model/denoise.pt` is only the training initialisation (the official Network loads it in __init__,
then test.py's strict load of the checkpoint overwrites it).
"""
import torch
from torch import nn

STAGES = ("enhanced", "denoised")


def _conv(channels_in, channels_out, kernel_size, dilation=1):
    """A 'same'-size convolution with bias (padding dilation * (k - 1) / 2), as every official layer is."""
    return nn.Conv2d(channels_in, channels_out, kernel_size, padding=dilation * (kernel_size - 1) // 2,
                     dilation=dilation)


class Op(nn.Module):
    """One searched operation: a convolution in `.op` (the official parameter name), optionally residual."""

    def __init__(self, channels, kernel_size, dilation=1, residual=False):
        super().__init__()
        self.op = _conv(channels, channels, kernel_size, dilation)
        self.residual = residual

    def forward(self, x):
        return self.op(x) + x if self.residual else self.op(x)


# The searched operations the two genotypes use; 'skip_connect' is the identity.
OPS = {
    "skip_connect": lambda c: nn.Identity(),
    "conv_3x3": lambda c: Op(c, 3),
    "resconv_1x1": lambda c: Op(c, 1, residual=True),
    "resdilconv_3x3": lambda c: Op(c, 3, dilation=2, residual=True),
}
# The official genotypes, in the cell's order c1_d, c1_r, c2_d, c2_r, c3_d, c3_r, c4 (genotypes.py).
IEM_GENOTYPE = ("skip_connect", "resconv_1x1", "resdilconv_3x3", "conv_3x3", "conv_3x3", "skip_connect", "conv_3x3")
NRM_GENOTYPE = ("resconv_1x1", "resconv_1x1", "resdilconv_3x3", "skip_connect", "resconv_1x1", "resconv_1x1",
                "skip_connect")


class SearchBlock(nn.Module):
    """The searched cell: a residual chain of three steps, each also 'distilled' to a side branch; the three
    distilled features and the chain's last step are concatenated and fused by a 1x1 convolution."""

    def __init__(self, channels, genotype):
        super().__init__()
        names = ("c1_d", "c1_r", "c2_d", "c2_r", "c3_d", "c3_r", "c4")
        for name, op in zip(names, genotype, strict=True):
            setattr(self, name, OPS[op](channels))
        self.act = nn.LeakyReLU(negative_slope=0.05)
        self.c5 = _conv(4 * channels, channels, 1)

    def forward(self, x):
        distilled, remaining = [], x
        for d, r in ((self.c1_d, self.c1_r), (self.c2_d, self.c2_r), (self.c3_d, self.c3_r)):
            distilled.append(self.act(d(remaining)))
            remaining = self.act(r(remaining) + remaining)
        distilled.append(self.act(self.c4(remaining)))
        return self.c5(torch.cat(distilled, dim=1))


def max_2x2(x):
    """Max over each pixel and its right/lower neighbours, zero-padded at the bottom and right (official
    `max_operation`). Written as pad + max-pool so it exports as two standard ops."""
    return nn.functional.max_pool2d(nn.functional.pad(x, (0, 1, 0, 1)), kernel_size=2, stride=1)


class IEM(nn.Module):
    """One illumination estimation module: returns (u, t) = (enhanced image, illumination)."""

    def __init__(self, channels=3):
        super().__init__()
        self.cell = SearchBlock(channels, IEM_GENOTYPE)

    def forward(self, input, u=None):
        t_hat = max_2x2(input) if u is None else max_2x2(u) - 0.5 * (u - input)
        t = torch.clamp(torch.sigmoid(self.cell(t_hat)), 0.001, 1.0)
        return torch.clamp(input / t, 0.0, 1.0), t


class EnhanceNetwork(nn.Module):
    """Three unrolled IEMs; returns the lists of every module's u and t (the official forward's u_list, t_list)."""

    def __init__(self, modules=3, channels=3):
        super().__init__()
        self.iems = nn.ModuleList(IEM(channels) for _ in range(modules))

    def forward(self, input):
        u_list, t_list, u = [], [], None
        for iem in self.iems:
            u, t = iem(input, u)
            u_list.append(u)
            t_list.append(t)
        return u_list, t_list


class DenoiseNetwork(nn.Module):
    """The noise removal module: returns (u - noise, noise), not clamped (the official test clips when saving)."""

    def __init__(self, cells=3, channels=6):
        super().__init__()
        self.stem = _conv(3, channels, 3)
        self.nrms = nn.ModuleList(SearchBlock(channels, NRM_GENOTYPE) for _ in range(cells))
        self.activate = nn.Sequential(_conv(channels, 3, 3))

    def forward(self, u):
        feature = self.stem(u)
        for cell in self.nrms:
            feature = cell(feature)
        noise = self.activate(feature)
        return u - noise, noise


class RUASNet(nn.Module):
    """The official `Network` without its losses and optimisers; forward returns (enhanced, denoised).

    `output` names the stage the official test saves for these weights ('denoised' for lol, 'enhanced' for
    upe and dark); only DeployOutputs uses it, so forward always runs the full network like the official code.
    """

    def __init__(self, output="denoised"):
        super().__init__()
        if output not in STAGES:
            raise ValueError(f"output must be one of {STAGES}, not {output!r}")
        self.output = output
        self.enhance_net = EnhanceNetwork()
        self.denoise_net = DenoiseNetwork()

    def forward(self, input):
        u_list, _ = self.enhance_net(input)
        denoised, _ = self.denoise_net(u_list[-1])
        return u_list[-1], denoised


class DeployOutputs(nn.Module):
    """The export patch: the one image the official test saves for these weights, as a 1-tuple, in [0, 1].

    'enhanced' runs only the IEMs (the official test computes the denoiser and discards it, so it is left out of
    the graph). 'denoised' is clamped to [0, 1] in the graph, as the official save_images clips before writing:
    the deploy output then has the same range for every variant, which fp16 and int8 builds rely on.
    """

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, input):
        u_list, _ = self.network.enhance_net(input)
        if self.network.output == "enhanced":
            return (u_list[-1],)
        denoised, _ = self.network.denoise_net(u_list[-1])
        return (torch.clamp(denoised, 0.0, 1.0),)
