"""Photo-size benchmarks for `modelzoo run`: one 12 MP image per build and backend, and a folder of photos.

    python benchmarks/photos.py single      # the reference build and the automatic choice (its tile too)
    python benchmarks/photos.py single --builds fp32,fp16,int8 --backends onnxruntime,openvino
    python benchmarks/photos.py folder --build int8 --backend openvino --count 20 --processes 1,2

single: each (build, backend) in its own spawned process (so its peak RSS, VmHWM, is its own): open the
dynamic-shape session `modelzoo run` opens, then time what run does to one image between decoding and
encoding: preprocess, tiled inference (1024 px cores with the exact halo), post-processing to float RGB.
`--warmup` untimed runs (OpenVINO compiles each new tile shape on first sight), then `--repeat` timed ones.
Each build's 8-bit output is compared with the first fp32 row's (PSNR), so a fast build that lost
accuracy shows.

folder: `--count` synthetic JPEG photos of 3 to 12 MP (seeded), enhanced end to end by the `modelzoo run`
command (decode, infer, encode JPEG with EXIF) in one process, or split across N processes of
`--threads cores/N` each; prints images/s and the largest peak RSS of the processes.
Prints JSON; record the figures with the machine's instruction-set class in docs/performance.md.
"""
import argparse
import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def peak_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    return None


def photo(height, width, seed):
    """A dark synthetic photo: gradients, a few soft shapes and sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([x / width, y / height, 0.5 + 0.5 * np.sin(x / 97.0 + y / 131.0)], axis=2) * 0.3
    for _ in range(6):
        cy, cx, r = rng.random() * height, rng.random() * width, (0.05 + rng.random() * 0.2) * min(height, width)
        image += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))[:, :, None] * rng.random(3) * 0.3
    image += rng.normal(0, 0.02, image.shape).astype(np.float32)
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def single(config):
    """In a child: seconds per image and peak RSS for one build on one backend."""
    from modelzoo import compile as compiler
    from modelzoo import imaging, runner
    from modelzoo.plugins import registry

    model = registry().model(config["model"])
    job = compiler.prepare(model, config["build"], config["backend"], native=True)
    session = compiler.load(job, threads=config["threads"], log=lambda m: None)
    after_load = peak_mb()
    request = runner.Request(model, session, native=True, tile=config["tile"])
    image = photo(*config["shape"], seed=0)
    times = []
    for index in range(config["warmup"] + config["repeat"]):
        tick = time.perf_counter()
        enhanced = runner.enhance(request, runner.infer(request, image), image.shape[:2], {})
        if index >= config["warmup"]:
            times.append(time.perf_counter() - tick)
    output = Path(config["scratch"]) / f"{config['build']}-{config['backend']}.npy"
    np.save(output, imaging.quantize(enhanced, "round"))
    return {"build": config["build"], "backend": job.backend.name, "dtype": job.dtype, "tile": config["tile"],
            "seconds_p50": round(float(np.median(times)), 2), "seconds_min": round(min(times), 2),
            "runs": len(times), "peak_rss_mb": peak_mb(), "peak_rss_mb_after_load": after_load,
            "output": str(output)}


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return round(10 * math.log10(255 ** 2 / mse), 2) if mse else float("inf")


def default_pairs(model_name, tile):
    """The reference build (first, so the others are compared with it) and what `modelzoo run` chooses here,
    with the tile the choice opens it at."""
    from modelzoo import choose
    from modelzoo.plugins import registry

    model = registry().model(model_name)
    chosen = choose.choose(model)
    print(f"{model.name}: {chosen.reason}", file=sys.stderr)
    reference = choose.reference_key(model)
    pairs = [(*reference, tile)]
    if (chosen.build, chosen.backend) != reference:
        pairs.append((chosen.build, chosen.backend, min(tile, chosen.tile) if chosen.tile else tile))
    return pairs


def run_single(args):
    context = multiprocessing.get_context("spawn")
    rows = []
    if args.builds:
        pairs = [(build, backend, args.tile) for backend in args.backends.split(",") for build in args.builds.split(",")]
    else:
        pairs = default_pairs(args.model, args.tile)
    with tempfile.TemporaryDirectory(prefix="modelzoo-photos-") as scratch:
        for build, backend, tile in pairs:
            config = {"model": args.model, "build": build, "backend": backend, "threads": args.threads,
                      "tile": tile, "shape": [args.height, args.width], "warmup": args.warmup,
                      "repeat": args.repeat, "scratch": scratch}
            print(f"{build} on {backend} ...", file=sys.stderr, flush=True)
            try:
                with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                    rows.append(pool.submit(single, config).result())
            except Exception as exc:  # noqa: BLE001 - report the row as failed, measure the rest
                rows.append({"build": build, "backend": backend, "error": str(exc).splitlines()[0]})
        done = [r for r in rows if "output" in r]
        first = next((r for r in done if r["dtype"] == "fp32"), done[0] if done else None)
        reference = np.load(first["output"]) if first else None
        for row in done:
            output = np.load(row.pop("output"))
            row["psnr_vs_fp32_db"] = psnr(output, reference) if row is not first else None
    return {"model": args.model, "image": [args.height, args.width], "tile": args.tile, "threads": args.threads,
            "machine": machine(), "rows": rows}


def make_folder(folder, count, seed=0):
    """`count` JPEG photos between 3 and 12 MP at 4:3 or 3:4, with EXIF; returns their total megapixels."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0.0
    for index in range(count):
        megapixels = 3 + 9 * index / max(1, count - 1)
        width = int(math.sqrt(megapixels * 1e6 * 4 / 3)) // 8 * 8
        height = int(width * 3 / 4) // 8 * 8
        if rng.random() < 0.3:
            height, width = width, height
        exif = Image.Exif()
        exif[0x010F] = "SyntheticCam"
        Image.fromarray(photo(height, width, seed=index)).save(folder / f"photo{index:02d}.jpg", quality=92,
                                                               exif=exif)
        total += height * width / 1e6
    return total


def run_folder(args):
    cores = len(os.sched_getaffinity(0))
    results = []
    with tempfile.TemporaryDirectory(prefix="modelzoo-folder-") as scratch:
        scratch = Path(scratch)
        megapixels = make_folder(scratch / "in", args.count)
        files = sorted((scratch / "in").iterdir())
        # warm the artifact cache and the page cache so neither is timed
        subprocess.run([sys.executable, "-m", "modelzoo", "compile", args.model, "--build", args.build,
                        "--backend", args.backend, "--native"], check=True, capture_output=True)
        for processes in map(int, args.processes.split(",")):
            parts = []
            for index in range(processes):
                part = scratch / f"in-{processes}-{index}"
                part.mkdir()
                for file in files[index::processes]:
                    (part / file.name).symlink_to(file)
                parts.append(part)
            threads = max(1, cores // processes)
            commands = [[sys.executable, "-m", "modelzoo", "run", args.model, "--input", str(part), "--output",
                         str(scratch / f"out-{processes}-{index}"), "--build", args.build, "--backend",
                         args.backend, "--threads", str(threads), "--quiet", "--json"]
                        for index, part in enumerate(parts)]
            started = time.perf_counter()
            children = [subprocess.Popen(["/usr/bin/time", "-f", "%M", *c], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, text=True) for c in commands]
            peaks = []
            for child in children:
                _, err = child.communicate()
                if child.returncode:
                    raise SystemExit(f"modelzoo run failed: {err.strip().splitlines()[-1]}")
                peaks.append(round(int(err.strip().splitlines()[-1]) / 1024))
            seconds = time.perf_counter() - started
            written = sum(1 for i in range(processes) for _ in (scratch / f"out-{processes}-{i}").iterdir())
            results.append({"processes": processes, "threads_each": threads, "images": written,
                            "seconds": round(seconds, 1), "images_per_s": round(written / seconds, 3),
                            "megapixels_per_s": round(megapixels / seconds, 2), "peak_rss_mb_max": max(peaks)})
    return {"model": args.model, "build": args.build, "backend": args.backend, "count": args.count,
            "megapixels": round(megapixels, 1), "machine": machine(), "runs": results}


def machine():
    from modelzoo.machine import describe

    info = describe()
    return {k: info[k] for k in ("cpu", "cores", "flags", "memory_gb")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("single", help="seconds per 12 MP image and peak RSS per build and backend")
    one.add_argument("--builds", default=None, help="comma-separated builds (default: the reference build and the "
                     "automatic choice, each on its backend)")
    one.add_argument("--backends", default="onnxruntime,openvino")
    one.add_argument("--height", type=int, default=3000)
    one.add_argument("--width", type=int, default=4000)
    one.add_argument("--tile", type=int, default=1024)
    one.add_argument("--warmup", type=int, default=1)
    one.add_argument("--repeat", type=int, default=2)
    many = commands.add_parser("folder", help="images per second on a folder of 3-12 MP photos")
    many.add_argument("--build", default="int8")
    many.add_argument("--backend", default="openvino")
    many.add_argument("--count", type=int, default=20)
    many.add_argument("--processes", default="1,2", help="comma-separated process counts to compare")
    for sub in (one, many):
        sub.add_argument("--model", default="pairlie")
        sub.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    result = run_single(args) if args.command == "single" else run_folder(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
