"""A card's input size constraint (input.multiple_of), met the same way on every backend and inside tiling.

Networks that downsample by a fixed factor (Zero-DCE++ estimates its curves at 1/12 scale) need H and W to be
multiples of it. The engine never resizes for that: it reflect-pads the bottom and right edges up to the next
multiple and crops every output back, so the caller sees an output of the input's own size. A model without
the constraint (multiple_of 1) gets its session back unwrapped and pays nothing.
"""
import numpy as np

from modelzoo.backends import feed


def padded(length, multiple):
    """`length` rounded up to a multiple of `multiple`."""
    return -(-int(length) // multiple) * multiple


def pad_to_multiple(x, multiple):
    """Reflect-pad float NCHW `x` at the bottom and right so H and W are multiples of `multiple`."""
    height, width = x.shape[2:]
    extra_h, extra_w = padded(height, multiple) - height, padded(width, multiple) - width
    if not (extra_h or extra_w):
        return x
    if extra_h >= height or extra_w >= width:
        # numpy reflects repeatedly when the pad is wider than the image, so tiny inputs work too
        return np.pad(x, ((0, 0), (0, 0), (0, extra_h), (0, extra_w)), mode="reflect")
    # one copy and two edge fills: a third of np.pad's time on a video frame
    out = np.empty((*x.shape[:2], height + extra_h, width + extra_w), dtype=x.dtype)
    out[:, :, :height, :width] = x
    out[:, :, height:, :width] = x[:, :, height - 2:height - 2 - extra_h:-1] if extra_h else 0
    out[:, :, :, width:] = out[:, :, :, width - 2:width - 2 - extra_w:-1]
    return out


class PaddedSession:
    """Wraps a backend session: run() pads its input to the multiple and crops each output back."""

    def __init__(self, session, multiple):
        self.session = session
        self.multiple = multiple

    def run(self, x, inputs=None):
        height, width = x.shape[2:]
        padded_x = pad_to_multiple(np.asarray(x), self.multiple)
        outputs = feed(self.session, padded_x, inputs)
        if padded_x is x:
            return outputs
        scale = [o.shape[2] // padded_x.shape[2] for o in outputs]  # 1, or a super-resolution factor
        return [o[:, :, :height * s, :width * s] for o, s in zip(outputs, scale)]  # views: no copy

    def __getattr__(self, name):  # everything else (providers, device, close, ...) is the backend session's
        return getattr(self.session, name)


def wrap(session, multiple):
    return PaddedSession(session, multiple) if multiple > 1 else session
