"""Videos end to end: frames per second at 1280x720 and flicker with and without --temporal-smoothing.

For each model (default: every registered one), `modelzoo.load(name, size=(720, 1280))` (no build: the
automatic choice, the fastest build as accurate as fp32 on this CPU, from bench results nearest 1280x720) enhances a clip this script makes: a built-in sample, upscaled,
panned and faded, with a 440 Hz AAC tone. Reports
  fps        frames/s of Enhancer.video end to end (decode, enhance, encode H.264 crf 18, mux audio)
  copy_fps   frames/s of the same pipeline with an identity enhancement (the decode/encode share)
  cpu_ms_per_frame  CPU time of the process per frame (all threads), and fps_2_cores_bound = 2000 / it: the
             frames/s two quiet cores could reach if fully used (a figure a loaded machine can still give)
  flicker    on a still 320x240 2 s clip lit by a light that varies 3% frame to frame: output change / input
             change
  smoothed   the same with temporal smoothing 0.8
  flicker_steady, smoothed_steady  the same on the clip under a steady light (the codec noise the model amplifies)
Usage: python benchmarks/video.py [--seconds 10] [--models zero-dce-pp,sci]
"""
import argparse
import json
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

import modelzoo
from modelzoo import samples, video
from modelzoo.plugins import registry


def make_clip(path, seconds, size, rate=25, flicker=0.0, pan=True):
    import skimage.data

    photo = samples.darken(skimage.data.coffee()).astype(np.float32)
    width, height = size
    big = cv2.resize(photo, (int(width * 1.5), int(height * 1.5)), interpolation=cv2.INTER_CUBIC)
    frames = int(seconds * rate)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=48000)
        for i in range(frames):
            x = int(i * (big.shape[1] - width) / max(frames - 1, 1)) if pan else 0
            level = (0.6 + 0.4 * i / frames if pan else 0.8) * (1 + flicker * (1 if i % 2 else -1))
            pixels = np.clip(big[:height, x:x + width] * level + 0.5, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(48000 * frames // rate) / 48000)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48000, start
            out.mux(sound.encode(frame))
        out.mux(sound.encode())
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--models", default=None)
    args = parser.parse_args()
    names = args.models.split(",") if args.models else sorted(registry().models)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        hd = make_clip(work / "hd.mp4", args.seconds, (1280, 720))
        test = make_clip(work / "test.mp4", 2, (320, 240), flicker=0.03, pan=False)
        steady = make_clip(work / "steady.mp4", 2, (320, 240), pan=False)
        started = time.perf_counter()
        copy = video.enhance_video(hd, work / "copy.mp4", lambda frame: frame)
        rows = []
        for name in names:
            enhancer = modelzoo.load(name, size=(720, 1280))  # the build chosen for 720p frames
            enhancer(np.zeros((720, 1280, 3), np.uint8))  # warm-up at the benchmark's size
            cpu = time.process_time()
            report = enhancer.video(hd, work / f"{name}.mp4")
            cpu_ms = 1000 * (time.process_time() - cpu) / report["frames"]
            plain = enhancer.video(test, work / f"{name}-t.mp4")
            smooth = enhancer.video(test, work / f"{name}-s.mp4", smoothing=0.8)
            still = [enhancer.video(steady, work / f"{name}-q.mp4", smoothing=s)["flicker"] for s in (0.0, 0.8)]
            rows.append({"model": name, "build": repr(enhancer), "fps": report["fps"], "copy_fps": copy["fps"],
                         "cpu_ms_per_frame": round(cpu_ms, 1), "fps_2_cores_bound": round(2000 / cpu_ms, 1),
                         "flicker": round(plain["flicker"], 3), "smoothed": round(smooth["flicker"], 3),
                         "flicker_steady": round(still[0], 3), "smoothed_steady": round(still[1], 3)})
            print(json.dumps(rows[-1]), flush=True)
        print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
