"""`modelzoo run`: outputs per input stem, metrics against references, native sizes, the built-in samples."""
import json

import numpy as np
import pytest

from conftest import needs_shared
from modelzoo import imaging

pytestmark = needs_shared


@pytest.fixture
def small_pairs(tmp_path):
    """Three small dark images (and their bright originals) of different sizes."""
    rng = np.random.default_rng(1)
    low, high = tmp_path / "low", tmp_path / "high"
    for name, (h, w) in {"a": (24, 32), "b b": (31, 45), "ü": (16, 16)}.items():
        bright = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        imaging.write_rgb(high / f"{name}.png", bright)
        imaging.write_rgb(low / f"{name}.png", (bright * 0.2).astype(np.uint8))
    return low, high


def test_native_run_writes_one_output_per_input(cli, small_pairs, tmp_path):
    low, high = small_pairs
    out = tmp_path / "out"
    result = cli("run", "pairlie", "--input", low, "--reference", high, "--output", out, "--native",
                 "--backend", "torch", "--json", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b b.png", "ü.png"]
    assert imaging.read_rgb(out / "b b.png").shape == (31, 45, 3)
    assert {"psnr", "ssim"} <= set(summary["mean"]) and summary["protocol"] == "zoo"
    assert all(np.isfinite(i["psnr"]) for i in summary["images"])


def test_fixed_size_run_returns_outputs_at_input_size(cli, small_pairs, tmp_path):
    low, _ = small_pairs
    out = tmp_path / "out"
    result = cli("run", "pairlie", "--input", low / "a.png", "--output", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert imaging.read_rgb(out / "a.png").shape == (24, 32, 3)


def test_onnx_native_equals_torch_native(cli, small_pairs, tmp_path):
    low, _ = small_pairs
    for backend in ("torch", "onnxruntime"):
        assert cli("run", "pairlie", "--input", low, "--output", tmp_path / backend, "--native",
                   "--backend", backend, "--quiet").exit_code == 0
    for name in ("a.png", "b b.png"):
        a = imaging.read_rgb(tmp_path / "torch" / name).astype(int)
        b = imaging.read_rgb(tmp_path / "onnxruntime" / name).astype(int)
        assert np.abs(a - b).max() <= 1


def test_postprocess_override(cli, small_pairs, tmp_path):
    low, _ = small_pairs
    runs = {}
    for gamma in ("0.2", "0.5"):
        out = tmp_path / gamma
        cli("run", "pairlie", "--input", low / "a.png", "--output", out, "--native", "--backend", "torch",
            "--set", f"gamma={gamma}", "--quiet")
        runs[gamma] = imaging.read_rgb(out / "a.png").astype(int)
    assert runs["0.5"].mean() < runs["0.2"].mean()  # a larger gamma darkens: L < 1


def test_default_input_is_the_builtin_samples(cli, tmp_path):
    from modelzoo import samples

    root = samples.folder()
    assert sorted(p.name for p in (root / "low").iterdir()) == sorted(f"{n}.png" for n in samples.PHOTOS)
    coffee_low = imaging.read_rgb(root / "low" / "coffee.png")
    coffee = imaging.read_rgb(root / "high" / "coffee.png")
    assert coffee.shape == (400, 600, 3) and coffee_low.mean() < 0.5 * coffee.mean()


@pytest.mark.parametrize("option", ["--tile", "--threads", "--max-pixels", "--workers"])
def test_negative_counts_are_one_line_usage_errors(cli, small_pairs, tmp_path, option):
    low, _ = small_pairs
    result = cli("run", "pairlie", "--input", low, "--output", tmp_path / "out", option, "-1")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and lines[0].startswith("error: ")
    assert not (tmp_path / "out").exists()
