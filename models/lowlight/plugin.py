"""The low-light task layer every LIE model shares: LOL and MEF datasets and the PSNR/SSIM evaluator."""
from modelzoo import hookimpl
from modelzoo.datasets import Dataset
from modelzoo.evaluate import Evaluator
from modelzoo.imaging import quantize
from modelzoo.metrics import score


class LowLightEvaluator(Evaluator):
    """PSNR and SSIM against the normal-light reference; the protocol says how predictions become pixels."""

    name = "lowlight"
    tasks = ("low-light-image-enhancement",)
    metrics = ("psnr", "ssim")

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
