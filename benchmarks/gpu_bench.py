"""PairLIE on a GPU: official-style eager fp32 vs torch.compile fp16 channels_last. One self-contained script.

Needs only torch and numpy (the network is defined below, with the official state-dict names), so it can be
copied to a GPU machine and run as it is:

    python benchmarks/gpu_bench.py                                 # CUDA, random weights, 400x600
    python benchmarks/gpu_bench.py --weights ../shared/weights/pairlie/PairLIE.pth
    python benchmarks/gpu_bench.py --device cpu --quick            # smoke test without a GPU

Measured configurations (each: warm-up, then `--repeat` timed iterations, CUDA synchronised per iteration):
  eager-fp32       the official test script's way: full 3-output net, fp32, NCHW, torch.no_grad(), batch 1
  compile-fp16     the deploy outputs (L, R), fp16, channels_last, torch.compile, batch 1 and 8 (--batches)
Timings exclude host<->device copies (the input lives on the device), as the official numbers do.
Prints one JSON summary. Issue 5's target: compile-fp16 at batch 8 <= 0.6 ms per image on an H100/H200.
Reference (H200, from issue 5): eager fp32 4.13 ms; compile fp16 channels_last 0.91 ms (batch 1), 0.74 ms/img (batch 8).
"""
import argparse
import json
import platform
import time

import numpy as np
import torch
from torch import nn


def branch(out_channels, width=64):
    layers, channels = [], [3, width, width, width, width, out_channels]
    for index, (cin, cout) in enumerate(zip(channels, channels[1:])):
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, 1, 0)]
        layers.append(nn.ReLU(inplace=True) if index < 4 else nn.Sigmoid())
    return nn.Sequential(*layers)


class Wrapped(nn.Module):
    def __init__(self, attribute, out_channels):
        super().__init__()
        self.attribute = attribute
        setattr(self, attribute, branch(out_channels))

    def forward(self, x):
        return getattr(self, self.attribute)(x)


class PairLIE(nn.Module):
    """Same layout and parameter names as the official net (L_net.L_net.1.weight, ...)."""

    def __init__(self):
        super().__init__()
        self.L_net, self.R_net, self.N_net = Wrapped("L_net", 1), Wrapped("R_net", 3), Wrapped("N_net", 3)

    def forward(self, image):
        x = self.N_net(image)
        return self.L_net(x), self.R_net(x), x


class Deploy(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        illumination, reflectance, _ = self.net(image)
        return illumination, reflectance


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, x, device, warmup, repeat):
    for _ in range(warmup):
        fn(x)
    synchronize(device)
    times = []
    started = time.perf_counter()
    for _ in range(repeat):
        tick = time.perf_counter()
        fn(x)
        synchronize(device)
        times.append(time.perf_counter() - tick)
    wall = time.perf_counter() - started
    ms = np.asarray(times) * 1000
    batch = x.shape[0]
    return {"batch": batch, "ms_p50": round(float(np.median(ms)), 4), "ms_p90": round(float(np.percentile(ms, 90)), 4),
            "ms_per_image_p50": round(float(np.median(ms)) / batch, 4),
            "images_per_s": round(batch * repeat / wall, 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--weights", default=None, help="PairLIE.pth (default: random weights; timing is the same)")
    parser.add_argument("--height", type=int, default=400)
    parser.add_argument("--width", type=int, default=600)
    parser.add_argument("--batches", default="1,8", help="batches for the compiled fp16 runs")
    parser.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"], help="compiled runs' dtype")
    parser.add_argument("--compile-mode", default="max-autotune-no-cudagraphs",
                        help="torch.compile mode ('none' to skip compiling; 'default' for the default mode)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="64x96, batches 1,2, 2 warm-up, 5 timed: a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.height, args.width, args.batches, args.warmup, args.repeat = 64, 96, "1,2", 2, 5
        if args.compile_mode == "max-autotune-no-cudagraphs":
            args.compile_mode = "default"
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA GPU is present (torch %s); rerun with --device cpu --quick for a "
                                     "smoke test" % torch.__version__}))
        return 0
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    net = PairLIE()
    if args.weights:
        net.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True), strict=True)
    net = net.eval().to(device)
    summary = {
        "device": str(device), "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "shape": [3, args.height, args.width], "weights": args.weights or "random",
        "warmup": args.warmup, "repeat": args.repeat, "results": [],
    }
    x1 = torch.rand(1, 3, args.height, args.width, device=device)

    def eager(x):
        with torch.no_grad():
            return net(x)

    summary["results"].append({"name": "eager-fp32", "dtype": "fp32", "channels_last": False, "compiled": False,
                               **timed(eager, x1, device, args.warmup, args.repeat)})
    with torch.no_grad():
        reference = [o.float() for o in eager(x1)[:2]]

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    deploy = Deploy(net).to(dtype=dtype).to(memory_format=torch.channels_last)
    compiled, compile_error = deploy, None
    if args.compile_mode != "none":
        mode = None if args.compile_mode == "default" else args.compile_mode
        compiled = torch.compile(deploy, mode=mode)

    def fast(x):
        with torch.inference_mode():
            return compiled(x)

    for batch in [int(b) for b in args.batches.split(",") if b]:
        x = torch.rand(batch, 3, args.height, args.width, device=device).to(dtype=dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        started = time.perf_counter()
        try:
            fast(x)
            synchronize(device)
        except Exception as exc:  # noqa: BLE001 - e.g. no C++ compiler for inductor: fall back to eager, say so
            compile_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            compiled = deploy
            fast(x)
        first = time.perf_counter() - started
        row = {"name": f"compile-{args.dtype}" if compiled is not deploy else f"eager-{args.dtype}",
               "dtype": args.dtype, "channels_last": True, "compiled": compiled is not deploy,
               "first_call_s": round(first, 2), **timed(fast, x, device, args.warmup, args.repeat)}
        if batch == 1:
            with torch.inference_mode():
                outputs = fast(x1.to(dtype=dtype).contiguous(memory_format=torch.channels_last))
            row["max_abs_diff_vs_fp32"] = round(max(float((o.float() - r).abs().max())
                                                    for o, r in zip(outputs, reference)), 5)
        summary["results"].append(row)
    if compile_error:
        summary["compile_error"] = compile_error
    base = summary["results"][0]["ms_per_image_p50"]
    for row in summary["results"]:
        row["speedup_vs_eager_fp32"] = round(base / row["ms_per_image_p50"], 2)
    eight = [r for r in summary["results"] if r["batch"] == 8 and r["dtype"] == "fp16" and r["compiled"]]
    if eight and device.type == "cuda" and not args.quick:
        summary["target_0.6ms_per_image_batch8"] = eight[0]["ms_per_image_p50"] <= 0.6
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
