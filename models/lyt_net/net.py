"""LYT-Net (Brateanu et al., IEEE SPL 2025), written in torch from the official TensorFlow architecture
(tf-81cdfc5/model/arch.py, whose Keras .h5 weights are the only official ones).

On x in [-1, 1] (1x3xHxW, H and W multiples of 8):

    y, u, v = rgb_to_yuv(x)                     # tf.image.rgb_to_yuv's matrix, applied to [-1, 1] values
    u = u + Denoiser(u); v = v + Denoiser(v)    # per-chroma U-Net: 3 stride-2 convolutions, 4-head attention
                                                # at 1/8 size, nearest upsampling with skips, tanh
    lum = relu(conv3x3(y)); lum = lum + up8(MHSA(maxpool8(lum)))
    ref = conv1x1([relu(conv3x3(u)), relu(conv3x3(v))]); ref = MSEF(ref + 0.2 conv1x1(lum)) + ref
    out = tanh(conv3x3(relu(conv3x3([ref, lum]))))          # in [-1, 1]

TensorFlow details kept exactly: 'same' padding of a stride-2 3x3 convolution on an even size pads one row and
column at the bottom and right only (none at the top and left); attention tokens are the NHWC pixels in row-major
order, heads split the channels; LayerNormalization's epsilon is Keras's 1e-3; MaxPooling2D(8) and
UpSampling2D(8) (nearest). Module names follow the Keras attributes; `load_keras` maps the .h5 datasets.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

# tf.image.rgb_to_yuv: yuv = rgb @ RGB_TO_YUV (rows: R, G, B)
RGB_TO_YUV = ((0.299, -0.14714119, 0.61497538),
              (0.587, -0.28886916, -0.51496512),
              (0.114, 0.43601035, -0.10001026))


class Conv(nn.Conv2d):
    """nn.Conv2d with Keras 'same' padding and an optional activation."""

    def __init__(self, channels_in, channels_out, kernel=3, stride=1, activation=None, groups=1):
        super().__init__(channels_in, channels_out, kernel, stride, padding=0, groups=groups)
        self.activation = activation

    def forward(self, x):
        x = super().forward(F.pad(x, self.same_pads(x)))
        return self.activation(x) if self.activation else x

    def same_pads(self, x):
        """TensorFlow's 'same': total padding k - s (k - n % s when s does not divide n), the odd one at the
        bottom/right (a stride-2 3x3 convolution on an even size pads 0 above and 1 below)."""
        stride, kernel = self.stride[0], self.kernel_size[0]
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad order: width, then height
            total = max(kernel - stride if size % stride == 0 else kernel - size % stride, 0)
            pads += [total // 2, total - total // 2]
        return pads


class MultiHeadSelfAttention(nn.Module):
    """Dense q, k, v on every pixel's channels, softmax(q k^T / sqrt(head_dim)) v per head, a Dense to combine."""

    def __init__(self, embed_size, num_heads=4):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = embed_size // num_heads
        self.query_dense = nn.Linear(embed_size, embed_size)
        self.key_dense = nn.Linear(embed_size, embed_size)
        self.value_dense = nn.Linear(embed_size, embed_size)
        self.combine_heads = nn.Linear(embed_size, embed_size)

    def forward(self, x):
        batch, channels, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # B x HW x C, row-major pixels as TF's NHWC reshape

        def heads(t):
            return t.reshape(batch, -1, self.num_heads, self.head_dim).transpose(1, 2)

        query, key, value = (heads(dense(tokens)) for dense in (self.query_dense, self.key_dense, self.value_dense))
        logits = query @ key.transpose(-2, -1) / math.sqrt(self.head_dim)  # float32 sqrt(depth), as TF
        attention = (torch.softmax(logits, dim=-1) @ value).transpose(1, 2).reshape(batch, -1, channels)
        return self.combine_heads(attention).transpose(1, 2).reshape(batch, channels, height, width)


class Denoiser(nn.Module):
    def __init__(self, filters=16):
        super().__init__()
        self.conv1 = Conv(1, filters, activation=F.relu)
        self.conv2 = Conv(filters, filters, stride=2, activation=F.relu)
        self.conv3 = Conv(filters, filters, stride=2, activation=F.relu)
        self.conv4 = Conv(filters, filters, stride=2, activation=F.relu)
        self.bottleneck = MultiHeadSelfAttention(filters, num_heads=4)
        self.output_layer = Conv(1, 1, activation=torch.tanh)
        self.res_layer = Conv(filters, 1, activation=torch.tanh)

    def forward(self, inputs):
        x1 = self.conv1(inputs)
        x2 = self.conv2(x1)
        x3 = self.conv3(x2)
        x4 = self.conv4(x3)
        x = _up(self.bottleneck(x4), 2)
        x = _up(x3 + x, 2)
        x = _up(x2 + x, 2)
        x = self.res_layer(x + x1)
        return self.output_layer(x + inputs)


def _up(x, factor):
    return F.interpolate(x, scale_factor=factor, mode="nearest")


class SEBlock(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x):
        scale = torch.tanh(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * scale[:, :, None, None]


class MSEFBlock(nn.Module):
    """out = depthwise3x3(LN(x)) * SE(LN(x)) + x, LN over channels with Keras's epsilon 1e-3."""

    def __init__(self, filters):
        super().__init__()
        self.layer_norm = nn.LayerNorm(filters, eps=1e-3)
        self.depthwise_conv = Conv(filters, filters, groups=filters)
        self.se_attn = SEBlock(filters)

    def forward(self, inputs):
        x = self.layer_norm(inputs.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.depthwise_conv(x) * self.se_attn(x) + inputs


class LYT(nn.Module):
    """forward(x in [-1, 1]) -> enhanced in [-1, 1] (tanh), as the official model's output."""

    def __init__(self, filters=32):
        super().__init__()
        self.process_y = Conv(1, filters, activation=F.relu)
        self.process_cb = Conv(1, filters, activation=F.relu)
        self.process_cr = Conv(1, filters, activation=F.relu)
        self.denoiser_cb = Denoiser(filters // 2)
        self.denoiser_cr = Denoiser(filters // 2)
        self.lum_mhsa = MultiHeadSelfAttention(filters, num_heads=4)
        self.lum_conv = Conv(filters, filters, kernel=1)
        self.ref_conv = Conv(filters * 2, filters, kernel=1)
        self.msef = MSEFBlock(filters)
        self.recombine = Conv(filters * 2, filters, activation=F.relu)
        self.final_adjustments = Conv(filters, 3, activation=torch.tanh)
        self.register_buffer("rgb_to_yuv", torch.tensor(RGB_TO_YUV).t().reshape(3, 3, 1, 1), persistent=False)

    def forward(self, x):
        y, cb, cr = F.conv2d(x, self.rgb_to_yuv).split(1, dim=1)
        cb = self.denoiser_cb(cb) + cb
        cr = self.denoiser_cr(cr) + cr
        lum = self.process_y(y)
        lum = lum + _up(self.lum_mhsa(F.max_pool2d(lum, 8)), 8)
        ref = self.ref_conv(torch.cat([self.process_cb(cb), self.process_cr(cr)], dim=1))
        shortcut = ref
        ref = self.msef(ref + 0.2 * self.lum_conv(lum)) + shortcut
        return self.final_adjustments(self.recombine(torch.cat([ref, lum], dim=1)))


class DeployOutputs(nn.Module):
    """The export patch: [0, 1] in and out, as every zoo model: x * 2 - 1 in, (out + 1) / 2 out (the official
    loader's / 127.5 - 1 and test.py's (output + 1) / 2)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        return ((self.network(x * 2 - 1) + 1) / 2,)


# Keras .h5 datasets (group path inside the file, without ':0') -> torch parameter names. The official test.py
# builds denoiser_cb before denoiser_cr, so they are the file's denoiser_1 and denoiser_2.
def _conv(keras, torch_name):
    return {f"{keras}/kernel": f"{torch_name}.weight", f"{keras}/bias": f"{torch_name}.bias"}


def _dense(keras, torch_name):
    return {f"{keras}/kernel": f"{torch_name}.weight", f"{keras}/bias": f"{torch_name}.bias"}


def _denoiser(group, first_conv, first_dense, attention, name):
    names = {}
    for i, layer in enumerate(("conv1", "conv2", "conv3", "conv4", "output_layer", "res_layer")):
        names.update(_conv(f"{group}/conv2d_{first_conv + i}", f"{name}.{layer}"))
    for i, layer in enumerate(("query_dense", "key_dense", "value_dense", "combine_heads")):
        names.update(_dense(f"{group}/{attention}/dense_{first_dense + i}", f"{name}.bottleneck.{layer}"))
    return names


KERAS_NAMES = {
    **_conv("sequential/conv2d_18", "process_y"),
    **_conv("sequential_1/conv2d_19", "process_cb"),
    **_conv("sequential_2/conv2d_20", "process_cr"),
    **_denoiser("denoiser_1", 6, 4, "multi_head_self_attention_1", "denoiser_cb"),
    **_denoiser("denoiser_2", 12, 8, "multi_head_self_attention_2", "denoiser_cr"),
    **{f"multi_head_self_attention_3/multi_head_self_attention_3/dense_{12 + i}/{p}": f"lum_mhsa.{layer}.{t}"
       for i, layer in enumerate(("query_dense", "key_dense", "value_dense", "combine_heads"))
       for p, t in (("kernel", "weight"), ("bias", "bias"))},
    **_conv("conv2d_21/conv2d_21", "lum_conv"),
    **_conv("conv2d_22/conv2d_22", "ref_conv"),
    "mff_block/mff_block/layer_normalization/gamma": "msef.layer_norm.weight",
    "mff_block/mff_block/layer_normalization/beta": "msef.layer_norm.bias",
    "mff_block/mff_block/depthwise_conv2d/depthwise_kernel": "msef.depthwise_conv.weight",
    "mff_block/mff_block/depthwise_conv2d/bias": "msef.depthwise_conv.bias",
    **_dense("mff_block/mff_block/se_block/dense_16", "msef.se_attn.fc1"),
    **_dense("mff_block/mff_block/se_block/dense_17", "msef.se_attn.fc2"),
    **_conv("conv2d_23/conv2d_23", "recombine"),
    **_conv("conv2d_24/conv2d_24", "final_adjustments"),
}


def keras_to_torch(array, keras_name):
    """Keras layouts to torch: Conv2D (kh, kw, in, out) -> (out, in, kh, kw); DepthwiseConv2D (kh, kw, in, 1) ->
    (in, 1, kh, kw); Dense (in, out) -> (out, in); vectors unchanged."""
    tensor = torch.as_tensor(array)
    if keras_name.endswith("depthwise_kernel"):
        return tensor.permute(2, 3, 0, 1).contiguous()
    if tensor.ndim == 4:
        return tensor.permute(3, 2, 0, 1).contiguous()
    if tensor.ndim == 2:
        return tensor.t().contiguous()
    return tensor


def torch_state(keras):
    """A torch state dict from the .h5's {dataset path: array} (paths such as 'conv2d_21/conv2d_21/kernel:0')."""
    found = {path.split(":")[0]: array for path, array in keras.items()}
    missing = sorted(set(KERAS_NAMES) - set(found))
    unexpected = sorted(set(found) - set(KERAS_NAMES))
    if missing or unexpected:
        raise RuntimeError(f"Keras weights do not match LYT-Net: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return {KERAS_NAMES[k]: keras_to_torch(found[k], k) for k in KERAS_NAMES}
