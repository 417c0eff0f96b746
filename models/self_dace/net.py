"""Self-DACE's Stage-I light nets (Wen et al.), written from the papers and the official code's layer layout
(John-Wendell/Self-DACE @ ec0c033, codes_SelfDACE/new_version: stage_1_lit/model.py and the light_net of
stage_2_denoising/model.py).

Both estimate, per pixel and per colour channel, the parameters of an adaptive curve and apply it step after
step. A brightening step with amplitude a and level b,

    x <- x + a * sigmoid(k * (b - 0.1 - x)) * x * (b - x) / b

lifts a pixel below b towards b (x (b - x) / b), gated off by the sigmoid for pixels near or above b; the
official code writes the gate as 1 / (1 + exp(-k * (b - 0.1 - x))), which is that sigmoid: written as one it
exports as one operator, and exp cannot overflow in fp16.

  LitNet (Self-DACE++ Stage-I, "normal size"; Epoch70.pth's net_decay, as test_1stage.py runs it with
  light_net(mode='test', layers=12)): features f = ReLU(conv(x - 1/2)), then eleven brightening steps (k = 15)
  that each advance f = ReLU(backbone(f)) -- one shared convolution -- and read a = sigmoid(conv_a(f)),
  b = 0.3 + 0.7 sigmoid(conv_b(f)); then one darkening step with its own convolutions (backbone_1, conv_a_1,
  conv_b_1), a = sigmoid(.) and b = 0.1 + 0.2 sigmoid(.):

    x <- x - a * sigmoid(15 * (x - (1 - b) - 0.1)) * (1 - x) * (x - (1 - b)) / b

  which tones down pixels above 1 - b. The parameters depend on the input image only, never on x.

  SevenCurveNet (the Stage-I net Stage II starts from, pre_train_1.pth; stage_2_denoising's light_net): seven
  3x3 convolutions in a chain on the image, each with its own a = tanh(conv_a) and b = 0.5 + 0.5 sigmoid(.),
  then seven brightening steps (k = 10). The official forward computes the first b from e_conv1_a, not
  e_conv1_b (which the weights hold but nothing uses); that is kept, since those are the weights it was
  trained with.

Neither network clamps its output; the official test scripts save it with torchvision's save_image, which
clamps to [0, 1]. Parameter names are the official ones, so the weights load strictly.
"""
import torch
from torch import nn

FEATURES = 32
LIT_BRIGHTENING_STEPS = 11  # light_net(layers=12): layers - layers_high, layers_high = 1
SEVEN_CURVE_STEPS = 7


def _conv3x3(channels_in, channels_out):
    return nn.Conv2d(channels_in, channels_out, kernel_size=3, stride=1, padding=1)


def brighten(x, amplitude, level, sharpness):
    """One brightening step: lifts x towards `level`, gated off where x is above level - 0.1."""
    gate = torch.sigmoid(sharpness * (level - 0.1 - x))
    return x + amplitude * gate * x * (level - x) / level


def darken(x, amplitude, width):
    """Self-DACE++'s highlight step: lowers x above 1 - width, gated on above 1.1 - width."""
    knee = 1 - width
    gate = torch.sigmoid(15 * (x - knee - 0.1))
    return x - amplitude * gate * (1 - x) * (x - knee) / width


class LitNet(nn.Module):
    """Self-DACE++ Stage-I; forward returns the official (enhanced, amplitudes, levels): the image after the
    twelve steps, and the twelve 3-channel amplitude and level maps (the darkening amplitude negated, as the
    official code returns it)."""

    def __init__(self, brightening_steps=LIT_BRIGHTENING_STEPS):
        super().__init__()
        self.brightening_steps = brightening_steps
        self.input = _conv3x3(3, FEATURES)
        self.backbone = _conv3x3(FEATURES, FEATURES)
        self.conv_a = _conv3x3(FEATURES, 3)
        self.conv_b = _conv3x3(FEATURES, 3)
        self.backbone_1 = _conv3x3(FEATURES, FEATURES)
        self.conv_a_1 = _conv3x3(FEATURES, 3)
        self.conv_b_1 = _conv3x3(FEATURES, 3)

    def forward(self, image):
        features = torch.relu(self.input(image - 0.5))
        x, amplitudes, levels = image, [], []
        for _ in range(self.brightening_steps):
            features = torch.relu(self.backbone(features))
            amplitude = torch.sigmoid(self.conv_a(features))
            level = 0.3 + 0.7 * torch.sigmoid(self.conv_b(features))
            x = brighten(x, amplitude, level, sharpness=15)
            amplitudes.append(amplitude)
            levels.append(level)
        features = torch.relu(self.backbone_1(features))
        amplitude = torch.sigmoid(self.conv_a_1(features))
        width = 0.1 + 0.2 * torch.sigmoid(self.conv_b_1(features))
        x = darken(x, amplitude, width)
        return x, torch.cat([*amplitudes, -amplitude], 1), torch.cat([*levels, width], 1)


class SevenCurveNet(nn.Module):
    """The seven-curve Stage-I net; forward returns the official (enhanced, amplitudes, levels), the maps as
    21 channels each."""

    def __init__(self):
        super().__init__()
        for step in range(1, SEVEN_CURVE_STEPS + 1):
            self.add_module(f"e_conv{step}", _conv3x3(3 if step == 1 else FEATURES, FEATURES))
            self.add_module(f"e_conv{step}_a", _conv3x3(FEATURES, 3))
            self.add_module(f"e_conv{step}_b", _conv3x3(FEATURES, 3))

    def forward(self, image):
        features, amplitudes, levels = image, [], []
        for step in range(1, SEVEN_CURVE_STEPS + 1):
            features = torch.relu(getattr(self, f"e_conv{step}")(features))
            raw_amplitude = getattr(self, f"e_conv{step}_a")(features)
            # step 1 reads its level from e_conv1_a too, as the official forward does
            raw_level = raw_amplitude if step == 1 else getattr(self, f"e_conv{step}_b")(features)
            amplitudes.append(torch.tanh(raw_amplitude))
            levels.append(0.5 + 0.5 * torch.sigmoid(raw_level))
        x = image
        for amplitude, level in zip(amplitudes, levels):
            x = brighten(x, amplitude, level, sharpness=10)
        return x, torch.cat(amplitudes, 1), torch.cat(levels, 1)


class DeployOutputs(nn.Module):
    """The export patch: forward returns only the enhanced image, as a 1-tuple (the curve maps are
    intermediate)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, image):
        enhanced, _, _ = self.network(image)
        return (enhanced,)
