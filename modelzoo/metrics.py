"""Image quality metrics, computed the way the published tables were."""
import numpy as np
from skimage.metrics import structural_similarity


def psnr(prediction, reference, data_range=255.0):
    error = np.mean((prediction.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10.0 * np.log10(data_range**2 / error))


def ssim(prediction, reference, data_range=255.0):
    """MATLAB-style SSIM: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, per RGB channel, averaged."""
    return float(structural_similarity(prediction.astype(np.float64), reference.astype(np.float64),
                                       channel_axis=2, data_range=data_range, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))


def score(prediction, reference):
    """PSNR and SSIM of a prediction (float or uint8 pixels in [0, 255]) against a uint8 reference."""
    if prediction.shape != reference.shape:
        raise ValueError(f"prediction {prediction.shape} and reference {reference.shape} differ in shape")
    return {"psnr": psnr(prediction, reference), "ssim": ssim(prediction, reference)}
