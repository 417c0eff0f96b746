"""input.multiple_of: the engine reflect-pads to the multiple and crops back, on every backend and inside tiling;
a model without the constraint gets its session unwrapped."""
import numpy as np
import pytest

from modelzoo.padding import PaddedSession, pad_to_multiple, padded, wrap
from modelzoo.tiling import run_tiled


class Strict:
    """A fake session that refuses sizes off the multiple and returns a scale-`s` output of its input + 1."""

    def __init__(self, multiple, scale=1):
        self.multiple, self.scale, self.seen = multiple, scale, []

    def run(self, x):
        self.seen.append(x.shape[2:])
        assert x.shape[2] % self.multiple == 0 and x.shape[3] % self.multiple == 0, x.shape
        return [np.repeat(np.repeat(x + 1, self.scale, axis=2), self.scale, axis=3), x[:, :1]]


def test_padded_lengths():
    assert [padded(n, 12) for n in (1, 11, 12, 13, 400)] == [12, 12, 12, 24, 408]


def test_reflect_padding_keeps_the_image_and_mirrors_the_edge():
    x = np.arange(2 * 5 * 7, dtype=np.float32).reshape(1, 2, 5, 7)
    out = pad_to_multiple(x, 4)
    assert out.shape == (1, 2, 8, 8)
    np.testing.assert_array_equal(out[:, :, :5, :7], x)
    np.testing.assert_array_equal(out[:, :, 5, :7], x[:, :, 3])  # reflect: row 4 is the mirror axis
    tiny = np.ones((1, 3, 1, 2), dtype=np.float32)
    assert pad_to_multiple(tiny, 12).shape == (1, 3, 12, 12)  # wider than the image: reflected repeatedly


@pytest.mark.parametrize("scale", [1, 2])
def test_outputs_come_back_at_the_input_size(scale):
    x = np.random.default_rng(0).random((1, 3, 37, 50), dtype=np.float32)
    session = PaddedSession(Strict(12, scale), 12)
    big, small = session.run(x)
    assert big.shape == (1, 3, 37 * scale, 50 * scale) and small.shape == (1, 1, 37, 50)
    np.testing.assert_allclose(big[:, :, ::scale, ::scale], x + 1)
    assert session.seen == [(48, 60)]


def test_no_constraint_costs_nothing():
    inner = Strict(1)
    assert wrap(inner, 1) is inner
    x = np.zeros((1, 3, 24, 36), dtype=np.float32)
    assert PaddedSession(inner, 12).run(x)[0] is not None and inner.seen == [(24, 36)]


def test_every_tile_is_padded():
    x = np.random.default_rng(1).random((1, 3, 150, 170), dtype=np.float32)
    inner = Strict(12)
    (out, _) = run_tiled(PaddedSession(inner, 12), x, tile=64, halo=16)
    np.testing.assert_allclose(out, x + 1)
    assert len(inner.seen) > 1 and all(h % 12 == 0 and w % 12 == 0 for h, w in inner.seen)
