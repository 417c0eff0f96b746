"""`modelzoo bench` runs and its JSON validates; no timing assertions (timings are for benchmarks/, not tests)."""
import json
from types import SimpleNamespace

import pytest

from modelzoo import bench, machine
from modelzoo.validation import validate_file
from tests.conftest import needs_shared

SMALL = ("--shape", "3,32,48", "--warmup", "1", "--repeat", "2")


def _document(result):
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    bench.validate(document)
    return document


@needs_shared
def test_bench_torch_with_baseline_in_child_processes(cli):
    document = _document(cli("bench", "pairlie", "--backend", "torch", "--baseline", "--json", *SMALL))
    assert document["settings"]["isolation"] == "process"
    assert document["complexity"]["params"] == 341_767
    assert document["complexity"]["macs"] == 81_838_080_000 * 32 * 48 // (400 * 600)
    assert document["baseline"]["build"] == "baseline" and document["baseline"]["backend"] == "torch-eager"
    [row] = document["rows"]
    assert (row["build"], row["backend"], row["dtype"], row["shape_mode"]) == ("fp32", "torch", "fp32", "eager")
    assert row["samples"] == 2 and row["speedup"] > 0 and row["peak_rss_mb"] > 0


@needs_shared
def test_bench_onnxruntime_batch_instances_and_table(cli):
    document = _document(cli("bench", "pairlie", "--backend", "onnxruntime", "--batch", "2", "--instances", "2",
                             "--in-process", "--json", *SMALL))
    [row] = document["rows"]
    assert (row["backend"], row["batch"], row["instances"], row["samples"]) == ("onnxruntime", 2, 2, 4)
    assert row["shape_mode"] == "static" and row["speedup"] is None
    assert row["per_image_ms"]["p50"] == pytest.approx(row["latency_ms"]["p50"] / 2, abs=1e-3)
    headers, rows = bench.table_rows(document)
    assert "x baseline" in headers and rows[0][1] == "onnxruntime"
    text = cli("bench", "pairlie", "--backend", "onnxruntime", "--in-process", *SMALL)
    assert text.exit_code == 0 and "p50 ms" in text.output and "341,767 params" in text.output


@needs_shared
def test_torch_half_precision_is_skipped_without_a_gpu(cli):
    from modelzoo.backends.torch_rt import cuda_available

    if cuda_available():
        pytest.skip("a GPU is present: fp16 runs")
    document = _document(cli("bench", "pairlie", "--build", "fp16", "--backend", "torch", "--in-process", "--json",
                             *SMALL))
    assert document["rows"] == []
    assert "no GPU" in document["skipped"][0]["reason"]


def test_saved_document_validates_as_bench(tmp_path):
    row = {"build": "fp32", "backend": "onnxruntime", "dtype": "fp32", "device": "cpu", "shape_mode": "static",
           "batch": 1, "instances": 1, "threads": 0, "samples": 3, "latency_ms": bench.stats([0.1, 0.2, 0.3]),
           "per_image_ms": {"p50": 200.0, "p90": 280.0, "p99": 298.0}, "throughput_ips": 5.0,
           "peak_rss_mb": 300.0, "speedup": 1.5}
    document = {"kind": "bench", "schema_version": 1, "model": "pairlie", "created": "2025-01-01T00:00:00+0000",
                "machine": machine.describe(), "versions": machine.versions(),
                "settings": {"shape": [3, 64, 96], "batch": 1, "threads": 0, "instances": 1, "warmup": 1,
                             "repeat": 3, "isolation": "process"},
                "complexity": {"params": 1, "macs": 2, "flops": 4, "shape": [1, 3, 64, 96]},
                "baseline": None, "rows": [row], "skipped": []}
    model = SimpleNamespace(results_dir=lambda: tmp_path / "results", input_shape=lambda: [1, 3, 64, 96])
    target = bench.save(model, document, "test-machine")
    assert target == tmp_path / "results" / "bench-test-machine.json"
    assert validate_file(target) == ([], 1)
    # another input size than the card's is a file of its own, beside the card-size one
    larger = dict(document, settings={**document["settings"], "shape": [3, 720, 1280]})
    assert bench.save(model, larger, "test-machine") == tmp_path / "results" / "bench-test-machine-1280x720.json"
    broken = dict(document, rows=[dict(row, latency_ms={"p50": -1})])
    with pytest.raises(Exception, match="latency_ms"):
        bench.validate(broken)
