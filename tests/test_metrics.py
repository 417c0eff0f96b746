"""The SSIM used for scoring equals scikit-image's MATLAB-style SSIM."""
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from conftest import LOL, needs_shared
from modelzoo import imaging, metrics


def reference_ssim(prediction, truth):
    return structural_similarity(prediction.astype(np.float64), truth.astype(np.float64), channel_axis=2,
                                 data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


@pytest.mark.parametrize("shape", [(11, 11, 3), (37, 53, 3), (64, 48, 3)])
def test_ssim_equals_scikit_image_on_random_images(shape):
    rng = np.random.default_rng(sum(shape))
    truth = rng.integers(0, 256, shape, dtype=np.uint8)
    prediction = np.clip(truth + rng.normal(0, 20, shape), 0, 255).astype(np.float32)
    assert metrics.ssim(prediction, truth) == pytest.approx(reference_ssim(prediction, truth), abs=1e-10)
    assert metrics.ssim(truth, truth) == pytest.approx(1.0)


@needs_shared
def test_ssim_equals_scikit_image_on_a_lol_pair():
    low, high = imaging.read_rgb(LOL / "low" / "22.png"), imaging.read_rgb(LOL / "high" / "22.png")
    brightened = np.clip(low.astype(np.float32) * 4.0, 0, 255)
    assert metrics.ssim(brightened, high) == pytest.approx(reference_ssim(brightened, high), abs=1e-10)


def test_psnr():
    truth = np.full((4, 4, 3), 100, np.uint8)
    assert metrics.psnr(truth.astype(np.float32) + 1.0, truth) == pytest.approx(10 * np.log10(255**2))
    assert metrics.psnr(truth, truth) == float("inf")
