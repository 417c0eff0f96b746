"""CoLIE (Chobola et al., ECCV 2024): no weights; each image is enhanced by fitting a small implicit neural
representation to it, written from the paper and the official code (ctom2/colie @ a80f73c).

    v        = HSV value of rgb / max(rgb)                      (hue and saturation kept)
    v_lr     = v resized to down_size x down_size (nearest)
    residual = SIREN(window x window patch of v_lr around each pixel, pixel coordinates in [0, 1]^2)
    illu     = residual + v_lr                                 fitted for `epochs` Adam steps to the loss
               alpha |illu - v_lr|^2 + beta TV(illu) + gamma exposure(illu, level) + delta mean(v_lr / illu)
    v_out    = guided filter (radius 1) of v_lr / illu, upsampled to v's size with v as the guide
    output   = HSV -> RGB of (h, s, v_out), divided by its maximum

The SIREN (the official `INF(patch_dim=window**2, num_layers=4, hidden_dim=256, add_layer=2)`): a patch
branch window^2 -> 256 -> 128 and a coordinate branch 2 -> 256 -> 128, each layer sin(30 (W x + b)),
concatenated, then 256 -> 256 (sine) -> 1 (sigmoid). Its parameters are drawn from a torch.Generator seeded
with `seed`, in the order and with the distributions of the official constructor (nn.Linear's defaults, then
SIREN's uniform weights), so seeding the official script's global generator with the same number gives the
same network, and the same output.

The output is sensitive to the last bit: the guided filter's eps = 1e-8 divides rounding noise of the
cumulative-sum box filter in flat regions, so a 1.2e-7 change in the fitted image moved output pixels by 7e-5
(measured; the official code's own fitted image differs that much between 1 and 2 threads). Nothing here is therefore rewritten in an
algebraically equal but differently rounded form: the fit runs the official operations in the official order,
and equals the official output exactly (max abs difference 0), on the same machine and thread count.

Where the time goes (profiled), and what is done about it without changing a bit:
- The 100 steps of forward and backward passes through 256 x 256 = 65,536 points are all the work (matrix
  products ~60%, sines, cosines and other elementwise passes ~40%); the image itself costs milliseconds.
- The official code allocates ~2 GB of fresh (points x 256) tensors per step, each a new mmap whose pages fault
  in on first touch: ~40% of its CPU time is the kernel's. Here the SIREN's forward and backward are written
  out with autograd's own operations (the same kernels, arguments and order, so the same bits) into buffers
  allocated once per image.
- With window 1 a patch is one of at most 256 values (an 8-bit image's channel maximum, over the image's
  maximum): the patch branch's two layers run once per distinct value (rows of a matrix product and of sin
  are computed the same whatever the other rows) and are gathered; the gradient's matrix products still run
  over every point, as the official ones do. This saves 2.16 G of the 8.66 G multiply-accumulates per forward
  pass, and a third of the sines.
- The last step's backward pass and Adam update are skipped: the official loop computes them, but the image it
  returns is that step's forward pass.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ZooError

W0 = 30  # SIREN's frequency factor: sin(30 (W x + b))
HIDDEN = 256
GUIDED_RADIUS = 1
GUIDED_EPS = 1e-8
EXPOSURE_PATCH = 16

# The patch branch runs on at least this many rows: BLAS takes other code paths for a few rows (one row: a
# matrix-vector product), whose rounding differs from the row's among all the points (measured here with 1-9).
MIN_DISTINCT = 64
INTEGER_SETTINGS = ("down_size", "epochs", "window", "seed")
LEARNING_RATE = 1e-5
WEIGHT_DECAY = 3e-4


def siren_layers(window):
    """(state-dict prefix, in, out, kind) of the official INF's layers, in the order its constructor makes them."""
    return [("patch_net.0", window * window, HIDDEN, "first"), ("spatial_net.0", 2, HIDDEN, "first"),
            ("patch_net.1", HIDDEN, HIDDEN // 2, "hidden"), ("spatial_net.1", HIDDEN, HIDDEN // 2, "hidden"),
            ("output_net.0", HIDDEN, HIDDEN, "hidden"), ("output_net.1", HIDDEN, 1, "last")]


def siren_init(window, seed):
    """The SIREN's parameters as {official state-dict key: tensor}, drawn as the official constructor draws them
    from the global generator: nn.Linear's kaiming-uniform weight and uniform bias, then (all but the last layer)
    the SIREN weight, U(-1/in, 1/in) for a first layer and U(-sqrt(6/in)/30, sqrt(6/in)/30) otherwise."""
    generator = torch.Generator().manual_seed(int(seed))
    params = {}
    for prefix, fan_in, fan_out, kind in siren_layers(window):
        weight, bias = torch.empty(fan_out, fan_in), torch.empty(fan_out)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
        nn.init.uniform_(bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), generator=generator)
        if kind != "last":
            bound = 1 / fan_in if kind == "first" else np.sqrt(6 / fan_in) / W0
            with torch.no_grad():
                weight.uniform_(-bound, bound, generator=generator)
        params[f"{prefix}.linear.weight"], params[f"{prefix}.linear.bias"] = weight, bias
    return params


class Workspace:
    """The fit's large tensors, allocated once per image and overwritten every step.

    The official code allocates ~2 GB of fresh (points x 256) tensors per step; on the CPU each is a new mmap
    whose pages fault in on first touch, which costs as much as the arithmetic. Here they are allocated once.
    `patches` holds the distinct patches (padded, see MIN_DISTINCT), `inverse` maps each point to its patch."""

    def __init__(self, patches, inverse, coords):
        points, device = coords.shape[0], coords.device
        self.point_patches = patches.index_select(0, inverse)  # (points, window^2), the official input
        if len(patches) < MIN_DISTINCT:
            patches = torch.cat([patches, patches[:1].expand(MIN_DISTINCT - len(patches), -1)])
        self.patches, self.inverse, self.coords = patches, inverse, coords

        def buffer(width, rows=points):
            return torch.empty(rows, width, device=device)

        distinct = len(patches)
        self.u1p_distinct, self.h1p_distinct = buffer(HIDDEN, distinct), buffer(HIDDEN, distinct)
        self.u2p_distinct, self.h2p_distinct = buffer(HIDDEN // 2, distinct), buffer(HIDDEN // 2, distinct)
        self.h1p, self.u1s, self.h1s, self.u2s = buffer(HIDDEN), buffer(HIDDEN), buffer(HIDDEN), buffer(HIDDEN // 2)
        self.cat, self.u3, self.h3, self.z4 = buffer(HIDDEN), buffer(HIDDEN), buffer(HIDDEN), buffer(1)
        self.grad_a, self.grad_b, self.grad_c = buffer(HIDDEN), buffer(HIDDEN), buffer(HIDDEN)
        self.grad_half = buffer(HIDDEN // 2)


def _sine_forward(x, weight, bias, u, h):
    """h = sin(30 (x W^T + b)) into the buffers u (the sine's argument, kept for the backward) and h, by the
    operations nn.Linear and the official SirenLayer run: addmm, a multiplication by 30, sin."""
    torch.addmm(bias, x, weight.t(), out=u)
    u.mul_(W0)
    torch.sin(u, out=h)


def _sine_grad(grad_h, cos_u, out):
    """dz = grad_h cos(u) 30 into `out`: SinBackward's grad * cos(u), then MulBackward's * 30."""
    torch.mul(grad_h, cos_u, out=out)
    out.mul_(W0)
    return out


def _linear_backward(grad_z, x, weight, grad_x=None):
    """(dW, db) of z = addmm(b, x, W^T) as AddmmBackward computes them (dW = dz^T x; db = dz summed over the
    points, keepdim, as autograd reduces a broadcast bias), and dx = dz W into grad_x when given."""
    if grad_x is not None:
        torch.mm(grad_z, weight, out=grad_x)
    return grad_z.t().mm(x), grad_z.sum(0, keepdim=True).view(-1)


class _Siren(torch.autograd.Function):
    """The official INF's forward and backward with the workspace's buffers; returns (points, 1)."""

    @staticmethod
    def forward(ctx, ws, *params):
        (w1p, b1p, w1s, b1s, w2p, b2p, w2s, b2s, w3, b3, w4, b4) = params
        half = HIDDEN // 2
        # patch branch, once per distinct patch, gathered: addmm, mul and sin give each row the value it gets
        # among all the points (the test compares the gradients, which use these, bit for bit)
        _sine_forward(ws.patches, w1p, b1p, ws.u1p_distinct, ws.h1p_distinct)
        _sine_forward(ws.h1p_distinct, w2p, b2p, ws.u2p_distinct, ws.h2p_distinct)
        torch.index_select(ws.h1p_distinct, 0, ws.inverse, out=ws.h1p)  # the backward's dW2 needs every point
        ws.cat[:, :half].copy_(torch.index_select(ws.h2p_distinct, 0, ws.inverse, out=ws.grad_half))
        _sine_forward(ws.coords, w1s, b1s, ws.u1s, ws.h1s)
        _sine_forward(ws.h1s, w2s, b2s, ws.u2s, ws.cat[:, half:])
        _sine_forward(ws.cat, w3, b3, ws.u3, ws.h3)
        torch.addmm(b4, ws.h3, w4.t(), out=ws.z4)
        out = torch.sigmoid(ws.z4)
        ctx.ws = ws
        ctx.save_for_backward(out, *params)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        """autograd's operations, in its order, on the workspace: the gradients are the official ones bit for
        bit (the test compares them after a step)."""
        ws = ctx.ws
        out, w1p, _, w1s, _, w2p, _, w2s, _, w3, _, w4, _ = ctx.saved_tensors
        half = HIDDEN // 2
        grad_z4 = torch.ops.aten.sigmoid_backward(grad_out, out)
        grad_w4, grad_b4 = _linear_backward(grad_z4, ws.h3, w4, grad_x=ws.grad_a)
        grad_z3 = _sine_grad(ws.grad_a, torch.cos(ws.u3, out=ws.grad_b), ws.grad_a)
        grad_w3, grad_b3 = _linear_backward(grad_z3, ws.cat, w3, grad_x=ws.grad_c)
        grad_cat = ws.grad_c
        # coordinate branch
        grad_z = _sine_grad(grad_cat[:, half:], torch.cos(ws.u2s, out=ws.grad_half), ws.grad_half)
        grad_w2s, grad_b2s = _linear_backward(grad_z, ws.h1s, w2s, grad_x=ws.grad_a)
        grad_z = _sine_grad(ws.grad_a, torch.cos(ws.u1s, out=ws.grad_b), ws.grad_a)
        grad_w1s, grad_b1s = _linear_backward(grad_z, ws.coords, w1s)
        # patch branch: cos(u) once per distinct patch, gathered
        torch.cos(ws.u2p_distinct, out=ws.h2p_distinct)  # the forward's values are no longer needed
        cos_u = torch.index_select(ws.h2p_distinct, 0, ws.inverse, out=ws.grad_half)
        grad_z = _sine_grad(grad_cat[:, :half], cos_u, ws.grad_half)
        grad_w2p, grad_b2p = _linear_backward(grad_z, ws.h1p, w2p, grad_x=ws.grad_a)
        torch.cos(ws.u1p_distinct, out=ws.h1p_distinct)
        cos_u = torch.index_select(ws.h1p_distinct, 0, ws.inverse, out=ws.grad_b)
        grad_z = _sine_grad(ws.grad_a, cos_u, ws.grad_a)
        grad_w1p, grad_b1p = _linear_backward(grad_z, ws.point_patches, w1p)
        return (None, grad_w1p, grad_b1p, grad_w1s, grad_b1s, grad_w2p, grad_b2p, grad_w2s, grad_b2s,
                grad_w3, grad_b3, grad_w4, grad_b4)


PARAMETER_ORDER = ("patch_net.0", "spatial_net.0", "patch_net.1", "spatial_net.1", "output_net.0", "output_net.1")


def siren(params, ws):
    """The residual illumination at every point, (points, 1)."""
    return _Siren.apply(ws, *(params[f"{layer}.linear.{kind}"] for layer in PARAMETER_ORDER
                               for kind in ("weight", "bias")))


# -- colour ---------------------------------------------------------------------------------------------------
def rgb_to_hsv(rgb):
    """(1, 3, H, W) RGB -> HSV, hue in [0, 1); hue 0 where max == min, saturation 0 where max == 0."""
    cmax, cmax_idx = torch.max(rgb, dim=1, keepdim=True)
    cmin = torch.min(rgb, dim=1, keepdim=True)[0]
    delta = cmax - cmin
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    hue = torch.where(cmax_idx == 0, ((g - b) / delta) % 6,
                      torch.where(cmax_idx == 1, (b - r) / delta + 2, (r - g) / delta + 4))
    hue = torch.where(delta == 0, torch.zeros_like(hue), hue) / 6.0
    saturation = torch.where(cmax == 0, torch.zeros_like(cmax), delta / cmax)
    return torch.cat([hue, saturation, cmax], dim=1)


# Which of (c, x, 0) each of R, G, B takes in each sixth of the hue circle.
_SECTORS = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 0, 1], [2, 1, 0], [1, 2, 0], [0, 2, 1]])


def hsv_to_rgb(hsv):
    """(1, 3, H, W) HSV -> RGB, the sector taken as int(6 hue) mod 6."""
    hue, saturation, value = hsv[:, 0:1], hsv[:, 1:2], hsv[:, 2:3]
    c = value * saturation
    x = c * (-torch.abs(hue * 6.0 % 2.0 - 1) + 1.0)
    parts = torch.cat([c, x, torch.zeros_like(c)], dim=1)
    sector = ((hue * 6.0).to(torch.uint8) % 6).long()[:, 0]  # (1, H, W); the uint8 cast wraps like the official
    order = _SECTORS.to(hsv.device)[sector].permute(0, 3, 1, 2)  # (1, 3, H, W): the part each channel takes
    return torch.gather(parts, 1, order) + (value - c)


# -- the guided filter (Wu et al., fast guided filter; box sums by cumulative sums) ---------------------------
def _box_diff(x, r, dim):
    x = x.movedim(dim, -1)
    out = torch.cat([x[..., r:2 * r + 1], x[..., 2 * r + 1:] - x[..., :-2 * r - 1],
                     x[..., -1:] - x[..., -2 * r - 1:-r - 1]], dim=-1)
    return out.movedim(-1, dim)


def box_filter(x, r):
    """Sums over (2r + 1)^2 windows clipped at the borders, as cumulative sums along H then W."""
    return _box_diff(_box_diff(x.cumsum(dim=2), r, 2).cumsum(dim=3), r, 3)


def guided_upsample(x_lr, y_lr, x_hr, r=GUIDED_RADIUS, eps=GUIDED_EPS):
    """The linear model y = A x + b fitted in each low-resolution window, A and b bilinearly upsampled
    (align_corners) and applied to the high-resolution guide; clipped to [0, 1]."""
    n = box_filter(torch.ones_like(x_lr), r)
    mean_x = box_filter(x_lr, r) / n
    mean_y = box_filter(y_lr, r) / n
    cov_xy = box_filter(x_lr * y_lr, r) / n - mean_x * mean_y
    var_x = box_filter(x_lr * x_lr, r) / n - mean_x * mean_x
    a = cov_xy / (var_x + eps)
    b = mean_y - a * mean_x
    size = x_hr.shape[-2:]
    a = F.interpolate(a, size, mode="bilinear", align_corners=True)
    b = F.interpolate(b, size, mode="bilinear", align_corners=True)
    return torch.clip(a * x_hr + b, 0, 1)


# -- the loss ---------------------------------------------------------------------------------------------------
def total_variation(x):
    h, w = x.shape[2], x.shape[3]
    h_tv = torch.pow(x[:, :, 1:, :] - x[:, :, :h - 1, :], 2).sum()
    w_tv = torch.pow(x[:, :, :, 1:] - x[:, :, :, :w - 1], 2).sum()
    return 2 * (h_tv / ((h - 1) * w) + w_tv / (h * (w - 1))) / x.shape[0]


def exposure(x, level):
    """Mean squared distance of the 16 x 16 block means' square roots from `level`."""
    mean = F.avg_pool2d(x, EXPOSURE_PATCH) ** 0.5
    return torch.abs(torch.mean(torch.pow(mean - torch.tensor([level], dtype=x.dtype, device=x.device), 2)))


def coordinates(size):
    """(size^2, 2) points (column, row) / (size - 1), row-major as the official np.meshgrid grid."""
    grid = np.dstack(np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size)))
    return torch.from_numpy(grid).float().reshape(-1, 2)


def patches_of(v_lr, window):
    """(size^2, window^2) reflect-padded window x window neighbourhoods of each pixel, row-major."""
    padded = F.pad(v_lr, [window // 2] * 4, mode="reflect") if window > 1 else v_lr
    return F.unfold(padded, window).squeeze(0).t()


def distinct_patches(patches):
    """(distinct rows, index of each point's row). With window 1 a patch is one of at most 256 values; larger
    windows are rarely repeated, and torch.unique over rows costs more than it saves: kept as they are."""
    if patches.shape[1] == 1:
        distinct, inverse = torch.unique(patches.view(-1), return_inverse=True)
        return distinct.view(-1, 1), inverse
    return patches, torch.arange(len(patches), device=patches.device)


def fit_loss(illu, fixed, v_lr, level, alpha, beta, gamma, delta):
    """The official loss of the illumination `illu` and the enhanced `fixed` = v_lr / (illu + 1e-4), built in
    the official statement order: autograd adds up the gradients reaching `illu` in an order that follows it,
    and float addition is not associative."""
    loss_spa = torch.mean(torch.abs(torch.pow(illu - v_lr, 2)))
    loss_tv = total_variation(illu)
    loss_exp = torch.mean(exposure(illu, level))
    loss_sparsity = torch.mean(fixed)
    return loss_spa * alpha + loss_tv * beta + loss_exp * gamma + loss_sparsity * delta


def fit_value(v_lr, down_size, epochs, window, level, alpha, beta, gamma, delta, seed):
    """v_lr / illu after fitting the SIREN for `epochs` steps: the enhanced low-resolution value channel."""
    device = v_lr.device
    params = {k: p.to(device).requires_grad_() for k, p in siren_init(window, seed).items()}
    optimizer = torch.optim.Adam(params.values(), lr=LEARNING_RATE, betas=(0.9, 0.999), weight_decay=WEIGHT_DECAY)
    distinct, inverse = distinct_patches(patches_of(v_lr, window))
    ws = Workspace(distinct, inverse, coordinates(down_size).to(device))
    for step in range(epochs):
        optimizer.zero_grad()
        illu = siren(params, ws).view(1, 1, down_size, down_size) + v_lr
        fixed = v_lr / (illu + 1e-4)
        if step == epochs - 1:
            return fixed.detach()  # the official loop steps the optimiser once more, and never uses it
        fit_loss(illu, fixed, v_lr, level, alpha, beta, gamma, delta).backward()
        optimizer.step()
    raise ValueError(f"epochs: at least 1 step is needed, got {epochs}")


def enhance(rgb, down_size, epochs, window, level, alpha, beta, gamma, delta, seed):
    """One (1, 3, H, W) RGB image (any positive scale) -> the enhanced image, (1, 3, H, W) in [0, 1].

    The settings are the official CLI's (level is its --L); seed seeds the SIREN's initialisation."""
    rgb = rgb / torch.max(rgb)
    hsv = rgb_to_hsv(rgb)
    v = hsv[:, 2:3]
    v_lr = F.interpolate(v, size=(down_size, down_size))
    fixed_lr = fit_value(v_lr, down_size, epochs, window, level, alpha, beta, gamma, delta, seed)
    v_out = guided_upsample(v_lr, fixed_lr, v)
    out = hsv_to_rgb(torch.cat([hsv[:, :2], v_out], dim=1))
    return out / torch.max(out)


class CoLIE(nn.Module):
    """forward(image, *settings) -> (enhanced,): fits a fresh seeded SIREN to each image of the batch.

    `defaults` names the settings in the order forward takes them after the image (one-element tensors, as
    the engine feeds a card's runtime inputs) and gives the value of each one not passed. No parameters: the
    fit makes its own, with gradients enabled even when the caller runs under torch.inference_mode or no_grad.
    The image may be on any scale (8-bit values, or [0, 1]): it is divided by its maximum first."""

    def __init__(self, defaults):
        super().__init__()
        self.defaults = dict(defaults)

    def forward(self, image, *settings):
        values = dict(self.defaults)
        values.update((name, float(value.reshape(-1)[0])) for name, value in zip(self.defaults, settings))
        values = {name: int(round(value)) if name in INTEGER_SETTINGS else value for name, value in values.items()}
        if values["window"] % 2 == 0:
            raise ZooError(f"window: CoLIE's context window must be odd (1, 3, 5 or 7), got {values['window']}")
        with torch.inference_mode(False), torch.enable_grad():
            out = torch.cat([enhance(img.clone().float()[None], **values) for img in image])
        return (out.to(image.dtype),)
