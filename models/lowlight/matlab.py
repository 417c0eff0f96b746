"""The MATLAB image functions the LIVE NIQE and BRISQUE releases call, reproduced in numpy.

imresize: MATLAB's `contributions` (kernel widened by 1/scale when shrinking with antialiasing, mirrored borders,
all-zero weight columns dropped), one dimension at a time, rows first when both scales are equal; an integer
image is rounded (half away from zero) and saturated after each dimension, as MATLAB returns each pass in the
input's class. rgb2gray and rgb2ycbcr: MATLAB's coefficients, rounded like MATLAB for uint8 input.
"""
import math

import numpy as np
import cv2
from scipy import sparse

# rgb2gray: the first row of inv([1 0.956 0.621; 1 -0.272 -0.647; 1 -1.106 1.703]), as MATLAB prints it
GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
# rgb2ycbcr's luma row (ITU-R BT.601, studio range) for values in [0, 255]
LUMA, LUMA_OFFSET = np.array([65.481, 128.553, 24.966]) / 255.0, 16.0


def cubic(x):
    """Keys' cubic convolution kernel, a = -0.5 (imresize 'bicubic')."""
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def triangle(x):
    """imresize 'bilinear'."""
    return (x + 1) * ((x >= -1) & (x < 0)) + (1 - x) * ((x >= 0) & (x <= 1))


KERNELS = {"bicubic": (cubic, 4.0), "bilinear": (triangle, 2.0)}


def contributions(in_length, out_length, scale, kernel, width, antialiasing=True):
    """(weights, 0-based indices), each out_length x taps: MATLAB imresize's contributions()."""
    if scale < 1 and antialiasing:
        h, width = (lambda x: scale * kernel(scale * x)), width / scale
    else:
        h = kernel
    x = np.arange(1, out_length + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    indices = left + np.arange(math.ceil(width) + 2)[None, :]
    weights = h(u - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _round_like(values, dtype):
    """MATLAB's conversion of doubles to an integer class: saturate, then round half away from zero."""
    info = np.iinfo(dtype)
    return np.floor(np.clip(values, info.min, info.max) + 0.5).astype(dtype)


def imresize(image, scale=None, size=None, method="bicubic", antialiasing=True):
    """MATLAB imresize(image, scale) or imresize(image, [rows cols]) for 2-D or H x W x C arrays."""
    kernel, width = KERNELS[method]
    in_shape = image.shape[:2]
    if size is None:
        scales = (float(scale), float(scale))
        size = tuple(math.ceil(s * n) for s, n in zip(scales, in_shape))
    else:
        scales = tuple(o / n for o, n in zip(size, in_shape))
    out = image.astype(np.float64)
    for dim in np.argsort(scales, kind="stable"):
        weights, indices = contributions(in_shape[dim], size[dim], scales[dim], kernel, width, antialiasing)
        rows = np.repeat(np.arange(size[dim]), weights.shape[1])
        matrix = sparse.csr_matrix((weights.ravel(), (rows, indices.ravel())), shape=(size[dim], in_shape[dim]))
        moved = np.moveaxis(out, dim, 0)
        flat = (matrix @ moved.reshape(moved.shape[0], -1)).reshape((size[dim],) + moved.shape[1:])
        out = np.moveaxis(flat, 0, dim)
        if np.issubdtype(image.dtype, np.integer):
            out = _round_like(out, image.dtype).astype(np.float64)
    return _round_like(out, image.dtype) if np.issubdtype(image.dtype, np.integer) else out


def rgb2gray(rgb):
    """MATLAB rgb2gray: uint8 in, uint8 out (rounded); float in [0, 1] or [0, 255] stays float."""
    gray = rgb[..., :3].astype(np.float64) @ GRAY
    return _round_like(gray, rgb.dtype) if np.issubdtype(rgb.dtype, np.integer) else gray


def rgb2y(rgb):
    """The Y channel of MATLAB rgb2ycbcr for uint8 RGB: 16 + (65.481 R + 128.553 G + 24.966 B) / 255, rounded."""
    return _round_like(rgb[..., :3].astype(np.float64) @ LUMA + LUMA_OFFSET, np.uint8)


def fspecial_gaussian(size=7, sigma=7 / 6):
    """The 1-D factor of MATLAB fspecial('gaussian', size, sigma), normalised: the window is its outer product
    (no value of the sizes used here falls under fspecial's eps x max cut-off)."""
    half = (size - 1) / 2
    x = np.arange(-half, half + 1)
    h = np.exp(-(x * x) / (2 * sigma * sigma))
    return h / h.sum()


BORDERS = {"replicate": cv2.BORDER_REPLICATE, "zero": cv2.BORDER_CONSTANT}


def filter_same(image, kernel, border):
    """imfilter(image, outer(kernel, kernel), 'replicate') (border "replicate") or filter2(window, image, 'same')
    (border "zero") for a separable symmetric window given by its 1-D `kernel`, in float64."""
    return cv2.sepFilter2D(image, cv2.CV_64F, kernel, kernel, borderType=BORDERS[border])
