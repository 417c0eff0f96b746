"""No-reference image quality: NIQE and BRISQUE as LIVE's MATLAB releases compute them (lower is better).

NIQE (Mittal, Soundararajan, Bovik 2012; niqe_release computequality.m): rgb2gray, crop to whole 96x96
blocks, MSCN coefficients (7x7 Gaussian, sigma 7/6, replicated borders), 18 AGGD features per block at full
and half size (imresize 0.5, bicubic with antialiasing), a multivariate Gaussian fitted to the blocks and its
distance to the pristine-image model shipped with the release.
BRISQUE (Mittal, Moorthy, Bovik 2011; BRISQUE_release brisquescore.m): rgb2gray, MSCN coefficients on the
whole image (zero borders, as filter2 'same'), 18 GGD/AGGD features at two scales, written with %f and scaled
by svm-scale (printed with %g) to the release's ranges, then its epsilon-SVR (RBF) model.
Parameter files in iqa_params/ (see its PROVENANCE.md); nothing here unpickles.
"""
import functools
import json
import math
from pathlib import Path

import numpy as np
from scipy.special import gamma

from .matlab import filter_same, fspecial_gaussian, imresize, rgb2gray, rgb2y

PARAMS = Path(__file__).parent / "iqa_params"
BLOCK = 96  # the release's recommended block size, no overlap
GAMMAS = np.arange(0.2, 10.0005, 0.001)  # MATLAB 0.2:0.001:10 (9801 values)
WINDOW = fspecial_gaussian(7, 7 / 6)

# the AGGD fit's ratio (Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))) and the GGD fit's ratio (its inverse)
R_AGGD = gamma(2 / GAMMAS) ** 2 / (gamma(1 / GAMMAS) * gamma(3 / GAMMAS))
R_GGD = (gamma(1 / GAMMAS) * gamma(3 / GAMMAS)) / gamma(2 / GAMMAS) ** 2


def to_gray(image, convert="gray"):
    """A float64 luminance image in [0, 255] from uint8 RGB (MATLAB rgb2gray, or rgb2ycbcr's Y) or gray."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3:
        if image.dtype != np.uint8:
            raise ValueError(f"RGB input must be uint8, got {image.dtype}")
        image = rgb2gray(image) if convert == "gray" else rgb2y(image)
    return image.astype(np.float64)


def mscn(image, border):
    """(mean-subtracted contrast-normalised coefficients, local sigma)."""
    mu = filter_same(image, WINDOW, border)
    sigma = np.sqrt(np.abs(filter_same(image * image, WINDOW, border) - mu * mu))
    return (image - mu) / (sigma + 1), sigma


def nearest(increasing, value, last=False):
    """MATLAB's [~, i] = min(abs(grid - value)) on an increasing grid: the first of equally near points (the
    last with `last`, for a grid reversed from a decreasing one), in O(log n) instead of a scan."""
    i = int(np.searchsorted(increasing, value))
    candidates = [j for j in (i - 1, i) if 0 <= j < len(increasing)]
    distances = [abs(increasing[j] - value) for j in candidates]
    best = min(distances)
    chosen = [j for j, d in zip(candidates, distances) if d == best]
    return chosen[-1] if last else chosen[0]


def aggd(values):
    """estimateaggdparam.m: (alpha, left std, right std). An empty side gives NaN stds and, as MATLAB's min
    ignores NaN, alpha = 0.2 (the first grid value)."""
    positive, negative = np.maximum(values, 0.0), np.minimum(values, 0.0)  # sums by BLAS dot products
    n_left, n_right = np.count_nonzero(negative), np.count_nonzero(positive)
    left_squares, right_squares = float(negative @ negative), float(positive @ positive)
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = math.sqrt(left_squares / n_left) if n_left else math.nan
        right_std = math.sqrt(right_squares / n_right) if n_right else math.nan
        ratio = left_std / right_std
        square_mean = (left_squares + right_squares) / values.size
        mean_abs = (positive.sum() - negative.sum()) / values.size
        rhat = mean_abs**2 / square_mean if square_mean else math.nan
        rhatnorm = rhat * (ratio**3 + 1) * (ratio + 1) / (ratio**2 + 1) ** 2
    alpha = GAMMAS[0] if math.isnan(rhatnorm) else GAMMAS[nearest(R_AGGD, rhatnorm)]
    return alpha, left_std, right_std


def ggd(values):
    """estimateggdparam.m: (alpha, sigma)."""
    sigma_sq = np.mean(values * values)
    mean_abs = np.mean(np.abs(values))
    rho = sigma_sq / mean_abs**2 if mean_abs else math.nan
    alpha = GAMMAS[0] if math.isnan(rho) else GAMMAS[len(R_GGD) - 1 - nearest(R_GGD[::-1], rho, last=True)]
    return alpha, math.sqrt(sigma_sq)


def _beta_factor(alpha):
    return math.sqrt(gamma(1 / alpha) / gamma(3 / alpha))


# ---------------------------------------------------------------------------------------------------- NIQE


@functools.cache
def niqe_model():
    with np.load(PARAMS / "niqe_pris_params.npz", allow_pickle=False) as data:
        return data["mu_pris_param"].ravel(), data["cov_pris_param"]


def niqe_block_features(block):
    """computefeature.m: 18 features of one block's MSCN coefficients."""
    alpha, left, right = aggd(block.ravel())
    features = [alpha, (left + right) / 2 * _beta_factor(alpha)]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        pair = block * np.roll(block, shift, axis=(0, 1))
        alpha, left, right = aggd(pair.ravel())
        factor = _beta_factor(alpha)
        beta_left, beta_right = left * factor, right * factor
        features += [alpha, (beta_right - beta_left) * gamma(2 / alpha) / gamma(1 / alpha), beta_left, beta_right]
    return features


def niqe(image, convert="gray"):
    """NIQE of uint8 RGB (converted with MATLAB rgb2gray, or `convert="y"` for rgb2ycbcr's Y) or a gray image
    in [0, 255]. Lower is better. Needs at least 96x96 pixels."""
    image = to_gray(image, convert)
    rows, cols = image.shape[0] // BLOCK, image.shape[1] // BLOCK
    if rows == 0 or cols == 0:
        raise ValueError(f"NIQE needs at least {BLOCK}x{BLOCK} pixels, got {image.shape[1]}x{image.shape[0]}")
    image = image[:rows * BLOCK, :cols * BLOCK]
    features = []
    for scale in (1, 2):
        coefficients, _ = mscn(image, "replicate")
        size = BLOCK // scale
        features.append([niqe_block_features(coefficients[r * size:(r + 1) * size, c * size:(c + 1) * size])
                         for c in range(cols) for r in range(rows)])
        if scale == 1:
            image = imresize(image, 0.5)
    features = np.hstack([np.asarray(f, dtype=np.float64) for f in features])
    mu_pristine, cov_pristine = niqe_model()
    with np.errstate(invalid="ignore"):
        mu = np.nanmean(features, axis=0)
    complete = features[~np.isnan(features).any(axis=1)]  # nancov: rows with a NaN are left out
    cov = np.cov(complete, rowvar=False)
    difference = mu_pristine - mu
    return float(np.sqrt(difference @ np.linalg.pinv((cov_pristine + cov) / 2) @ difference))


# ------------------------------------------------------------------------------------------------- BRISQUE


@functools.cache
def brisque_model():
    """(support vectors, coefficients, gamma, rho) of the release's SVR and the (min, max) feature ranges."""
    header, vectors, coefficients = {}, [], []
    lines = (PARAMS / "brisque_svm.txt").read_text().splitlines()
    start = lines.index("SV") + 1
    for line in lines[:start - 1]:
        key, _, value = line.partition(" ")
        header[key] = value
    features = 36
    for line in lines[start:]:
        fields = line.split()
        if not fields:
            continue
        coefficients.append(float(fields[0]))
        vector = np.zeros(features)
        for field in fields[1:]:
            index, value = field.split(":")
            vector[int(index) - 1] = float(value)
        vectors.append(vector)
    ranges = json.loads((PARAMS / "brisque_range.json").read_text())
    return (np.array(vectors), np.array(coefficients), float(header["gamma"]), float(header["rho"]),
            np.array(ranges["min"]), np.array(ranges["max"]))


def brisque_features(image):
    """brisque_feature.m: 36 features of a gray image in [0, 255] (float64)."""
    features = []
    for scale in (1, 2):
        coefficients, _ = mscn(image, "zero")
        flat = coefficients.ravel()
        alpha, sigma = ggd(flat)
        features += [alpha, sigma**2]
        for shift in ((0, 1), (1, 0), (1, 1), (-1, 1)):
            pair = flat * np.roll(coefficients, shift, axis=(0, 1)).ravel()
            alpha, left, right = aggd(pair)
            mean = (right - left) * gamma(2 / alpha) / gamma(1 / alpha) * _beta_factor(alpha)
            features += [alpha, mean, left**2, right**2]
        if scale == 1:
            image = imresize(image, 0.5)
    return np.array(features)


def svm_scale(features, low, high):
    """svm-scale -r allrange of features printed with %f, its output printed with %g (as the release's files)."""
    written = np.array([float(f"{value:f}") for value in features])
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = -1 + 2 * (written - low) / (high - low)
    scaled = np.where(written == low, -1.0, np.where(written == high, 1.0, scaled))
    return np.array([float(f"{value:g}") for value in scaled])


def brisque(image):
    """BRISQUE of uint8 RGB (MATLAB rgb2gray) or a gray image in [0, 255]. Lower is better (about 0-100)."""
    vectors, coefficients, rbf_gamma, rho, low, high = brisque_model()
    x = svm_scale(brisque_features(to_gray(image)), low, high)
    distances = np.sum((vectors - x) ** 2, axis=1)
    return float(coefficients @ np.exp(-rbf_gamma * distances) - rho)
