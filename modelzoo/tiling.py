"""Run a fully convolutional model on a large image in tiles whose stitched output equals the full-frame output.

Each tile is a core of at most `tile` x `tile` pixels plus a halo on every side that has image beyond it.
A pixel of the output depends only on the input within the receptive radius r (PairLIE: 15 3x3 convolutions
in series along the N -> L/R path, r = 10). Padding at a tile's cut edge (PairLIE reflects at every layer)
corrupts at most r pixels inward from that edge, so with halo >= r the core is untouched. Where a tile
reaches the image's own border it is not cut: the tile touches the real border, the padding reflects at
the same place as in the full frame, and those pixels are exact too. Cores partition the image, so the
stitched result equals the full-frame result up to float rounding (tests: max abs diff <= 1e-5).

An image of at most tile x tile pixels runs whole, whatever its sides (a 1280x720 frame under 1024 px tiles):
memory follows the area, and the stitched result is the whole-frame one anyway. Larger images are cut into
cores of at most `tile` pixels a side. Tiles along an axis are balanced (equal cores, the last one at most a
pixel smaller), so a dynamic-shape runtime sees only a few distinct shapes. Only sessions that accept any
input size can run tiles: the torch backend and dynamic (--native) ONNX builds.
"""
import math
import os

import numpy as np

from modelzoo.backends import feed
from modelzoo.errors import ZooError

DEFAULT_TILE = 1024  # images over this squared (1 MP) run in tiles with an exact halo (`modelzoo run --tile`, eval)

MIN_HALO = 16
# Largest core side actually run: a larger --tile is split further. Peak RSS for a 4000x6000 PairLIE image
# (ONNX Runtime fp32, dynamic): 2.9 GB with 1024 px cores, 7.4 GB with 2048. Override: MODELZOO_MAX_TILE.
MAX_TILE = 1024


def max_tile():
    return int(os.environ.get("MODELZOO_MAX_TILE") or MAX_TILE)


def spans(length, tile, halo):
    """[(core_start, core_end, in_start, in_end)] along one axis of `length` pixels."""
    count = max(1, math.ceil(length / tile))
    bounds = [round(i * length / count) for i in range(count + 1)]
    return [(a, b, max(0, a - halo), min(length, b + halo)) for a, b in zip(bounds, bounds[1:])]


def plan(height, width, tile, halo):
    """The tiles for an image: [((y0, y1, iy0, iy1), (x0, x1, ix0, ix1))]."""
    return [(ys, xs) for ys in spans(height, tile, halo) for xs in spans(width, tile, halo)]


def run_tiled(session, x, tile, halo=MIN_HALO, inputs=None):
    """session.run over tiles of float32 NCHW `x` (each fed the same runtime `inputs`); returns the outputs as a
    full-frame run would.

    `tile` is the largest core side in pixels (capped at MAX_TILE); `halo` is raised to at least 16 pixels. Each output may be at
    an integer multiple of the input's resolution (a super-resolution model), the same for every tile.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ZooError(f"tiling needs an NCHW input, got shape {list(x.shape)}")
    height, width = x.shape[2:]
    halo = max(MIN_HALO, int(halo or 0))
    tile = min(tile, max_tile())  # bounded memory; exactness does not depend on the tile size
    if tile <= 0 or height * width <= tile * tile:  # by area: at most tile x tile pixels run whole
        return feed(session, x, inputs)
    if tile < 2 * halo:
        raise ZooError(f"tile {tile} is smaller than twice the halo ({halo} px); use --tile {2 * halo} or more")
    outputs = None
    for (y0, y1, iy0, iy1), (x0, x1, ix0, ix1) in plan(height, width, tile, halo):
        pieces = feed(session, np.ascontiguousarray(x[:, :, iy0:iy1, ix0:ix1]), inputs)
        if outputs is None:
            scales = [_scale(p, iy1 - iy0, ix1 - ix0) for p in pieces]
            outputs = [np.empty((*p.shape[:2], height * s, width * s), dtype=p.dtype) for p, s in zip(pieces, scales)]
        for piece, out, s in zip(pieces, outputs, scales):
            if _scale(piece, iy1 - iy0, ix1 - ix0) != s:
                raise ZooError(f"tiling: output shape {list(piece.shape)} is not {s}x the tile's")
            out[:, :, y0 * s:y1 * s, x0 * s:x1 * s] = piece[:, :, (y0 - iy0) * s:(y1 - iy0) * s,
                                                             (x0 - ix0) * s:(x1 - ix0) * s]
    return outputs


def _scale(piece, height, width):
    if piece.ndim != 4 or piece.shape[2] % height or piece.shape[2] // height != piece.shape[3] / width:
        raise ZooError(f"tiling: output shape {list(piece.shape)} is not an image at a whole multiple of the "
                       f"tile's {height}x{width}; this model cannot run tiled (use --tile 0)")
    return piece.shape[2] // height
