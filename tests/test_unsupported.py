"""Operators a runtime lacks (card unsupported: {backend: reason}): --build all skips that backend's builds and
says why, an explicit build there is one line with the reason, never a crash."""
import pytest

from toys import FP32, NCNN, Plain, ToyModel, registered, save_weights, weights_for, write_card

import modelzoo
from modelzoo import compile as compiler
from modelzoo import validation
from modelzoo.errors import ZooError

WHY = {"ncnn": "torch.fft.rfft2: ncnn has no FFT operator", "openvino": "torch.fft.rfft2: not converted"}


class Spectral(ToyModel):
    network_class = Plain


@pytest.fixture(scope="module")
def spectral(tmp_path_factory):
    card = write_card(tmp_path_factory.mktemp("toy-fft"), "toy-fft", builds={"fp32": FP32, "ncnn": NCNN},
                      unsupported=WHY,
                      weights={"official": save_weights("toy-fft", "fft.pth", weights_for(Plain))})
    model = Spectral(card)
    with registered(model):
        yield model


def test_build_all_skips_with_the_reason(spectral):
    assert validation.validate_file(spectral.card_path)[0] == []
    chosen, skipped = compiler.select_builds(spectral, "all")
    assert chosen == ["fp32"]
    assert skipped == [f"toy-fft/ncnn: toy-fft cannot run on ncnn: {WHY['ncnn']}"]
    chosen, skipped = compiler.select_builds(spectral, "all", "openvino")
    assert chosen == [] and skipped[0] == f"toy-fft/fp32: toy-fft cannot run on openvino: {WHY['openvino']}"


def test_an_explicit_build_there_is_one_line(spectral, cli):
    result = cli("compile", "toy-fft", "--build", "ncnn")
    assert result.exit_code == 1
    assert result.output.strip() == (f"error: {spectral.card_path}: unsupported.ncnn: toy-fft cannot run on ncnn: "
                                     f"{WHY['ncnn']}")
    with pytest.raises(ZooError, match="cannot run on openvino: torch.fft.rfft2: not converted$"):
        modelzoo.load("toy-fft", build="fp32", backend="openvino")


def test_eval_and_bench_skip_it(spectral, cli):
    from modelzoo import bench

    result = cli("compile", "toy-fft", "--build", "fp32")
    assert result.exit_code == 0, result.output
    document = bench.run(spectral, builds="all", backends=["ncnn"], warmup=0, repeat=1, isolate=False,
                         log=lambda m: None)
    assert document["rows"] == [] and any(WHY["ncnn"] in s["reason"] for s in document["skipped"])
