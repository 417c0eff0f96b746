"""The low-light task layer every LIE model shares: its datasets (LOL pairs; unpaired DICM, LIME, MEF), the
metrics (PSNR/SSIM against a reference; NIQE/BRISQUE without one) and the GT-mean protocol."""
import cv2
import numpy as np

from modelzoo import hookimpl
from modelzoo.datasets import Dataset
from modelzoo.errors import ZooError
from modelzoo.evaluate import Evaluator, Metric
from modelzoo.imaging import quantize
from modelzoo.metrics import psnr, ssim

from . import iqa

TASK = "low-light-image-enhancement"


def gt_mean(pixels, reference):
    """The prediction scaled so its mean grey level matches the reference's, clipped to [0, 255] and kept as float:
    HVI-CIDNet's measure.py (as shipped with CPGA-Net as evaluation_gtmean.py). Grey is OpenCV's RGB2GRAY (BT.601
    0.299/0.587/0.114, rounded for uint8 images, as that script computes it on the PNGs it reads)."""
    def mean_grey(image):
        return cv2.cvtColor(image if image.dtype == np.uint8 else image.astype(np.float32), cv2.COLOR_RGB2GRAY).mean()

    return np.clip(pixels.astype(np.float64) * (mean_grey(reference) / mean_grey(pixels)), 0, 255)


class LowLightEvaluator(Evaluator):
    """PSNR and SSIM against the normal-light reference; NIQE and BRISQUE of the enhanced image alone (8-bit, as
    written); the protocol says how predictions become pixels."""

    name = "lowlight"
    tasks = (TASK,)
    metrics = (
        # 0.01 dB: the default build's LOL score stays the official code's to the second decimal
        Metric("psnr", "PSNR", "dB", digits=3, tolerance=0.01,
               description="peak signal-to-noise ratio against the reference"),
        Metric("ssim", "SSIM", "", digits=4, tolerance=0.01,
               description="structural similarity, MATLAB-style (Gaussian 11x11 window, sigma 1.5, K1 0.01, "
               "K2 0.03, per RGB channel), in [0, 1]"),
        Metric("niqe", "NIQE", "", higher_is_better=False, digits=3, tolerance=0.05, needs_reference=False,
               description="naturalness image quality evaluator, no reference (lower is better): LIVE's MATLAB "
               "release (rgb2gray, 96x96 blocks, pristine-image model)"),
        Metric("brisque", "BRISQUE", "", higher_is_better=False, digits=2, tolerance=0.5, needs_reference=False,
               description="blind/referenceless image spatial quality evaluator, no reference (lower is better, "
               "about 0-100): LIVE's MATLAB release (rgb2gray, its SVR model and feature ranges)"),
    )
    protocols = {
        "gt-mean": {
            "description": "the card's first protocol's post-processing, the output rounded to 8 bits as saved, "
                           "then scaled so its mean grey level matches the ground truth's before PSNR/SSIM "
                           "(HVI-CIDNet's measure.py --use_GT_mean, used by CPGA-Net and others); hides a "
                           "model's brightness error, so it is shown beside the plain numbers, never instead",
            "quantize": "round", "gt_mean": True, "needs_reference": True,
        },
    }

    # what a reader compares models by: LOL's full-reference scores (plain and GT-mean), and no-reference quality
    # on the unpaired real-world sets
    headline = (("lol-eval15", "zoo", "psnr"), ("lol-eval15", "zoo", "ssim"), ("lol-eval15", "gt-mean", "psnr"),
                ("dicm", "zoo", "niqe"), ("dicm", "zoo", "brisque"), ("lime", "zoo", "niqe"),
                ("lime", "zoo", "brisque"), ("mef", "zoo", "niqe"), ("mef", "zoo", "brisque"))

    def score(self, prediction, reference, protocol, metrics=None):
        names = self.metric_names(reference is not None, metrics)
        if reference is not None and prediction.shape != reference.shape:
            raise ValueError(f"prediction {prediction.shape} and reference {reference.shape} differ in shape")
        pixels = quantize(prediction, protocol["quantize"])
        if protocol.get("gt_mean"):
            pixels = gt_mean(pixels, reference)
        written = pixels if pixels.dtype == np.uint8 else quantize(prediction, "round")
        measures = {"psnr": lambda: psnr(pixels, reference), "ssim": lambda: ssim(pixels, reference),
                    "niqe": lambda: iqa.niqe(written), "brisque": lambda: iqa.brisque(written)}
        try:
            return {name: measures[name]() for name in names}
        except ValueError as exc:  # e.g. an image too small for NIQE's 96x96 blocks
            raise ZooError(str(exc)) from None


@hookimpl
def register_datasets(register):
    register(Dataset("lol-eval15", "LOL/eval15", paired=True, split="eval15", task=TASK,
                     description="LOL test split: 15 low/normal-light pairs, 600x400 (Wei et al., BMVC 2018)"))
    register(Dataset("lol-calib50", "LOL/calib50", paired=False, split="train",
                     description="50 LOL training low-light images (none in eval15): int8 calibration"))
    register(Dataset("dicm", "DICM", paired=False, split="test", task=TASK,
                     description="DICM: 64 unpaired low-light photos, JPEG, about 640x480 (Lee et al., ICIP 2012; "
                     "64 of the set's 69 as in Zero-DCE's test data)"))
    register(Dataset("lime", "LIME", paired=False, split="test", task=TASK,
                     description="LIME: 9 unpaired low-light images, BMP (Guo et al., TIP 2017; its 5.bmp is "
                     "missing from the copy used)"))
    register(Dataset("mef", "MEF", paired=False, split="test", task=TASK,
                     description="MEF: 17 unpaired low-light images of various sizes"))


@hookimpl
def register_evaluators(register):
    register(LowLightEvaluator())
