"""The automatic choice: the fastest build whose every declared metric is within its tolerance of the fp32
reference (either way: PSNR 0.01 dB, SSIM 0.01), from bench results of this machine's instruction-set class;
as given when --build or --backend is."""
import json
import shutil

import pytest

from conftest import LOL, ROOT, needs_shared
from modelzoo import bench, choose

DATASET = "lol-eval15"


def machine_of(isa):
    return lambda: {"id": f"test-2c-{isa}", "isa": isa, "cpu": "test", "cores": 2, "flags": [], "gpu": None}


@pytest.fixture
def model(tmp_path):
    """A copy of SCI whose results folder holds made-up eval and bench files."""
    folder = tmp_path / "sci"
    shutil.copytree(ROOT / "models" / "sci", folder, ignore=shutil.ignore_patterns("__pycache__", "results"))
    (folder / "results").mkdir()
    from modelzoo.plugins import registry

    return type(registry().model("sci"))(folder / "card.yaml")  # SCI's plugin class, this folder's results


def write_eval(model, build, backend, psnr, ssim, variant=None):
    document = {"model": model.name, "variant": variant or model.default_variant, "build": build,
                "backend": backend, "dataset": {"name": DATASET}, "metrics": {"zoo": {"mean": {"psnr": psnr, "ssim": ssim}}}}
    (model.results_dir() / f"eval-{DATASET}-{build}-{backend}-{variant}.json").write_text(json.dumps(document))


def write_bench(model, isa, rows):
    document = {"kind": "bench", "model": model.name, "machine": {"id": f"m-{isa}", "isa": isa},
                "rows": [{"build": b, "backend": k, "batch": 1, "instances": 1, "device": "cpu", "shape_mode": "static",
                          "per_image_ms": {"p50": ms}, "speedup": 1000 / ms} for b, k, ms in rows]}
    (model.results_dir() / f"bench-m-{isa}.json").write_text(json.dumps(document))


def test_the_fastest_build_within_tolerance_of_fp32_wins(model, monkeypatch):
    monkeypatch.setattr(bench, "machine", machine_of("avx2"))
    write_eval(model, "fp32", "onnxruntime", 20.00, 0.800)
    write_eval(model, "fp16", "openvino", 19.992, 0.795)  # within 0.01 dB and 0.01
    write_eval(model, "int8", "openvino", 19.98, 0.800)  # 0.02 dB lower: not accurate
    write_eval(model, "int8", "onnxruntime", 20.02, 0.800)  # 0.02 dB higher: a different output, not accurate
    write_eval(model, "fp16", "onnxruntime", 20.00, 0.800, variant="easy")  # another variant does not count
    write_bench(model, "avx2", [("fp32", "onnxruntime", 500), ("fp16", "openvino", 200), ("int8", "openvino", 50),
                                ("int8", "onnxruntime", 60)])
    write_bench(model, "avx512-vnni", [("fp32", "onnxruntime", 400), ("fp32", "openvino", 10)])
    chosen = choose.choose(model, measure=False)
    assert (chosen.build, chosen.backend) == ("fp16", "openvino")
    assert chosen.reason.startswith("using fp16 on openvino: 5.0x eager on this CPU (bench results for avx2 CPUs), "
                                    "lol-eval15 PSNR 19.992 dB, SSIM 0.7950")


def test_timings_of_another_instruction_set_are_not_used(model, monkeypatch):
    monkeypatch.setattr(bench, "machine", machine_of("avx512"))
    write_eval(model, "fp32", "onnxruntime", 20.0, 0.8)
    write_eval(model, "fp32", "openvino", 20.0, 0.8)
    write_bench(model, "avx2", [("fp32", "openvino", 10)])
    chosen = choose.choose(model, measure=False)
    assert (chosen.build, chosen.backend) == ("fp32", "onnxruntime")
    assert chosen.reason == "using fp32 on onnxruntime: no timings for avx512 CPUs"


def test_without_measured_accuracy_the_first_build_is_used(model, monkeypatch):
    monkeypatch.setattr(bench, "machine", machine_of("avx2"))
    write_bench(model, "avx2", [("int8", "openvino", 10)])
    chosen = choose.choose(model, measure=False)
    assert (chosen.build, chosen.backend) == ("fp32", "onnxruntime") and "no measured accuracy" in chosen.reason


def test_a_missing_runtime_is_never_chosen(model, monkeypatch):
    from modelzoo.plugins import registry

    monkeypatch.setattr(bench, "machine", machine_of("avx2"))
    monkeypatch.setattr(registry().backends["openvino"], "missing", lambda build=None: "pip install openvino")
    write_eval(model, "fp32", "onnxruntime", 20.0, 0.8)
    write_eval(model, "fp32", "openvino", 20.0, 0.8)
    write_bench(model, "avx2", [("fp32", "onnxruntime", 100), ("fp32", "openvino", 10)])
    assert choose.choose(model, measure=False).backend == "onnxruntime"


def test_explicit_build_backend_or_variant_decide(monkeypatch):
    from modelzoo.api import resolve_build
    from modelzoo.plugins import registry

    monkeypatch.delenv("MODELZOO_BUILD")
    pairlie = registry().model("pairlie")
    assert resolve_build(pairlie, "fp32", "onnxruntime") == ("fp32", "onnxruntime")
    assert resolve_build(pairlie, None, "torch") == (None, "torch")
    monkeypatch.setenv("MODELZOO_BUILD", "first")
    assert resolve_build(pairlie) == (None, None)


def test_the_committed_results_choose_on_avx512_vnni(monkeypatch):
    """The repository's own bench and eval files, on the development machine's class: PairLIE's int8 builds
    move the LOL score by 0.02-0.03 dB, so OpenVINO fp16 (bf16 compute, +0.009 dB) is the fastest accurate one;
    IAT's fastest accurate build scores exactly its fp32."""
    from modelzoo.plugins import registry

    monkeypatch.setattr(bench, "machine", machine_of("avx512-vnni"))
    chosen = choose.choose(registry().model("pairlie"), measure=False)
    assert (chosen.build, chosen.backend) == ("fp16", "openvino"), chosen.reason
    assert chosen.speedup > 5 and abs(chosen.scores["psnr"] - 18.498) <= 0.01
    iat = choose.choose(registry().model("iat"), measure=False)
    assert round(iat.scores["psnr"], 2) == 23.38 and round(iat.scores["ssim"], 3) == 0.809, iat.reason


@pytest.mark.slow
@needs_shared
def test_a_plain_run_uses_the_chosen_build_and_stays_accurate(cli, monkeypatch, tmp_path):
    """The issue's check: `modelzoo run pairlie` with no build flags says what it chose and scores at least
    18.45 dB / 0.740 on LOL eval15 (and within 0.01 dB of fp32's 18.498)."""
    monkeypatch.delenv("MODELZOO_BUILD")
    monkeypatch.setattr(bench, "machine", machine_of("avx512-vnni"))
    result = cli("run", "pairlie", "--input", LOL / "low", "--reference", LOL / "high", "--output", tmp_path,
                 "--json", "--quiet")
    assert result.exit_code == 0, result.output
    assert "pairlie: using fp16 on openvino" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["backend"] == "openvino" and summary["dtype"] == "fp16"
    assert summary["mean"]["psnr"] >= 18.45 and summary["mean"]["ssim"] >= 0.740
    assert abs(summary["mean"]["psnr"] - 18.498) <= 0.01


def test_an_nncf_build_without_nncf_is_not_chosen_and_says_what_to_install(monkeypatch):
    """The fastest PairLIE build here is quantized by NNCF; where nncf is not installed it is skipped (and
    compiling it is a one-line error naming the package), so a fresh install never picks what it cannot build."""
    import importlib.util

    from modelzoo import compile as compiler
    from modelzoo.errors import ZooError
    from modelzoo.plugins import registry

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a))
    monkeypatch.setattr(bench, "machine", machine_of("avx512-vnni"))
    pairlie = registry().model("pairlie")
    chosen = choose.choose(pairlie, measure=False)
    assert chosen.backend == "openvino" and "nncf" not in chosen.build
    with pytest.raises(ZooError, match=r"needs the 'nncf' package: pip install nncf"):
        compiler.prepare(pairlie, "int8-nncf-all")
    assert any("int8-nncf: an NNCF int8 build needs" in s for s in compiler.select_builds(pairlie, "all")[1])


@needs_shared
def test_a_class_without_bench_results_is_timed_once_and_cached(model, monkeypatch):
    monkeypatch.setattr(bench, "machine", machine_of("generic"))
    write_eval(model, "fp32", "onnxruntime", 14.85, 0.524)
    write_eval(model, "fp16", "onnxruntime", 14.85, 0.524)
    first = choose.choose(model)
    assert (first.build, first.backend) in {("fp32", "onnxruntime"), ("fp16", "onnxruntime")}
    assert "ms/image on this CPU (timed on this generic CPU)" in first.reason
    monkeypatch.setattr(bench, "run", lambda *a, **k: pytest.fail("timed again instead of using the cache"))
    assert choose.choose(model).reason == first.reason
