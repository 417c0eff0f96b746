"""The ncnn backend: pnnx conversion with a recorded parity figure, any input size on one artifact, the CLI
commands with --backend ncnn, a clear message when ncnn/pnnx are missing, and LOL eval15 through ncnn."""
import importlib
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import LOL, needs_shared
from modelzoo import compile as compiler
from modelzoo.backends.ncnn_rt import PARITY_LIMIT, Ncnn

have_ncnn = importlib.util.find_spec("ncnn") is not None and importlib.util.find_spec("pnnx") is not None
needs_ncnn = pytest.mark.skipif(not have_ncnn, reason="ncnn/pnnx not installed (pip install ncnn pnnx)")
quiet = {"log": lambda message: None}


def torch_outputs(job, x):
    with torch.inference_mode():
        return [o.numpy() for o in job.torch_module()(torch.from_numpy(x))]


# -- without the packages -------------------------------------------------------------------------------------
@pytest.fixture
def without_ncnn(monkeypatch):
    """find_spec reports ncnn and pnnx absent, and importing them fails, as on a machine without the wheels."""
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name.split(".")[0] in ("ncnn", "pnnx") else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setitem(sys.modules, "ncnn", None)
    monkeypatch.setitem(sys.modules, "pnnx", None)


def test_missing_packages_say_how_to_install(without_ncnn):
    problem = Ncnn().missing()
    assert "'ncnn' and 'pnnx' packages" in problem and "pip install ncnn pnnx" in problem


def test_the_engine_imports_and_registers_ncnn_without_the_packages():
    """In a fresh interpreter where importing ncnn or pnnx fails, the CLI loads and lists the backend."""
    code = ("import sys; sys.modules['ncnn'] = None; sys.modules['pnnx'] = None\n"
            "from modelzoo.plugins import registry\n"
            "backend = registry().backend('ncnn')\n"
            "assert registry().backend('onnxruntime').missing() is None\n"
            "print(type(backend).__name__, backend.needs_onnx)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Ncnn", "False"]


@needs_shared
def test_cli_backend_ncnn_without_packages_says_how_to_install(without_ncnn, cli, tmp_path):
    result = cli("run", "pairlie", "--input", LOL / "low" / "1.png", "--output", tmp_path, "--backend", "ncnn",
                 "--quiet")
    assert result.exit_code == 1
    assert "pip install ncnn pnnx" in result.stderr and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())
    # the other backends still work
    result = cli("run", "pairlie", "--input", LOL / "low" / "1.png", "--output", tmp_path, "--backend",
                 "onnxruntime", "--quiet", "--json")
    assert result.exit_code == 0, result.output
    listed = cli("backends")
    assert listed.exit_code == 0 and "ncnn" in listed.output


# -- with the packages ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fp32_job(pairlie):
    job = compiler.prepare(pairlie, "ncnn-fp32")
    compiler.ensure(job, **quiet)
    return job


@needs_ncnn
@needs_shared
def test_compile_writes_param_and_bin_and_records_parity(fp32_job):
    manifest = json.loads((fp32_job.workdir / compiler.MANIFEST).read_text())
    assert set(manifest["files"]) == {"model.param", "model.bin"}
    assert sorted(p.name for p in fp32_job.workdir.iterdir()) == ["manifest.json", "model.bin", "model.param"]
    parity = manifest["report"]["parity"]
    assert parity["limit"] == PARITY_LIMIT == 2e-3 and parity["against"] == "torch"
    assert parity["shape"] == [1, 3, 400, 600]
    assert 0 <= parity["max_abs_diff"] <= 1e-4  # fp32 weights: ~2e-6 measured
    assert parity["any_size"]["max_abs_diff"] <= 1e-4
    assert manifest["report"]["versions"]["ncnn"]
    assert "export" not in manifest["report"]  # no ONNX export on the way
    assert compiler.ensure(compiler.prepare(fp32_job.model, "ncnn-fp32"), **quiet)["cache"] == "hit"


@needs_ncnn
@needs_shared
@pytest.mark.parametrize("options", [{}, {"winograd": False, "packing": False, "threads": 1}])
def test_any_size_and_batch_match_torch(fp32_job, options):
    job = compiler.prepare(fp32_job.model, "ncnn-fp32", options=options)
    session = compiler.load(job, **quiet)
    x = np.random.default_rng(3).random((2, 3, 67, 101), dtype=np.float32)
    actual, expected = session.run(x), torch_outputs(job, x)
    assert [a.shape for a in actual] == [(2, 1, 67, 101), (2, 3, 67, 101)]
    for a, e in zip(actual, expected):
        assert a.dtype == np.float32 and float(np.max(np.abs(a - e))) <= PARITY_LIMIT


@needs_ncnn
@needs_shared
def test_native_reuses_the_static_artifact(fp32_job):
    job = compiler.prepare(fp32_job.model, "ncnn-fp32", native=True)
    manifest = compiler.ensure(job, **quiet)
    assert job.workdir != fp32_job.workdir and "dynamic" in job.workdir.name
    assert manifest["report"]["copied_from"] == fp32_job.workdir.name
    static = json.loads((fp32_job.workdir / compiler.MANIFEST).read_text())
    assert manifest["files"] == static["files"]
    x = np.random.default_rng(5).random((1, 3, 131, 77), dtype=np.float32)
    for a, e in zip(job.backend.load(job).run(x), torch_outputs(job, x)):
        assert float(np.max(np.abs(a - e))) <= PARITY_LIMIT


@needs_ncnn
@needs_shared
def test_cli_run_native_with_backend_ncnn(fp32_job, cli, tmp_path):
    result = cli("run", "pairlie", "--input", LOL / "low" / "1.png", "--reference", LOL / "high", "--output",
                 tmp_path, "--backend", "ncnn", "--native", "--json", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["backend"] == "ncnn" and len(summary["images"]) == 1
    assert (tmp_path / "1.png").is_file()


@needs_ncnn
@needs_shared
def test_cli_bench_backend_ncnn(fp32_job, cli):
    result = cli("bench", "pairlie", "--backend", "ncnn", "--shape", "3,64,96", "--warmup", "0", "--repeat", "2",
                 "--in-process", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [(r["backend"], r["dtype"]) for r in document["rows"]] == [("ncnn", "fp32")], document["skipped"]


@needs_ncnn
def test_int8_is_refused(pairlie):
    from modelzoo.errors import ZooError

    with pytest.raises(ZooError, match="ncnn builds fp32, fp16, not int8"):
        compiler.prepare(pairlie, "int8", "ncnn")


# -- reproduction ---------------------------------------------------------------------------------------------
@needs_ncnn
@needs_shared
@pytest.mark.slow
@pytest.mark.parametrize("build", ["ncnn-fp32", "ncnn-fp16"])
def test_lol_eval15_through_ncnn(cli, tmp_path, build):
    result = cli("run", "pairlie", "--input", LOL / "low", "--reference", LOL / "high", "--build", build,
                 "--output", tmp_path, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["backend"] == "ncnn" and len(summary["images"]) == 15
    assert summary["mean"]["psnr"] == pytest.approx(18.498, abs=0.002)
    assert summary["mean"]["ssim"] == pytest.approx(0.748, abs=0.001)


@needs_ncnn
@pytest.mark.slow
def test_sci_converts_within_the_parity_gate():
    from conftest import WEIGHTS
    from modelzoo.plugins import registry

    if not (WEIGHTS / "sci" / "medium.pt").is_file():
        pytest.skip("../shared SCI weights not present")
    for build in ("ncnn-fp32", "ncnn-fp16"):
        job = compiler.prepare(registry().model("sci"), build)
        parity = compiler.ensure(job, **quiet)["report"]["parity"]
        assert parity["max_abs_diff"] <= PARITY_LIMIT and parity["any_size"]["max_abs_diff"] <= PARITY_LIMIT
