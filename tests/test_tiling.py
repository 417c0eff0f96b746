"""Tiled runs stitch to exactly the full-frame output (PairLIE reflects at every layer, so borders matter)."""
import numpy as np
import pytest

from modelzoo import compile as compiler
from modelzoo.tiling import plan, run_tiled, spans
from tests.conftest import needs_shared


def _image(height=300, width=517):
    rng = np.random.default_rng(5)
    smooth = np.linspace(0, 1, width, dtype=np.float32)[None, None, None, :] * 0.3
    return np.ascontiguousarray(rng.random((1, 3, height, width), dtype=np.float32) * 0.5 + smooth)


def test_spans_partition_the_axis():
    for length, tile, halo in [(517, 128, 16), (300, 128, 16), (128, 128, 16), (4000, 2048, 16), (129, 64, 20)]:
        found = spans(length, tile, halo)
        cores = [(a, b) for a, b, _, _ in found]
        assert cores[0][0] == 0 and cores[-1][1] == length
        assert all(b0 == a1 for (_, b0), (a1, _) in zip(cores, cores[1:]))
        assert all(b - a <= tile for a, b in cores)
        for a, b, ia, ib in found:
            assert ia == max(0, a - halo) and ib == min(length, b + halo)
    assert len(plan(300, 517, 128, 16)) == 3 * 5


class _Identity:
    def run(self, x):
        return [x[:, :1] * 2, x]


def test_stitching_without_a_model():
    x = _image(70, 90)
    out = run_tiled(_Identity(), x, 32, 16)
    assert np.array_equal(out[1], x) and np.array_equal(out[0], x[:, :1] * 2)


def _check(session, x, tile=64):
    full = session.run(x)
    tiled = run_tiled(session, x, tile, 10)
    for a, b in zip(full, tiled):
        assert a.shape == b.shape
        assert float(np.max(np.abs(a - b))) <= 1e-5


@needs_shared
def test_torch_tiles_equal_full_frame(pairlie):
    job = compiler.prepare(pairlie, "fp32", "torch")
    _check(compiler.load(job, log=lambda m: None), _image(150, 261))


@needs_shared
def test_dynamic_onnx_tiles_equal_full_frame(pairlie):
    job = compiler.prepare(pairlie, "fp32", "onnxruntime", native=True)
    job.spec["frontend"]["shape"] = {"input": [1, 3, 64, 96]}  # a small export example keeps the test fast
    _check(compiler.load(job, log=lambda m: None), _image(150, 261))


def test_small_tile_is_refused():
    from modelzoo.errors import ZooError

    with pytest.raises(ZooError, match="twice the halo"):
        run_tiled(_Identity(), _image(70, 90), 20, 16)


def test_large_tiles_are_capped(monkeypatch):
    calls = []

    class Recorder(_Identity):
        def run(self, x):
            calls.append(x.shape[2:])
            return super().run(x)

    monkeypatch.setenv("MODELZOO_MAX_TILE", "40")
    x = _image(70, 90)
    out = run_tiled(Recorder(), x, 2048, 16)
    assert np.array_equal(out[1], x) and len(calls) == 2 * 3
