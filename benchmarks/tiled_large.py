"""Run one large synthetic image tiled through a dynamic-shape session; print seconds and peak RSS as JSON.

    python benchmarks/tiled_large.py --height 4000 --width 6000 --tile 2048 --backend onnxruntime

The peak is the process's VmHWM (everything: interpreter, libraries, session, the image and its outputs).
Issue 5's target: a 4000x6000 PairLIE image completes tiled within 4 GB.
"""
import argparse
import json
import time

import numpy as np


def peak_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pairlie")
    parser.add_argument("--build", default="fp32")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--tile", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    from modelzoo import compile as compiler
    from modelzoo.plugins import registry
    from modelzoo.tiling import plan, run_tiled

    model = registry().model(args.model)
    job = compiler.prepare(model, args.build, args.backend, native=True)
    session = compiler.load(job, threads=args.threads, log=lambda m: None)
    before = peak_mb()
    x = np.random.default_rng(0).random((1, 3, args.height, args.width), dtype=np.float32)
    started = time.perf_counter()
    outputs = run_tiled(session, x, args.tile, model.card["complexity"].get("receptive_radius", 16))
    seconds = time.perf_counter() - started
    print(json.dumps({"model": args.model, "build": args.build, "backend": args.backend,
                      "image": [args.height, args.width], "tile": args.tile,
                      "tiles": len(plan(args.height, args.width, args.tile, 16)),
                      "outputs": [list(o.shape) for o in outputs], "seconds": round(seconds, 1),
                      "peak_rss_mb_after_load": round(before), "peak_rss_mb": round(peak_mb())}, indent=2))


if __name__ == "__main__":
    main()
