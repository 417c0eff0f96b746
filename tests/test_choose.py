"""The automatic choice: the fastest build whose every declared metric is within its tolerance of the fp32
reference (either way: PSNR 0.01 dB, SSIM 0.01), from bench results of this machine's instruction-set class;
where the class has none, the leaders of the other classes' results are timed on the first images (work
kept) and the winner cached; as given when --build or --backend is."""
import json
import shutil
import time

import numpy as np
import pytest

from conftest import LOL, ROOT, needs_shared
from modelzoo import api, choose

DATASET = "lol-eval15"


def machine_of(isa):
    return lambda: {"id": f"test-2c-{isa}", "isa": isa, "cpu": "test", "cores": 2, "flags": [], "gpu": None}


@pytest.fixture
def on(monkeypatch):
    """on("avx2"): this machine's instruction-set class, as the choice sees it."""
    return lambda isa: monkeypatch.setattr(choose, "describe", machine_of(isa))


@pytest.fixture
def model(tmp_path, monkeypatch):
    """A copy of SCI whose results folder holds made-up eval and bench files (and its own cache of choices)."""
    monkeypatch.setenv("MODELZOO_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "sci"
    shutil.copytree(ROOT / "models" / "sci", folder, ignore=shutil.ignore_patterns("__pycache__", "results"))
    (folder / "results").mkdir()
    from modelzoo.plugins import registry

    return type(registry().model("sci"))(folder / "card.yaml")  # SCI's plugin class, this folder's results


def write_eval(model, build, backend, psnr, ssim, variant=None):
    document = {"model": model.name, "variant": variant or model.default_variant, "build": build,
                "backend": backend, "dataset": {"name": DATASET}, "metrics": {"zoo": {"mean": {"psnr": psnr, "ssim": ssim}}}}
    (model.results_dir() / f"eval-{DATASET}-{build}-{backend}-{variant}.json").write_text(json.dumps(document))


def write_bench(model, isa, rows, shape=None):
    document = {"kind": "bench", "model": model.name, "machine": {"id": f"m-{isa}", "isa": isa},
                "rows": [{"build": b, "backend": k, "batch": 1, "instances": 1, "device": "cpu", "shape_mode": "static",
                          "per_image_ms": {"p50": ms}, "speedup": 1000 / ms} for b, k, ms in rows]}
    if shape:
        document["settings"] = {"shape": [3, *shape]}
    size = f"-{shape[1]}x{shape[0]}" if shape else ""
    (model.results_dir() / f"bench-m-{isa}{size}.json").write_text(json.dumps(document))


def test_the_fastest_build_within_tolerance_of_fp32_wins(model, on):
    on("avx2")
    write_eval(model, "fp32", "onnxruntime", 20.00, 0.800)
    write_eval(model, "fp16", "openvino", 19.992, 0.795)  # within 0.01 dB and 0.01
    write_eval(model, "int8", "openvino", 19.98, 0.800)  # 0.02 dB lower: not accurate
    write_eval(model, "int8", "onnxruntime", 20.02, 0.800)  # 0.02 dB higher: a different output, not accurate
    write_eval(model, "fp16", "onnxruntime", 20.00, 0.800, variant="easy")  # another variant does not count
    write_bench(model, "avx2", [("fp32", "onnxruntime", 500), ("fp16", "openvino", 200), ("int8", "openvino", 50),
                                ("int8", "onnxruntime", 60)])
    write_bench(model, "avx512-vnni", [("fp32", "onnxruntime", 400), ("fp32", "openvino", 10)])
    chosen = choose.choose(model)
    assert (chosen.build, chosen.backend) == ("fp16", "openvino") and not chosen.contenders
    assert chosen.reason.startswith("using fp16 on openvino: 5.0x eager on this CPU (bench results for avx2 CPUs), "
                                    "lol-eval15 PSNR 19.992 dB, SSIM 0.7950")


def test_an_int8_build_not_calibrated_here_waits_for_compile(model, on):
    """A first run must not spend minutes calibrating: the fastest ready build runs, and the line says how to make
    the faster int8 build the default; once it is compiled (ready), it is chosen."""
    on("avx2")
    write_eval(model, "fp32", "onnxruntime", 20.0, 0.8)
    write_eval(model, "fp32", "openvino", 20.0, 0.8)
    write_eval(model, "int8", "openvino", 20.005, 0.8)
    write_bench(model, "avx2", [("fp32", "onnxruntime", 500), ("fp32", "openvino", 400), ("int8", "openvino", 100)])
    waiting = choose.choose(model, ready=lambda build, backend: build != "int8")
    assert (waiting.build, waiting.backend, waiting.speedup) == ("fp32", "openvino", 2.5)  # its own speed-up
    assert waiting.reason.endswith("; int8 on openvino (10.0x eager) compiles for a minute or more first, once: "
                                   "`modelzoo compile sci --build int8 --backend openvino --native` makes it the default")
    assert (choose.choose(model, ready=lambda build, backend: True).build) == "int8"
    on("avx512")  # no bench results here: an uncalibrated build is not a contender either
    elsewhere = choose.choose(model, ready=lambda build, backend: build != "int8")
    assert elsewhere.build != "int8" and all(build != "int8" for build, _ in elsewhere.contenders)


def test_the_choice_reads_the_bench_results_nearest_the_image_size(model, on):
    """A runtime with a larger cost per call but faster full-size kernels loses on LOL and wins on 720p frames."""
    on("avx2")
    write_eval(model, "fp32", "onnxruntime", 20.0, 0.8)
    write_eval(model, "fp32", "openvino", 20.0, 0.8)
    write_bench(model, "avx2", [("fp32", "onnxruntime", 4), ("fp32", "openvino", 5)])  # the card's 600x400
    write_bench(model, "avx2", [("fp32", "onnxruntime", 30), ("fp32", "openvino", 15)], shape=(720, 1280))
    assert choose.choose(model).backend == "onnxruntime"
    assert choose.choose(model, size=(400, 600)).backend == "onnxruntime"
    chosen = choose.choose(model, size=(720, 1280))
    assert chosen.backend == "openvino" and chosen.reason.endswith("(for 1280x720 images)")
    assert choose.choose(model, size=(1080, 1920)).backend == "openvino"  # nearer 720p than 600x400
    assert choose.choose(model, size=(300, 400)).backend == "onnxruntime"


def test_another_class_ranks_the_contenders_and_the_first_images_decide(model, on):
    """No bench results for avx512: the other classes' order picks the leader and the best build on another
    backend that ran close to it; nothing is compiled or timed to choose them."""
    on("avx512")
    for build, backend in [("fp32", "onnxruntime"), ("fp32", "openvino"), ("fp16", "openvino"), ("fp16", "onnxruntime")]:
        write_eval(model, build, backend, 20.0, 0.8)
    write_bench(model, "avx2", [("fp32", "onnxruntime", 500), ("fp32", "openvino", 120), ("fp16", "openvino", 100),
                                ("fp16", "onnxruntime", 110)])
    write_bench(model, "avx512-vnni", [("fp32", "onnxruntime", 300), ("fp32", "openvino", 90), ("fp16", "openvino", 40)])
    chosen = choose.choose(model)
    assert chosen.contenders == [("fp16", "openvino"), ("fp16", "onnxruntime")]
    assert chosen.reason == ("no bench results for avx512 CPUs: timing fp16 on openvino and fp16 on onnxruntime (the "
                             "fastest accurate on avx2, avx512-vnni CPUs) on the first images, then keeping the faster")


def test_a_leader_far_ahead_elsewhere_is_used_without_timing(model, on):
    on("avx512")
    for build, backend in [("fp32", "onnxruntime"), ("fp16", "openvino")]:
        write_eval(model, build, backend, 20.0, 0.8)
    write_bench(model, "avx2", [("fp32", "onnxruntime", 500), ("fp16", "openvino", 100)])
    chosen = choose.choose(model)
    assert (chosen.build, chosen.backend, chosen.contenders) == ("fp16", "openvino", [])
    assert chosen.reason.startswith("using fp16 on openvino: the fastest accurate on avx2 CPUs (5.0x ahead of other "
                                    "runtimes there, not timed on avx512 CPUs), lol-eval15 PSNR 20.000 dB")


def test_the_order_elsewhere_is_by_relative_speed():
    classes = {"a": {("x", "k"): (10, None), ("y", "k"): (20, None)}, "b": {("x", "k"): (30, None), ("y", "k"): (10, None),
                                                                           ("z", "j"): (11, None)}}
    keys = [("w", "j"), ("x", "k"), ("y", "k"), ("z", "j")]
    relative = choose.relative_elsewhere(keys, classes)  # x: 1.0 and 3.0 -> 2.0; y: 2.0 and 1.0 -> 1.5; z: 1.1
    assert relative == pytest.approx({("x", "k"): 2.0, ("y", "k"): 1.5, ("z", "j"): 1.1})
    order = choose.ranked_elsewhere(keys, relative)
    assert order == [("z", "j"), ("y", "k"), ("x", "k"), ("w", "j")]  # w: measured nowhere
    assert choose.pick_contenders(order, relative) == [("z", "j"), ("y", "k")]  # 1.5 / 1.1 is close
    assert choose.pick_contenders([("z", "j"), ("w", "j")], relative) == [("z", "j")]
    assert choose.pick_contenders([("w", "j"), ("v", "k")], {}) == [("w", "j"), ("v", "k")]


def test_the_settled_choice_is_cached_per_machine(model, on):
    on("generic")
    write_eval(model, "fp32", "onnxruntime", 20.0, 0.8)
    write_eval(model, "fp32", "openvino", 20.0, 0.8)
    first = choose.choose(model)
    assert first.contenders == [("fp32", "onnxruntime"), ("fp32", "openvino")] and "no bench results on any CPU" \
        in first.reason
    settled = choose.settle(model, first, {("fp32", "onnxruntime"): 0.9, ("fp32", "openvino"): 0.3}, 4)
    assert (settled.build, settled.backend) == ("fp32", "openvino")
    assert settled.reason.startswith("using fp32 on openvino: 0.30 s/MP, timed against fp32 on onnxruntime 3.00x "
                                     "slower on 4 images on this generic CPU, lol-eval15 PSNR 20.000 dB")
    again = choose.choose(model)
    assert (again.build, again.backend, again.contenders) == ("fp32", "openvino", [])
    assert again.reason == settled.reason + " (cached)"
    on("avx2")  # another class: its own choice
    assert choose.choose(model).contenders


class Sleeper:
    """A session that takes `seconds` per call and says who ran."""

    def __init__(self, name, seconds):
        self.name, self.seconds, self.calls = name, seconds, 0

    def run(self, x):
        self.calls += 1
        time.sleep(self.seconds)
        return [np.full_like(x, self.calls), self.name]


class FakeJob:
    def __init__(self, build, backend):
        self.build, self.backend = build, type("Backend", (), {"name": backend})


def test_a_contest_keeps_every_output_and_then_runs_the_faster_only():
    slow, fast = Sleeper("slow", 0.03), Sleeper("fast", 0.005)
    told = []
    contest = api.Contest([(FakeJob("a", "k"), slow), (FakeJob("b", "j"), fast)], lambda t, n: told.append((t, n)))
    x = np.zeros((1, 3, 100, 100), np.float32)
    ran = [contest.run(x)[1] for _ in range(6)]
    assert ran == ["slow", "fast", "slow", "fast", "fast", "fast"]  # two rounds each, then the winner only
    assert len(told) == 1 and told[0][1] == 4 and told[0][0][("b", "j")] < told[0][0][("a", "k")]
    assert (contest.job.build, contest.session) == ("b", fast)


def test_without_measured_accuracy_the_first_build_is_used(model, on):
    on("avx2")
    write_bench(model, "avx2", [("int8", "openvino", 10)])
    chosen = choose.choose(model)
    assert (chosen.build, chosen.backend) == ("fp32", "onnxruntime") and "no measured accuracy" in chosen.reason


def test_a_missing_runtime_is_never_chosen(model, monkeypatch, on):
    from modelzoo.plugins import registry

    on("avx2")
    monkeypatch.setattr(registry().backends["openvino"], "missing", lambda build=None: "pip install openvino")
    write_eval(model, "fp32", "onnxruntime", 20.0, 0.8)
    write_eval(model, "fp32", "openvino", 20.0, 0.8)
    write_bench(model, "avx2", [("fp32", "onnxruntime", 100), ("fp32", "openvino", 10)])
    assert choose.choose(model).backend == "onnxruntime"


def test_explicit_build_backend_or_variant_decide(monkeypatch):
    from modelzoo.plugins import registry

    monkeypatch.delenv("MODELZOO_BUILD")
    pairlie = registry().model("pairlie")
    assert api.chooses(pairlie) and api.chooses(pairlie, variant="official")
    assert not api.chooses(pairlie, "fp32", "onnxruntime") and not api.chooses(pairlie, None, "torch")
    monkeypatch.setenv("MODELZOO_BUILD", "first")
    assert not api.chooses(pairlie)


def test_the_committed_results_choose_on_avx512_vnni(on):
    """The repository's own bench and eval files, on the development machine's class: PairLIE's int8 builds
    move the LOL score by 0.02-0.03 dB, so OpenVINO fp16 (bf16 compute, +0.009 dB) is the fastest accurate one;
    IAT's fastest accurate build scores exactly its fp32."""
    from modelzoo.plugins import registry

    on("avx512-vnni")
    chosen = choose.choose(registry().model("pairlie"))
    assert (chosen.build, chosen.backend) == ("fp16", "openvino"), chosen.reason
    assert chosen.speedup > 5 and abs(chosen.scores["psnr"] - 18.498) <= 0.01
    iat = choose.choose(registry().model("iat"))
    assert round(iat.scores["psnr"], 2) == 23.38 and round(iat.scores["ssim"], 3) == 0.809, iat.reason


def test_a_video_frame_size_reopens_on_the_build_chosen_for_it(monkeypatch, on):
    """The committed Zero-DCE++ bench files: at LOL's 600x400 ONNX Runtime leads, at 1280x720 OpenVINO fp16
    (fused full-size curve iterations); an automatic enhancer asked for 720p frames moves to it once."""
    monkeypatch.delenv("MODELZOO_BUILD")
    on("avx512-vnni")
    enhancer = api.load("zero-dce-pp")
    assert enhancer.job.backend.name == "onnxruntime"
    assert enhancer.for_size((400, 600)) is enhancer
    framed = enhancer.for_size((720, 1280))
    assert (framed.job.build, framed.job.backend.name) == ("fp16", "openvino")
    assert enhancer.for_size((720, 1280)) is framed  # opened once
    assert api.load("zero-dce-pp", build="fp32").for_size((720, 1280)).job.backend.name == "onnxruntime"


@pytest.mark.slow
@needs_shared
def test_a_plain_run_uses_the_chosen_build_and_stays_accurate(cli, monkeypatch, on, tmp_path):
    """The issue's check: `modelzoo run pairlie` with no build flags says what it chose and scores at least
    18.45 dB / 0.740 on LOL eval15 (and within 0.01 dB of fp32's 18.498)."""
    monkeypatch.delenv("MODELZOO_BUILD")
    on("avx512-vnni")
    result = cli("run", "pairlie", "--input", LOL / "low", "--reference", LOL / "high", "--output", tmp_path,
                 "--json", "--quiet")
    assert result.exit_code == 0, result.output
    assert "pairlie: using fp16 on openvino" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["backend"] == "openvino" and summary["dtype"] == "fp16"
    assert summary["mean"]["psnr"] >= 18.45 and summary["mean"]["ssim"] >= 0.740
    assert abs(summary["mean"]["psnr"] - 18.498) <= 0.01


def test_an_nncf_build_without_nncf_is_not_chosen_and_says_what_to_install(monkeypatch, on):
    """The fastest PairLIE build here is quantized by NNCF; where nncf is not installed it is skipped (and
    compiling it is a one-line error naming the package), so a fresh install never picks what it cannot build."""
    import importlib.util

    from modelzoo import compile as compiler
    from modelzoo.errors import ZooError
    from modelzoo.plugins import registry

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a))
    on("avx512-vnni")
    pairlie = registry().model("pairlie")
    chosen = choose.choose(pairlie)
    assert chosen.backend == "openvino" and "nncf" not in chosen.build
    with pytest.raises(ZooError, match=r"needs the 'nncf' package: pip install nncf"):
        compiler.prepare(pairlie, "int8-nncf-all")
    assert any("int8-nncf: an NNCF int8 build needs" in s for s in compiler.select_builds(pairlie, "all")[1])


@needs_shared
def test_a_first_run_times_two_builds_on_its_own_images_and_caches_the_winner(model, on, monkeypatch, tmp_path):
    """modelzoo.load with no bench results for the class: two accurate SCI builds are compiled and opened, the
    first images run on each in turn (their outputs are the builds' own, not thrown away), the faster is kept
    and cached, and the next load opens only that one."""
    monkeypatch.delenv("MODELZOO_BUILD")
    on("generic")
    write_eval(model, "fp32", "onnxruntime", 14.85, 0.524)
    write_eval(model, "fp32", "openvino", 14.85, 0.524)
    lines = []
    enhancer = api.open_any(model, native=True, announce=lines.append)
    assert isinstance(enhancer.session, api.Contest) and "timing fp32 on onnxruntime and fp32 on openvino" in lines[0]
    images = [np.random.default_rng(i).integers(0, 60, (48, 64, 3), dtype=np.uint8) for i in range(5)]
    alone = {}
    for key in enhancer.session.times:
        alone[key] = api.open_enhancer(model, *key, native=True)
    for index, image in enumerate(images):
        expected = alone[enhancer.job.build, enhancer.job.backend.name](image) if index >= 4 else None
        out = enhancer(image)
        assert out.shape == image.shape and (expected is None or np.array_equal(out, expected))
    assert len(lines) == 2 and lines[1].startswith("sci: using fp32 on ") and "on 4 images on this generic CPU" in lines[1]
    again = []
    reopened = api.open_any(model, native=True, announce=again.append)
    assert not isinstance(reopened.session, api.Contest) and again[0] == lines[1] + " (cached)"
