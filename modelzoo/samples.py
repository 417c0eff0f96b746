"""Built-in low-light samples: scikit-image's bundled photos darkened by a documented low-light model.

low = clip(0.35 * x ** 2.2 + noise, 0, 1) on x = photo / 255, where noise ~ N(0, 0.012^2) per pixel with a
fixed seed: the gamma curve crushes shadows the way under-exposure does, the factor dims the image, the noise
stands in for sensor noise. The originals serve as references, so `modelzoo run` with no --input also scores
its outputs.
"""
from pathlib import Path

import numpy as np

from modelzoo import imaging, paths

PHOTOS = ("coffee", "chelsea", "astronaut", "rocket")  # coffee is 400x600, the reference zoo's input size
SCALE, GAMMA, NOISE, SEED = 0.35, 2.2, 0.012, 2023


def darken(image, seed=SEED):
    x = image.astype(np.float32) / 255.0
    noise = np.random.default_rng(seed).normal(0.0, NOISE, x.shape).astype(np.float32)
    low = np.clip(SCALE * x**GAMMA + noise, 0.0, 1.0)
    return imaging.quantize(low, "round")


def folder():
    """Write the sample set once (low/ and high/ with matching names) into the user cache; return its root."""
    import skimage.data

    root = paths.cache_dir() / "samples" / f"v1-{SCALE}-{GAMMA}-{NOISE}-{SEED}"
    for index, name in enumerate(PHOTOS):
        low, high = root / "low" / f"{name}.png", root / "high" / f"{name}.png"
        if low.is_file() and high.is_file():
            continue
        photo = getattr(skimage.data, name)()
        photo = imaging.to_rgb_array(photo)
        imaging.write_rgb(high, photo)
        imaging.write_rgb(low, darken(photo, SEED + index))
    return Path(root)
