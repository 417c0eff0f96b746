"""Robustness and security (issue 8): bad input gets a clear one-line error, faults lose nothing.

docs/reliability.md maps every case to the test here (or elsewhere) that guards it. Heavy cases use
--native with tiny images on the torch backend so no 400x600 inference runs.
"""
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from conftest import PAIRLIE_WEIGHTS, ROOT, needs_shared
from modelzoo import documents, imaging, runner
from modelzoo.errors import ZooError
from modelzoo.validation import validate_file

PAIRLIE = ROOT / "models" / "pairlie"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# -- helpers ------------------------------------------------------------------------------------------------
def invoke(*args):
    """`modelzoo ARGS` in-process with stdout and stderr apart; exceptions stay inside the CLI's guard."""
    from modelzoo.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def modelzoo(*args, cwd=None, **kwargs):
    """`modelzoo ARGS` in a subprocess, as a user would run it."""
    return subprocess.run([sys.executable, "-m", "modelzoo", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"}, **kwargs)


def dark(path, height=6, width=8, seed=0):
    rng = np.random.default_rng(seed)
    imaging.write_rgb(path, (rng.random((height, width, 3)) * 60).astype(np.uint8))
    return path


def encoded(array, fmt, **save):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **save)
    return buffer.getvalue()


def png_header_only(width, height):
    """A valid PNG signature and IHDR declaring width x height, with a tiny IDAT: a few dozen bytes on disk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + chunk(b"IEND", b""))


def leftovers(folder):
    """Temporary or hidden files a write may have left behind."""
    return [p.name for p in Path(folder).iterdir() if p.name.startswith(".") or p.suffix in (".tmp", ".part")]


def one_error_line(result):
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


BAD_BYTES = {
    "zero.png": lambda: b"",
    "text.png": lambda: b"this is a text file, not a PNG\n",
    "cut.png": lambda: encoded(np.full((16, 16, 3), 90, np.uint8), "PNG")[:60],
    "cut.jpg": lambda: encoded((np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8), "JPEG")[:300],
    "bomb.png": lambda: png_header_only(40000, 40000),
}


# -- images -------------------------------------------------------------------------------------------------
def test_missing_input_path(tmp_path):
    result = invoke("run", "pairlie", "--input", tmp_path / "nope", "--output", tmp_path / "out")
    assert result.exit_code == 1
    assert "nope: no such file or folder" in one_error_line(result)
    with pytest.raises(ZooError, match="no such file"):
        imaging.read_rgb(tmp_path / "gone.png")


def test_folder_with_no_images(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no pictures here")
    result = invoke("run", "pairlie", "--input", tmp_path / "in", "--output", tmp_path / "out")
    assert result.exit_code == 1
    assert "no images (.png, .jpg" in one_error_line(result)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, cause", [
    ("zero.png", "empty file"),
    ("text.png", "not an image Pillow can decode"),
    ("cut.png", "not an image Pillow can decode|cannot decode"),
    ("cut.jpg", "cannot decode \\(.*[Tt]runcated"),
], ids=["zero-byte", "text-named-png", "truncated-png", "truncated-jpeg"])
def test_broken_image_files(tmp_path, name, cause):
    path = tmp_path / name
    path.write_bytes(BAD_BYTES[name]())
    with pytest.raises(ZooError, match=cause) as caught:
        imaging.read_rgb(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


GRAY = np.array([[0, 64], [128, 255]], np.uint8)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "P+transparency", "I;16", "RGB48", "1"])
def test_image_modes_become_rgb_uint8(tmp_path, mode):
    """Gray, gray+alpha and 1-bit are repeated into 3 channels; alpha is dropped (not composited); palette
    entries are looked up; 16-bit values are scaled by 1/257 and rounded."""
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]], np.uint8)
    path = tmp_path / "in.png"
    if mode == "L":
        Image.fromarray(GRAY, "L").save(path)
        expected = np.repeat(GRAY[:, :, None], 3, axis=2)
    elif mode == "LA":
        Image.fromarray(np.dstack([GRAY, np.full_like(GRAY, 7)]), "LA").save(path)
        expected = np.repeat(GRAY[:, :, None], 3, axis=2)
    elif mode == "RGBA":
        Image.fromarray(np.dstack([rgb, np.array([[0, 50], [100, 255]], np.uint8)]), "RGBA").save(path)
        expected = rgb
    elif mode.startswith("P"):
        image = Image.fromarray(rgb).quantize(colors=4)
        if mode == "P+transparency":
            image.info["transparency"] = 0
            image.save(path, transparency=0)
        else:
            image.save(path)
        expected = np.asarray(image.convert("RGB"))
    elif mode == "I;16":
        values = np.array([[0, 257 * 64], [257 * 128, 65535]], np.uint16)
        Image.fromarray(values).save(path)
        assert Image.open(path).mode == "I;16"
        expected = np.repeat(GRAY[:, :, None], 3, axis=2)
    elif mode == "RGB48":
        import cv2

        cv2.imwrite(str(path), (rgb[:, :, ::-1].astype(np.uint16) * 257))
        expected = rgb
    else:
        Image.fromarray(GRAY > 100).save(path)
        expected = np.repeat(np.where(GRAY > 100, 255, 0).astype(np.uint8)[:, :, None], 3, axis=2)
    image = imaging.read_rgb(path)
    assert image.dtype == np.uint8 and image.shape == (2, 2, 3)
    np.testing.assert_array_equal(image, expected)


def test_exif_orientation_is_applied(tmp_path):
    """Orientation 6 (the camera was turned 90 degrees): a 4x8 stored image comes back 8x4, upright."""
    stored = np.zeros((4, 8, 3), np.uint8)
    stored[:, :4] = (250, 0, 0)  # left half red
    stored[:, 4:] = (0, 0, 250)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    path.write_bytes(encoded(stored, "JPEG", exif=exif, quality=95))
    image = imaging.read_rgb(path).astype(int)
    assert image.shape == (8, 4, 3)
    assert image[1, :, 0].mean() > 200 and image[1, :, 2].mean() < 60  # the stored left half is now on top
    assert image[6, :, 2].mean() > 200 and image[6, :, 0].mean() < 60


@needs_shared
def test_native_1x1_is_refused_and_2x2_works(tmp_path):
    """ReflectionPad2d(1) needs 2 pixels a side: the card's input.min_size is 2. Own size is the default."""
    folder = tmp_path / "in"
    imaging.write_rgb(folder / "one.png", np.full((1, 1, 3), 30, np.uint8))
    imaging.write_rgb(folder / "two.png", np.full((2, 2, 3), 30, np.uint8))
    out = tmp_path / "out"
    result = invoke("run", "pairlie", "--input", folder, "--output", out, "--backend", "torch", "--quiet")
    assert result.exit_code == 3, result.output
    assert "one.png: 1x1 is smaller than pairlie's minimum of 2x2 pixels (run with --resize to resize it)" \
        in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["two.png"]
    assert imaging.read_rgb(out / "two.png").shape == (2, 2, 3)


@needs_shared
def test_tiny_images_are_resized_without_native(tmp_path, pairlie):
    """Without --native every image is resized to the vdsp params' 600x400, and the output back to its size.
    The session is a stand-in that checks its input shape (a real 400x600 inference costs seconds here)."""
    seen = []

    class Session:
        def run(self, x):
            seen.append(x.shape)
            return [np.full((1, 1, *x.shape[2:]), 0.5, np.float32), np.full((1, 3, *x.shape[2:]), 0.4, np.float32)]

    folder = tmp_path / "in"
    files = [folder / "1.png", folder / "2.png"]
    for size, path in enumerate(files, start=1):
        imaging.write_rgb(path, np.full((size, size, 3), 30, np.uint8))
    request = runner.Request(pairlie, Session(), native=False, output=tmp_path / "out", progress=False)
    report = runner.run_files(request, files)
    assert report["failures"] == [] and seen == [(1, 3, 400, 600)] * 2
    assert imaging.read_rgb(tmp_path / "out" / "1.png").shape == (1, 1, 3)
    assert imaging.read_rgb(tmp_path / "out" / "2.png").shape == (2, 2, 3)


def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(40000, 40000))
    assert bomb.stat().st_size < 200

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(Image.Image, "tobytes", no_decoding)
    with pytest.raises(ZooError, match=r"40000x40000 is 1,600,000,000 pixels, above the limit of 120,000,000"):
        imaging.read_rgb(bomb)


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    image = dark(tmp_path / "small.png", 10, 20)
    with pytest.raises(ZooError, match="small.png: 20x10 is 200 pixels, above the limit of 100 "):
        imaging.read_rgb(image, limit=100)
    monkeypatch.setenv("MODELZOO_MAX_PIXELS", "150")
    with pytest.raises(ZooError, match="above the limit of 150"):
        imaging.read_rgb(image)
    monkeypatch.setenv("MODELZOO_MAX_PIXELS", "200")
    assert imaging.read_rgb(image).shape == (10, 20, 3)


@needs_shared
def test_names_with_spaces_and_non_ascii(tmp_path):
    folder = tmp_path / "in put"
    names = ["dark photo.png", "ünïcödé.jpg", "夜 景.png"]
    for index, name in enumerate(names):
        dark(folder / name, seed=index)
    out = tmp_path / "out pùt"
    result = invoke("run", "pairlie", "--input", folder, "--output", out, "--native", "--backend", "torch",
                    "--quiet", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # each in its input's format
    assert imaging.read_rgb(out / "夜 景.png").shape == (6, 8, 3)


@pytest.mark.skipif(IS_ROOT, reason="root reads files whatever their mode; see the simulated case")
def test_unreadable_file(tmp_path):
    path = dark(tmp_path / "locked.png")
    path.chmod(0)
    try:
        with pytest.raises(ZooError, match="locked.png: permission denied"):
            imaging.read_rgb(path)
    finally:
        path.chmod(0o644)


def test_unreadable_file_simulated(tmp_path, monkeypatch):
    """chmod 000 does not stop root (tests run as root here), so the open() that fails is simulated."""
    path = dark(tmp_path / "locked.png")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("modelzoo.imaging.Image.open", denied)
    with pytest.raises(ZooError, match=r"locked.png: permission denied$"):
        imaging.read_rgb(path)


# -- batch behaviour ----------------------------------------------------------------------------------------
@needs_shared
def test_ten_good_and_ten_bad_files(tmp_path):
    folder = tmp_path / "in"
    for index in range(10):
        dark(folder / f"good{index:02d}.png", seed=index)
    bad = {}
    for index in range(10):
        kind = list(BAD_BYTES)[index % len(BAD_BYTES)]
        name = f"bad{index:02d}{Path(kind).suffix}"
        (folder / name).write_bytes(BAD_BYTES[kind]())
        bad[name] = kind
    out, report = tmp_path / "out", tmp_path / "report.json"
    result = invoke("run", "pairlie", "--input", folder, "--output", out, "--report", report, "--native",
                    "--backend", "torch", "--quiet")
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in out.iterdir()) == [f"good{i:02d}.png" for i in range(10)]
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 10
    for name in bad:
        assert sum(line.startswith(f"failed: {folder / name}: ") for line in failed) == 1, (name, failed)
    summary = json.loads(report.read_text())
    assert len(summary["images"]) == 10
    assert sorted(Path(f["input"]).name for f in summary["failures"]) == sorted(bad)
    assert all(f["error"] and "\n" not in f["error"] for f in summary["failures"])
    assert leftovers(out) == [] and leftovers(tmp_path) == []


def test_exit_codes_are_the_documented_ones():
    from modelzoo import errors

    assert (errors.EXIT_OK, errors.EXIT_ERROR, errors.EXIT_USAGE, errors.EXIT_PARTIAL) == (0, 1, 2, 3)
    readme = (ROOT / "README.md").read_text()
    reliability = (ROOT / "docs" / "reliability.md").read_text()
    for code in ("`0` success", "`1` error", "`2` usage error", "`3` partial", "`130` interrupted"):
        assert code in readme and code in reliability, code
    assert invoke("run", "--no-such-option").exit_code == 2


# -- outputs ------------------------------------------------------------------------------------------------
def test_writes_are_atomic(tmp_path, monkeypatch):
    target = tmp_path / "out" / "a.png"
    imaging.write_rgb(target, np.zeros((2, 2, 3), np.uint8))
    assert leftovers(target.parent) == []
    assert target.stat().st_mode & 0o777 == imaging.FILE_MODE  # not mkstemp's 0600
    before = target.read_bytes()

    def crash(*args):
        raise KeyboardInterrupt  # e.g. Ctrl-C between writing the temporary file and renaming it

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        imaging.write_rgb(target, np.full((2, 2, 3), 255, np.uint8))
    assert target.read_bytes() == before and leftovers(target.parent) == []

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ZooError, match=r"a.png: cannot write \(No space left on device\)$"):
        imaging.write_rgb(target, np.full((2, 2, 3), 255, np.uint8))
    assert target.read_bytes() == before and leftovers(target.parent) == []


@needs_shared
def test_an_input_is_never_overwritten(tmp_path):
    folder = tmp_path / "in"
    first = dark(folder / "a.png")
    dark(folder / "b.png", seed=1)
    before = first.read_bytes()
    result = invoke("run", "pairlie", "--input", folder, "--output", folder, "--native", "--backend", "torch",
                    "--quiet")
    assert result.exit_code == 1
    assert "a.png: output would overwrite its input; choose another --output" in one_error_line(result)
    assert first.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["a.png", "b.png"]


@needs_shared
def test_inputs_with_the_same_stem_do_not_overwrite_each_other(tmp_path):
    """x.jpg and x.png both become x.png when --format png is asked for."""
    folder = tmp_path / "in"
    dark(folder / "x.jpg")
    dark(folder / "x.png", seed=1)
    result = invoke("run", "pairlie", "--input", folder, "--output", tmp_path / "out", "--format", "png",
                    "--backend", "torch", "--quiet")
    assert result.exit_code == 3
    assert "x.png: " in result.stderr and "is already the output of" in result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.png"]


@needs_shared
def test_resume_skips_finished_outputs(tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    for index in range(3):
        dark(folder / f"{index}.png", seed=index)
    args = ("run", "pairlie", "--input", folder, "--output", out, "--native", "--backend", "torch", "--quiet")
    assert invoke(*args).exit_code == 0
    (out / "0.png").write_bytes(b"kept")  # a finished output (any content) is left alone
    (out / "1.png").unlink()
    result = invoke(*args, "--resume", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [Path(i["input"]).name for i in summary["images"]] == ["1.png"]
    assert sorted(Path(s).name for s in summary["skipped"]) == ["0.png", "2.png"]
    assert (out / "0.png").read_bytes() == b"kept" and imaging.read_rgb(out / "1.png").shape == (6, 8, 3)


@needs_shared
def test_sigint_mid_batch_leaves_no_partial_file(tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    # 240x320 takes PairLIE on torch a few hundred ms per image: the batch cannot finish between the first
    # output appearing and the signal arriving, however fast the machine
    for index in range(20):
        dark(folder / f"{index:02d}.png", 240, 320, seed=index)
    process = subprocess.Popen([sys.executable, "-m", "modelzoo", "run", "pairlie", "--input", str(folder),
                                "--output", str(out), "--native", "--backend", "torch", "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               # a shell without job control starts background jobs with SIGINT ignored, and
                               # Python then never raises KeyboardInterrupt: give the child the default
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    def first_output_written():
        try:  # the run's writability probe creates and removes the folder before the batch starts
            return any(p.suffix == ".png" and not p.name.startswith(".") for p in out.iterdir())
        except FileNotFoundError:
            return False

    while time.monotonic() < deadline and process.poll() is None and not first_output_written():
        time.sleep(0.005)
    if process.poll() is not None:
        pytest.fail(f"the batch finished before the interrupt could be sent: {process.communicate()}")
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted: finished outputs are kept" in stderr
    written = sorted(out.iterdir())
    assert leftovers(out) == []
    assert 1 <= len(written) < 20
    for path in written:
        assert imaging.read_rgb(path).shape == (240, 320, 3)  # complete, decodable PNGs only


@needs_shared
def test_unwritable_output_folder_is_one_line(tmp_path):
    """As root chmod does not stop writes, so the output folder sits under a regular file: mkdir really fails."""
    folder = tmp_path / "in"
    dark(folder / "a.png")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = invoke("run", "pairlie", "--input", folder, "--output", blocker / "sub", "--native", "--backend",
                    "torch")
    assert result.exit_code == 1
    assert one_error_line(result) == f"error: {blocker / 'sub'}: cannot write output here (Not a directory)"
    result = invoke("run", "pairlie", "--input", folder, "--output", tmp_path / "out", "--report",
                    blocker / "report.json", "--native", "--backend", "torch")
    assert result.exit_code == 1 and "cannot write output here" in one_error_line(result)
    assert not (tmp_path / "out").exists()


# -- cards, build yamls, vdsp params (the rest is in tests/test_documents.py) -------------------------------
@pytest.fixture
def model_copy(tmp_path):
    folder = tmp_path / "pairlie"
    shutil.copytree(PAIRLIE, folder, ignore=shutil.ignore_patterns("__pycache__", "results"))
    return folder


def rewrite(path, change):
    data = yaml.safe_load(path.read_text()) if path.suffix != ".json" else json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data) if path.suffix == ".json" else yaml.safe_dump(data, sort_keys=False))


def test_yaml_syntax_error_names_the_line(model_copy):
    build = model_copy / "build" / "fp32.yaml"
    build.write_text(build.read_text().replace("  type: onnx", "  type: [onnx"))
    problems, _ = validate_file(model_copy / "card.yaml")
    assert len(problems) == 1 and problems[0].startswith(f"{build}: invalid YAML at line ")


def test_build_yaml_wrong_type_and_unknown_key(model_copy):
    build = model_copy / "build" / "fp16.yaml"

    def damage(spec):
        spec["frontend"]["shape"] = {"input": "1x3x400x600"}
        spec["backend"]["turbo"] = True

    rewrite(build, damage)
    problems, _ = validate_file(build)
    assert f"{build}: frontend.shape.input: '1x3x400x600' is not of type 'array'" in problems
    assert f"{build}: backend: Additional properties are not allowed ('turbo' was unexpected)" in problems


def test_vdsp_unknown_key_and_wrong_type(model_copy):
    vdsp = model_copy / "vdsp_params.json"
    rewrite(vdsp, lambda v: (v.update(Extra=1), v["OpConfig"].update(Mean="zero")))
    problems, _ = validate_file(model_copy / "card.yaml")
    assert f"{vdsp}: (document): Additional properties are not allowed ('Extra' was unexpected)" in problems
    assert f"{vdsp}: OpConfig.Mean: 'zero' is not of type 'array'" in problems


def test_python_tags_run_no_code(tmp_path):
    marker = tmp_path / "pwned"
    for name in ("card.yaml", "build.yaml"):
        evil = tmp_path / name
        evil.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n"
                        f"backend: !!python/object/new:pathlib.Path ['{marker}']\n")
        problems, _ = validate_file(evil)
        assert len(problems) == 1 and "invalid YAML" in problems[0] and "python/object" in problems[0]
        with pytest.raises(ZooError):
            documents.load(evil, "build")
    assert not marker.exists()


def test_absolute_referenced_path_is_refused(model_copy):
    card = model_copy / "card.yaml"
    rewrite(card, lambda c: c.update(vdsp_params="/etc/passwd"))
    problems, _ = validate_file(card)
    assert problems and all(p.startswith(f"{card}: vdsp_params: ") for p in problems), problems


def test_symlink_out_of_the_model_folder_is_refused(model_copy, tmp_path):
    """The schema refuses '..' and '/', so a symlink is the remaining way out; the resolved path is checked."""
    outside = tmp_path / "outside.yaml"
    shutil.copy(model_copy / "build" / "fp32.yaml", outside)
    (model_copy / "build" / "fp32.yaml").unlink()
    (model_copy / "build" / "fp32.yaml").symlink_to(outside)
    problems, _ = validate_file(model_copy / "card.yaml")
    assert len(problems) == 1 and "builds.fp32: 'build/fp32.yaml' must be a path inside" in problems[0], problems


# -- weights (the rest is in tests/test_weights.py) ---------------------------------------------------------
@needs_shared
@pytest.mark.parametrize("damage", ["truncated", "pickle"])
def test_bad_weights_file_writes_nothing(tmp_path, damage):
    fake = tmp_path / "PairLIE.pth"
    if damage == "truncated":
        fake.write_bytes(PAIRLIE_WEIGHTS.read_bytes()[:4096])
    else:
        fake.write_bytes(b"\x80\x04cos\nsystem\n...")  # not even the right hash: refused before unpickling
    image = dark(tmp_path / "in.png")
    out = tmp_path / "out"
    result = invoke("run", "pairlie", "--input", image, "--weights", fake, "--output", out, "--backend", "torch")
    assert result.exit_code == 1
    assert "the card expects e223ec9e" in one_error_line(result)
    assert not out.exists()


def test_pickle_that_would_run_code_runs_nothing(tmp_path):
    import pickle

    from modelzoo import weights

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"conv.weight": Exploit()}))
    with pytest.raises(ZooError, match="evil.pth: (refused to load|not a readable weights file)"):
        weights.load_state_dict(evil)
    assert not marker.exists()


@needs_shared
def test_other_architecture_writes_nothing(tmp_path, monkeypatch):
    """A state dict for another network, passed off with a matching hash: a clear error and no output."""
    import torch

    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, other)
    monkeypatch.setattr("modelzoo.weights.verify", lambda path, expected: path)
    out = tmp_path / "out"
    result = invoke("run", "pairlie", "--input", dark(tmp_path / "in.png"), "--weights", other, "--output", out,
                    "--backend", "torch", "--workspace", tmp_path / "ws", "--quiet")
    assert result.exit_code == 1
    assert f"error: {other}: not weights for pairlie" in one_error_line(result)
    assert not out.exists()


# -- artifact cache -----------------------------------------------------------------------------------------
@pytest.fixture
def tiny_build(tmp_path):
    """The fp32 build yaml at 16x16: the same compile path as fp32, in about a second."""
    spec = yaml.safe_load((PAIRLIE / "build" / "fp32.yaml").read_text())
    spec["name"], spec["frontend"]["shape"] = "tiny", {"input": [1, 3, 16, 16]}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@needs_shared
def test_corrupt_artifact_is_detected_and_rebuilt(tmp_path, tiny_build):
    workspace = tmp_path / "ws"
    args = ("compile", "pairlie", "--build", tiny_build, "--workspace", workspace)
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "cache miss" in first.stdout
    (artifact,) = [p for p in (workspace / "pairlie").iterdir() if p.is_dir()]
    model = artifact / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    second = invoke(*args)
    assert second.exit_code == 0, second.output
    assert "is damaged; rebuilding" in second.stderr and "cache miss" in second.stdout
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert documents_sha(model) == manifest["files"]["model.onnx"]
    assert "cache hit" in invoke(*args).stdout


def documents_sha(path):
    from modelzoo.weights import sha256

    return sha256(path)


@needs_shared
def test_two_processes_compiling_at_once_share_one_artifact(tmp_path):
    workspace = tmp_path / "ws"
    command = [sys.executable, "-m", "modelzoo", "compile", "pairlie", "--build", "fp32", "--workspace",
               str(workspace), "--json"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
                 for _ in range(2)]
    results = [p.communicate(timeout=300) for p in processes]
    for process, (stdout, stderr) in zip(processes, results):
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
    caches = sorted(json.loads(stdout)[0]["cache"] for stdout, _ in results)
    assert caches == ["hit", "miss"]  # the lock made the second wait, then reuse the first one's build
    folders = [p for p in (workspace / "pairlie").iterdir() if p.is_dir()]
    assert len(folders) == 1 and not folders[0].name.endswith(".building")
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    assert manifest["files"] and all(documents_sha(folders[0] / name) == digest
                                     for name, digest in manifest["files"].items())


# -- the real CLI in a subprocess: one line, the right exit code, no traceback ------------------------------
@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    (root / "empty").mkdir()
    (root / "text.png").write_text("hello")
    (root / "bomb.png").write_bytes(png_header_only(40000, 40000))
    (root / "broken.yaml").write_text("name: [pairlie\n")
    (root / "tagged.yaml").write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    (root / "a_file").write_text("x")
    dark(root / "ok.png")
    return root


CLI_CASES = {
    "missing input": (["run", "pairlie", "--input", "{root}/nope"], 1, "no such file or folder"),
    "no images": (["run", "pairlie", "--input", "{root}/empty"], 1, "no images"),
    "text named png": (["run", "pairlie", "--input", "{root}/text.png", "--output", "{root}/o1", "--native",
                        "--backend", "torch", "--quiet"], 1, "not an image Pillow can decode"),
    "bomb": (["run", "pairlie", "--input", "{root}/bomb.png", "--output", "{root}/o2", "--native", "--backend",
              "torch", "--quiet"], 1, "above the limit"),
    "unwritable output": (["run", "pairlie", "--input", "{root}/ok.png", "--output", "{root}/a_file/o"], 1,
                          "cannot write output here"),
    "invalid yaml": (["validate", "{root}/broken.yaml"], 1, "invalid YAML at line 2"),
    "python tag": (["validate", "{root}/tagged.yaml"], 1, "could not determine a constructor"),
    "build yaml path": (["compile", "pairlie", "--build", "{root}/broken.yaml"], 1, "invalid YAML"),
    "unknown model": (["run", "nosuchmodel"], 1, "unknown model 'nosuchmodel'"),
    "eval without data": (["eval", "pairlie", "--data-root", "{root}/empty", "--backend", "torch", "--quiet"], 1,
                          "--data-root"),
    "publish unwritable": (["publish", "pairlie", "--out", "{root}/a_file/site", "--no-images"], 1,
                           "Not a directory"),
}


@needs_shared
@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_prints_no_traceback(bad_inputs, case):
    args, code, message = CLI_CASES[case]
    result = modelzoo(*[a.format(root=bad_inputs) for a in args])
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert message in result.stderr, result.stderr


def test_debug_shows_the_traceback(bad_inputs):
    result = modelzoo("--debug", "run", "pairlie", "--input", bad_inputs / "nope")
    assert result.returncode == 1 and "Traceback" in result.stderr and "no such file or folder" in result.stderr


def test_reliability_doc_names_real_tests():
    """Every test named in docs/reliability.md exists, so the table cannot drift from the suite."""
    import ast
    import re

    text = (ROOT / "docs" / "reliability.md").read_text()
    files = {"R": "tests/test_robustness.py", "F": "tests/test_fuzz.py"}
    named = re.findall(r"`(R|F|tests/[\w/]+\.py)::(test_\w+)", text)
    assert len(named) > 40
    defined = {}
    for prefix, name in named:
        path = ROOT / files.get(prefix, prefix)
        if path not in defined:
            defined[path] = {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}
        assert name in defined[path], f"{path.name}::{name} is named in docs/reliability.md but does not exist"
