"""Image quality metrics, computed the way the published tables were."""
import cv2
import numpy as np

K1, K2, SIGMA, WINDOW = 0.01, 0.03, 1.5, 11


def psnr(prediction, reference, data_range=255.0):
    error = np.mean((prediction.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10.0 * np.log10(data_range**2 / error))


def agreement_db(output, reference):
    """How close a build's output (float RGB in [0, 1]) stays to another build's for the same input, in dB
    (10 log10 of 1 over the mean squared difference; infinite when identical)."""
    return psnr(output, reference, data_range=1.0)


def ssim(prediction, reference, data_range=255.0):
    """MATLAB-style SSIM: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, per RGB channel, averaged.

    The same numbers as scikit-image's structural_similarity(channel_axis=2, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255) (tests compare them), about 3x faster: OpenCV's Gaussian
    blur in float64 instead of scipy's filters, so scoring stays off an evaluation's critical path. Only the
    valid region counts (5 px cropped from each border), so the blur's border mode cannot matter.
    """
    x, y = prediction.astype(np.float64), reference.astype(np.float64)
    if x.ndim == 2:
        x, y = x[:, :, None], y[:, :, None]
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    pad = (WINDOW - 1) // 2
    scores = []
    for channel in range(x.shape[2]):
        a, b = np.ascontiguousarray(x[:, :, channel]), np.ascontiguousarray(y[:, :, channel])

        def blur(image):
            return cv2.GaussianBlur(image, (WINDOW, WINDOW), SIGMA, borderType=cv2.BORDER_REFLECT)

        mean_a, mean_b = blur(a), blur(b)
        var_a, var_b = blur(a * a) - mean_a**2, blur(b * b) - mean_b**2
        covariance = blur(a * b) - mean_a * mean_b
        index = ((2 * mean_a * mean_b + c1) * (2 * covariance + c2)) / \
            ((mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2))
        scores.append(index[pad:-pad, pad:-pad].mean())
    return float(np.mean(scores))


def score(prediction, reference):
    """PSNR and SSIM of a prediction (float or uint8 pixels in [0, 255]) against a uint8 reference."""
    if prediction.shape != reference.shape:
        raise ValueError(f"prediction {prediction.shape} and reference {reference.shape} differ in shape")
    return {"psnr": psnr(prediction, reference), "ssim": ssim(prediction, reference)}
