"""IAT, the Illumination Adaptive Transformer (Cui et al., BMVC 2022), written from the paper and the official
code's layer layout (IAT_enhance/model/{IAT_main,blocks,global_net}.py) without timm.

Two branches read the same input x (1x3xHxW):

    local:   mul, add = LocalNet(x)                 # per-pixel maps, 3 ConvBlocks each, full resolution
             high = x * mul + add
    global:  gamma, color = GlobalNet(x)            # one gamma (1) and colour matrix (3x3) per image, from
                                                    # 10 learned queries attending to all tokens of x / 4
    output:  clamp(color @ high, 1e-8, 1) ** gamma  # per pixel; in (0, 1] because gamma > 0

Parameter names match the official state dict (161 tensors), so the weights load with strict=True. Only the
test-time path is written: DropPath and Dropout are identities at inference, and trunc_normal_ init is
irrelevant once the weights are loaded. The official Local_pred_S also builds an unused CBlock_ln and
SwinTransformerBlock as locals (never registered, not in the weights); they are left out.

The official "channel-first" normalisation (Aff_channel) flattens NCHW to tokens, mixes channels with a
CxC matrix and scales/shifts per channel; here it is the same arithmetic done in NCHW (a 1x1 convolution with
that matrix), which avoids the transposes and exports as a plain Conv.
"""
import torch
import torch.nn.functional as F
from torch import nn


class ChannelAffine(nn.Module):
    """Aff_channel(channel_first=True): y = (color @ x) * alpha + beta at every pixel."""

    def __init__(self, dim):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))
        self.color = nn.Parameter(torch.eye(dim))

    def forward(self, x):
        dim = self.color.shape[0]
        mixed = F.conv2d(x, self.color.view(dim, dim, 1, 1))
        return mixed * self.alpha.view(1, dim, 1, 1) + self.beta.view(1, dim, 1, 1)


class ConvMlp(nn.Module):
    """1x1 convolution, GELU, 1x1 convolution (the official CMlp)."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class ConvBlock(nn.Module):
    """The official CBlock_ln: a transformer-style block whose 'attention' is a depthwise 5x5 convolution.

        x = x + dwconv3x3(x)
        x = x + gamma_1 * conv1x1(dwconv5x5(conv1x1(norm1(x))))
        x = x + gamma_2 * mlp(norm2(x))
    """

    def __init__(self, dim=16, mlp_ratio=4):
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = ChannelAffine(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.attn = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.norm2 = ChannelAffine(dim)
        self.mlp = ConvMlp(dim, dim * mlp_ratio)
        self.gamma_1 = nn.Parameter(1e-4 * torch.ones(1, dim, 1, 1))
        self.gamma_2 = nn.Parameter(1e-4 * torch.ones(1, dim, 1, 1))

    def forward(self, x):
        x = x + self.pos_embed(x)
        x = x + self.gamma_1 * self.conv2(self.attn(self.conv1(self.norm1(x))))
        return x + self.gamma_2 * self.mlp(self.norm2(x))


class LocalNet(nn.Module):
    """The official Local_pred_S: per-pixel multiplier (ReLU, >= 0) and offset (tanh, in [-1, 1]) maps."""

    def __init__(self, in_dim=3, dim=16, blocks=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, dim, 3, padding=1)
        self.relu = nn.LeakyReLU(negative_slope=0.2)
        self.mul_blocks = nn.Sequential(*[ConvBlock(dim) for _ in range(blocks)])
        self.add_blocks = nn.Sequential(*[ConvBlock(dim) for _ in range(blocks)])
        self.mul_end = nn.Sequential(nn.Conv2d(dim, 3, 3, padding=1), nn.ReLU())
        self.add_end = nn.Sequential(nn.Conv2d(dim, 3, 3, padding=1), nn.Tanh())

    def forward(self, x):
        features = self.relu(self.conv1(x))
        mul = self.mul_end(self.mul_blocks(features) + features)
        add = self.add_end(self.add_blocks(features) + features)
        return mul, add


class Mlp(nn.Module):
    """Linear, GELU, Linear on tokens (timm's Mlp without dropout)."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class QueryAttention(nn.Module):
    """Multi-head attention of `queries` learned query vectors (not computed from x) over the N tokens of x."""

    def __init__(self, dim=64, num_heads=4, queries=10):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Parameter(torch.ones(1, queries, dim))
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        batch, tokens, dim = x.shape
        queries, heads = self.q.shape[1], self.num_heads
        k = self.k(x).reshape(batch, tokens, heads, dim // heads).permute(0, 2, 1, 3)
        v = self.v(x).reshape(batch, tokens, heads, dim // heads).permute(0, 2, 1, 3)
        q = self.q.expand(batch, -1, -1).reshape(batch, queries, heads, dim // heads).permute(0, 2, 1, 3)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(batch, queries, dim))


class QueryBlock(nn.Module):
    """The official query_SABlock. The attention output replaces the tokens (no residual): N tokens in,
    `queries` tokens out."""

    def __init__(self, dim=64, num_heads=4, mlp_ratio=4):
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = QueryAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x):
        x = x + self.pos_embed(x)
        x = self.attn(self.norm1(x.flatten(2).transpose(1, 2)))
        return x + self.mlp(self.norm2(x))


class ConvEmbedding(nn.Module):
    """Two stride-2 3x3 convolutions with BatchNorm (GELU between): 3 -> 64 channels at 1/4 resolution.
    Zero padding 1 and stride 2 accept any height and width (ceil(H / 4) x ceil(W / 4) tokens)."""

    def __init__(self, in_channels=3, out_channels=64):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_channels, out_channels // 2, 3, stride=2, padding=1),
            nn.BatchNorm2d(out_channels // 2),
            nn.GELU(),
            nn.Conv2d(out_channels // 2, out_channels, 3, stride=2, padding=1),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x):
        return self.proj(x)


class GlobalNet(nn.Module):
    """The official Global_pred: query 0 gives gamma (B, 1), queries 1..9 the colour matrix (B, 3, 3), each
    a learned offset to gamma_base / color_base."""

    def __init__(self, in_channels=3, dim=64, num_heads=4):
        super().__init__()
        self.gamma_base = nn.Parameter(torch.ones(1))
        self.color_base = nn.Parameter(torch.eye(3))
        self.conv_large = ConvEmbedding(in_channels, dim)
        self.generator = QueryBlock(dim, num_heads)
        self.gamma_linear = nn.Linear(dim, 1)
        self.color_linear = nn.Linear(dim, 1)

    def forward(self, x):
        tokens = self.generator(self.conv_large(x))
        gamma = self.gamma_linear(tokens[:, 0]) + self.gamma_base
        color = self.color_linear(tokens[:, 1:]).reshape(-1, 3, 3) + self.color_base
        return gamma, color


class IAT(nn.Module):
    """forward(x in [0, 1]) -> (mul, add, enhanced), like the official IAT.forward (enhanced is its img_high).

    `signed_input`: map x to [-1, 1] (x * 2 - 1) before the network. The LOL-v2 weights were trained and are
    evaluated that way: the official evaluation_lol_v2.py loads inputs with Normalize((0.5,)*3, (0.5,)*3)
    (data_loaders/lol.py, normalize=True) and scores the output as it is against ground truth in [0, 1].
    """

    def __init__(self, signed_input=False):
        super().__init__()
        self.signed_input = signed_input
        self.local_net = LocalNet()
        self.global_net = GlobalNet()

    def forward(self, x):
        if self.signed_input:
            x = x * 2 - 1
        mul, add = self.local_net(x)
        high = x * mul + add
        gamma, color = self.global_net(x)
        # colour matrix per pixel: out[i] = sum_j color[i, j] * high[j] (the official tensordot over channels),
        # as three broadcast products: a reshape back from a matmul would freeze H and W in traced graphs (ncnn)
        weights = color[:, :, :, None, None]  # B x 3 (i) x 3 (j) x 1 x 1
        mixed = weights[:, :, 0] * high[:, 0:1] + weights[:, :, 1] * high[:, 1:2] + weights[:, :, 2] * high[:, 2:3]
        return mul, add, torch.clamp(mixed, 1e-8, 1.0) ** gamma.view(-1, 1, 1, 1)


class DeployOutputs(nn.Module):
    """The export patch: forward returns only the enhanced image, as a 1-tuple (the deploy outputs).

    The official evaluation scores img_high as it is (no clamp after the gamma): the clamp to [1e-8, 1]
    before the gamma already keeps it in (0, 1] for the gamma > 0 every weight file produces.
    """

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        return (self.network(x)[2],)
