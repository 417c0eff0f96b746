"""Videos in `modelzoo run` and the API, on clips the tests make (tests/clips.py): timing, sound, rotation and
frames kept; flicker measured and lowered; bad input answered in one line with no partial output."""
import json
import sys

import numpy as np
import pytest

import clips
from modelzoo import imaging, video

pytest.importorskip("av")
VFR = [0, 40, 80, 200, 240, 260, 300, 400, 440, 480, 600, 640, 680, 720, 800, 900, 920, 960, 1000, 1100]
# H.264 4:2:0 at --crf 18 re-encoding a 96x128 frame the model brightened ~4x (saturated reds: chroma
# subsampling dominates): measured 33-34 dB against the same decoded frame enhanced as an image
CODEC_PSNR = 30.0


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-10))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    clips.write(root / "pan.mp4", clips.scene(25))
    clips.write(root / "vfr.mp4", clips.scene(len(VFR)), pts=VFR, rotation=90)
    return root


@pytest.fixture(scope="module")
def enhancer():
    import modelzoo

    return modelzoo.load("zero-dce-pp")


@pytest.mark.parametrize("name", ["pan.mp4", "vfr.mp4"])
def test_run_keeps_timing_sound_rotation_and_frames(cli, folder, tmp_path, enhancer, name):
    result = cli("run", "zero-dce-pp", "--input", folder / name, "--output", tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    assert "flicker" in result.output and "1 video written to" in result.output
    given, made = clips.read(folder / name), clips.read(tmp_path / name)
    assert len(made["frames"]) == len(given["frames"])
    assert made["times"] == pytest.approx(given["times"], abs=1e-6)
    assert made["duration"] == pytest.approx(given["duration"], abs=0.05)
    assert made["audio"] == given["audio"] and made["audio"]
    assert made["rotation"] == given["rotation"]
    assert made["frames"][0].shape == given["frames"][0].shape
    for index in (0, -1):  # the same engine as photos, within the codec's loss
        assert psnr(made["frames"][index], enhancer(given["frames"][index])) >= CODEC_PSNR
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_folder_mixing_photos_and_videos(cli, folder, tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "pan.mp4").write_bytes((folder / "pan.mp4").read_bytes())
    imaging.write_rgb(mixed / "photo.png", clips.scene(1)[0])
    out = tmp_path / "out"
    result = cli("run", "sci", "--input", mixed, "--output", out, "--quiet", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert sorted(p.name for p in out.iterdir()) == ["pan.mp4", "photo.png"]
    assert summary["videos"][0]["frames"] == 25 and len(summary["images"]) == 1


def test_rgb_to_yuv420_matches_ffmpegs_conversion():
    av = pytest.importorskip("av")
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    pixels = cv2.GaussianBlur((rng.random((48, 64, 3)) * 255).astype(np.uint8), (0, 0), 2)  # photo-like detail
    ffmpeg = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p").to_ndarray()
    ours = video.yuv420(pixels)
    assert ours.shape == ffmpeg.shape == (72, 64)
    assert np.abs(ours[:48].astype(int) - ffmpeg[:48]).max() <= 1  # luma: rounding only
    assert np.abs(ours[48:].astype(int) - ffmpeg[48:]).mean() < 1  # chroma: another 2x2 filter than swscale's

    def round_trip(planes):
        back = av.VideoFrame.from_ndarray(planes, format="yuv420p").to_ndarray(format="rgb24")
        return np.abs(back.astype(int) - pixels).mean()
    assert round_trip(ours) <= 1.1 * round_trip(ffmpeg)
    assert video.yuv420(pixels[:47]).shape == (47, 64, 3)  # odd sizes stay RGB, for swscale


def test_api_video(folder, tmp_path, enhancer):
    report = enhancer.video(folder / "pan.mp4", tmp_path / "out.mp4")
    assert report["frames"] == 25 and report["flicker"] > 0
    assert len(clips.read(tmp_path / "out.mp4")["frames"]) == 25


def brighten(frame):
    """A curve whose exposure decision follows each frame's mean (as auto-exposure models do): it flickers."""
    x = frame.astype(np.float32) / 255
    gain = 0.5 / max(float(x.mean()), 0.02)
    return np.clip(x * gain * 255 + 0.5, 0, 255).astype(np.uint8)


def test_flicker_is_measured_and_smoothing_lowers_it(tmp_path):
    # a still scene under a light varying by 3% frame to frame, enhanced by a gain that jumps by 10%
    frames = clips.scene(30, pan=0, fade=0.0, flicker=0.03)
    source = clips.write(tmp_path / "flicker.mp4", frames, audio=False)
    plain = video.enhance_video(source, tmp_path / "plain.mp4", jumpy)
    smooth = video.enhance_video(source, tmp_path / "smooth.mp4", jumpy, smoothing=0.8)
    assert plain["flicker"] > 1.5
    assert smooth["flicker"] < 0.6 * plain["flicker"]


def test_smoothing_steadies_the_noise_a_model_amplifies(tmp_path):
    # a still dark scene with fresh sensor noise every frame, brightened 2.5x: the noise flickers more than the
    # input's; smoothing pulls each pixel towards its previous value where it changed by noise-sized amounts
    rng = np.random.default_rng(0)
    frames = [np.clip(f + rng.normal(0, 2.0, f.shape) + 0.5, 0, 255).astype(np.uint8)
              for f in clips.scene(20, pan=0, fade=0.0)]
    source = clips.write(tmp_path / "noisy.mp4", frames, audio=False)
    steady = lambda frame: np.clip(frame.astype(np.float32) * 2.5 + 0.5, 0, 255).astype(np.uint8)  # noqa: E731
    plain = video.enhance_video(source, tmp_path / "plain.mp4", steady)
    smooth = video.enhance_video(source, tmp_path / "smooth.mp4", steady, smoothing=0.8)
    assert smooth["flicker"] < 0.85 * plain["flicker"]  # 0.70 of it here


def jumpy(frame, state={"i": 0}):
    """An enhancement whose exposure decision jumps by 10% frame to frame (as a curve model's may)."""
    state["i"] += 1
    gain = 2.5 * (1.1 if state["i"] % 2 else 1.0)
    return np.clip(frame.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)


def test_smoothing_does_not_ghost_moving_content(folder, tmp_path):
    steady = lambda frame: np.clip(frame.astype(np.float32) * 2.5 + 0.5, 0, 255).astype(np.uint8)  # noqa: E731
    video.enhance_video(folder / "pan.mp4", tmp_path / "plain.mp4", steady)
    video.enhance_video(folder / "pan.mp4", tmp_path / "smooth.mp4", steady, smoothing=0.9)
    plain, smooth = clips.read(tmp_path / "plain.mp4")["frames"], clips.read(tmp_path / "smooth.mp4")["frames"]
    # a constant gain has nothing to steady: panned content stays where it is, within the codec's loss
    assert min(psnr(a, b) for a, b in zip(plain, smooth)) >= CODEC_PSNR


# bad input: one line each, exit 1 when nothing was written, 3 when some inputs failed, no partial output

def one_failure(result, text):
    failed = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and text in failed[0], result.output


def no_partial(folder):
    assert not [p for p in folder.rglob("*") if ".part" in p.name]


def test_truncated_clip(cli, folder, tmp_path):
    data = (folder / "pan.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    out = tmp_path / "out"
    result = cli("run", "sci", "--input", tmp_path / "cut.mp4", "--output", out, "--quiet")
    assert result.exit_code == 1, result.output
    one_failure(result, "cut.mp4")
    assert not (out / "cut.mp4").exists()
    no_partial(out)


def test_no_video_stream_and_not_a_video(cli, tmp_path):
    import av

    with av.open(str(tmp_path / "sound.mp4"), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        for start in range(0, 48000, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48000, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    (tmp_path / "text.mkv").write_text("not a video")
    out = tmp_path / "out"
    result = cli("run", "sci", "--input", tmp_path, "--output", out, "--quiet")
    assert result.exit_code == 1, result.output
    assert "sound.mp4: no video stream" in result.output and "text.mkv: not a readable video" in result.output
    assert not list(out.iterdir())


def test_unsupported_codec_and_pixel_limit(cli, folder, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELZOO_MAX_PIXELS", str(imaging.DEFAULT_MAX_PIXELS))  # --max-pixels sets it: restore
    out = tmp_path / "out"
    result = cli("run", "sci", "--input", folder / "pan.mp4", "--output", out, "--quiet", "--codec", "nonesuch")
    assert "--codec nonesuch: not a video encoder" in result.output
    assert result.exit_code == 1, result.output
    one_failure(result, "nonesuch")
    result = cli("run", "sci", "--input", folder / "pan.mp4", "--output", out, "--quiet", "--max-pixels", 10000)
    assert result.exit_code == 1, result.output
    one_failure(result, "128x96 = 12,288 pixels per frame is above the limit of 10,000")
    no_partial(out)
    assert not list(out.iterdir())


def test_some_clips_failing_exits_3(cli, folder, tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "pan.mp4").write_bytes((folder / "pan.mp4").read_bytes())
    (mixed / "broken.mov").write_bytes(b"\0" * 1000)
    result = cli("run", "sci", "--input", mixed, "--output", tmp_path / "out", "--quiet")
    assert result.exit_code == 3, result.output
    one_failure(result, "broken.mov")


def test_unwritable_output_folder(cli, folder, tmp_path):
    """As root chmod does not stop writes, so the output folder sits under a regular file: mkdir really fails."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = cli("run", "sci", "--input", folder / "pan.mp4", "--output", blocker / "out", "--quiet")
    assert result.exit_code == 1, result.output
    assert result.output.strip() == f"error: {blocker / 'out'}: cannot write output here (Not a directory)"


def test_without_pyav_one_line_says_what_to_install(cli, folder, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import av raises ImportError
    result = cli("run", "sci", "--input", folder / "pan.mp4", "--output", tmp_path, "--quiet")
    assert result.exit_code != 0
    assert 'pip install "modelzoo[video]"' in result.output and len(result.output.strip().splitlines()) == 1
