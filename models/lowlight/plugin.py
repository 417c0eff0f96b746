"""The low-light task layer every LIE model shares: LOL and MEF datasets and the PSNR/SSIM evaluator."""
from modelzoo import hookimpl
from modelzoo.datasets import Dataset
from modelzoo.evaluate import Evaluator, Metric
from modelzoo.imaging import quantize
from modelzoo.metrics import score


class LowLightEvaluator(Evaluator):
    """PSNR and SSIM against the normal-light reference; the protocol says how predictions become pixels."""

    name = "lowlight"
    tasks = ("low-light-image-enhancement",)
    metrics = (
        # 0.01 dB: the default build's LOL score stays the official code's to the second decimal
        Metric("psnr", "PSNR", "dB", digits=3, tolerance=0.01,
               description="peak signal-to-noise ratio against the reference"),
        Metric("ssim", "SSIM", "", digits=4, tolerance=0.01,
               description="structural similarity, MATLAB-style (Gaussian 11x11 window, sigma 1.5, K1 0.01, "
               "K2 0.03, per RGB channel), in [0, 1]"),
    )

    # what a reader compares models by: LOL's full-reference scores (plain and GT-mean), and no-reference quality
    # on the unpaired real-world sets
    headline = (("lol-eval15", "zoo", "psnr"), ("lol-eval15", "zoo", "ssim"), ("lol-eval15", "gt-mean", "psnr"),
                ("dicm", "zoo", "niqe"), ("dicm", "zoo", "brisque"), ("lime", "zoo", "niqe"),
                ("lime", "zoo", "brisque"), ("mef", "zoo", "niqe"), ("mef", "zoo", "brisque"))

    def score(self, prediction, reference, protocol):
        return score(quantize(prediction, protocol["quantize"]), reference)


@hookimpl
def register_datasets(register):
    register(Dataset("lol-eval15", "LOL/eval15", paired=True, split="eval15",
                     description="LOL test split: 15 low/normal-light pairs, 600x400 (Wei et al., BMVC 2018)"))
    register(Dataset("lol-calib50", "LOL/calib50", paired=False, split="train",
                     description="50 LOL training low-light images (none in eval15): int8 calibration"))
    register(Dataset("mef", "MEF", paired=False, split="test",
                     description="MEF: 17 unpaired low-light images of various sizes"))


@hookimpl
def register_evaluators(register):
    register(LowLightEvaluator())
