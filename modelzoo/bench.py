"""The bench step (the reference zoo's `vamp`): latency, throughput and peak memory per build and backend.

Each measured configuration (a build on a backend at a batch, or the baseline) runs in its own child process
started with multiprocessing `spawn`, so its peak resident memory (VmHWM) is its own and one configuration's
allocator state never slows the next. The parent compiles the artifacts first, so compile time and memory stay
out of the measurement. In the child: open `instances` sessions, run `warmup` untimed batches on each, then
`repeat` timed batches per session (instances > 1: one thread per session, all started together).

The baseline is the model the way its official code runs it: the plugin's full network (every output, no
deploy patch) with the card's weights, torch eager fp32, torch.no_grad(), batch 1, in the same invocation.
Speed-up = baseline per-image p50 latency / the row's per-image p50 latency (one instance), or the ratio of
throughputs (several instances). Medians because the machines this runs on are noisy.

The document (`--json`, `--save`) is validated by schemas/bench.schema.json; `--save` writes it to the model's
results folder as bench-<machine-id>.json.
"""
import json
import logging
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from modelzoo import compile as compiler
from modelzoo import documents, weights
from modelzoo.api import open_enhancer, prepare
from modelzoo.backends import feed
from modelzoo.backends.torch_rt import resolve_device
from modelzoo.complexity import count_model
from modelzoo.errors import ValidationError, ZooError
from modelzoo.imaging import atomic_write
from modelzoo.machine import describe, peak_rss_mb, versions
from modelzoo.padding import padded, wrap
from modelzoo.plugins import registry

logger = logging.getLogger(__name__)
SCHEMA_VERSION = 1


# -- statistics ----------------------------------------------------------------------------------------------
def stats(seconds):
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {"p50": _r(np.percentile(ms, 50)), "p90": _r(np.percentile(ms, 90)), "p99": _r(np.percentile(ms, 99)),
            "mean": _r(ms.mean()), "min": _r(ms.min())}


def _r(value):
    return round(float(value), 3)


# -- one configuration, in a child process ------------------------------------------------------------------
def measure(config):
    """Run in a child: time one configuration; return a row (or {'error': ...})."""
    try:
        return _measure(config)
    except ZooError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a failing configuration is reported as skipped, the rest run
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}


def _measure(config):
    shape = [config["batch"], *config["shape"]]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    if config["kind"] == "baseline":
        sessions, info = _baseline_sessions(config)
    else:
        sessions, info = _build_sessions(config)
    inputs = registry().model(config["model"]).runtime_arrays()  # runtime inputs at the card's defaults
    for session in sessions:
        for _ in range(config["warmup"]):
            feed(session, x, inputs)
    times = [[] for _ in sessions]

    def loop(index, start):
        start.wait()
        for _ in range(config["repeat"]):
            tick = time.perf_counter()
            feed(sessions[index], x, inputs)
            times[index].append(time.perf_counter() - tick)

    if len(sessions) == 1:
        started = time.perf_counter()
        loop(0, _Go())
        wall = time.perf_counter() - started
    else:
        start = threading.Event()
        workers = [threading.Thread(target=loop, args=(i, start)) for i in range(len(sessions))]
        for worker in workers:
            worker.start()
        started = time.perf_counter()
        start.set()
        for worker in workers:
            worker.join()
        wall = time.perf_counter() - started
    every = [t for per in times for t in per]
    images = config["batch"] * len(every)
    return {**info, "batch": config["batch"], "instances": len(sessions), "threads": config["threads"],
            "samples": len(every), "latency_ms": stats(every),
            "per_image_ms": {k: _r(v / config["batch"]) for k, v in stats(every).items() if k != "mean"
                             and k != "min"},
            "throughput_ips": _r(images / wall), "peak_rss_mb": peak_rss_mb()}


class _Go:
    def wait(self):
        pass


def _build_sessions(config):
    model = registry().model(config["model"])
    enhancers = [open_enhancer(model, threads=config["threads"], **job_settings(config))
                 for _ in range(config["instances"])]
    sessions, job = [e.session for e in enhancers], enhancers[0].job
    device = str(getattr(sessions[0], "device", "cpu"))
    return sessions, {"build": job.build, "backend": job.backend.name, "dtype": job.dtype, "device": device,
                      "shape_mode": config["shape_mode"]}


class _Eager:
    """The official way: torch.no_grad(), the full network (all outputs), fp32."""

    def __init__(self, network, device):
        self.network, self.device = network, device

    def run(self, x, inputs=None):
        import torch  # deferred: only the baseline's child process runs eager torch

        with torch.no_grad():
            extras = [torch.from_numpy(v).to(self.device) for v in (inputs or {}).values()]
            outputs = self.network(torch.from_numpy(x).to(self.device), *extras)
            return [o.cpu().numpy() for o in outputs]


def _baseline_sessions(config):
    import torch  # deferred: only the baseline's child process runs eager torch

    model = registry().model(config["model"])
    if config["threads"]:
        torch.set_num_threads(config["threads"])
    device = resolve_device(config.get("device"))
    variant = config["variant"] or model.default_variant
    resolved = weights.resolve(model, variant, config["weights"])
    sessions = []
    for _ in range(config["instances"]):
        network = model.with_weights(variant, weights.load(model, variant, resolved), resolved)
        # padded like every session (input.multiple_of), as the official code crops or pads its input
        sessions.append(wrap(_Eager(network.eval().to(device), device), model.multiple_of))
    return sessions, {"build": "baseline", "backend": "torch-eager", "dtype": "fp32", "device": device,
                      "shape_mode": "eager"}


# -- the parent: plan, compile, spawn, collect ---------------------------------------------------------------
def job_settings(config):
    """open_enhancer's arguments for a configuration: a static ONNX export at the benchmarked shape, or dynamic."""
    return {"build": config["build"], "backend": config["backend"], "variant": config["variant"],
            "weights": config["weights"], "native": config["shape_mode"] == "dynamic",
            "workspace": config["workspace"], "options": config["options"],
            "shape": [config["batch"], *config["shape"]] if config["shape_mode"] == "static" else None}


def job_for(model, config):
    """The compile Job of a configuration (compiled by the parent, opened by the child)."""
    return prepare(model, **job_settings(config))


def shape_mode(job, shape):
    """torch runs any shape ('eager'). An ONNX build is exported static at the benchmarked shape (batch
    included), except a build that calibrates (int8): its calibration images are at the build's own size, so
    at any other shape it uses the dynamic (native) export, whose axes include the batch.
    """
    if not getattr(job.backend, "needs_onnx", True):
        return "eager"
    multiple = job.model.multiple_of  # job.shape is padded to input.multiple_of; so is what the session runs
    wanted = [*shape[:-2], padded(shape[-2], multiple), padded(shape[-1], multiple)]
    return "static" if wanted == list(job.shape) or not job.spec.get("dataset") else "dynamic"


def run(model, builds=None, backends=None, batch=1, threads=0, instances=1, shape=None, warmup=3, repeat=20,
        baseline=False, variant=None, weights=None, workspace=None, options=None, isolate=True, log=logger.info):
    """Benchmark `model`; returns the bench document (see schemas/bench.schema.json)."""
    if batch < 1 or instances < 1 or repeat < 1 or warmup < 0:
        raise ZooError("--batch, --instances and --repeat must be at least 1, --warmup at least 0")
    shape = list(shape or model.input_shape()[1:])
    backends = list(backends or [None])
    pairs, skipped = [], []
    for backend in backends:
        if builds in ("all", ["all"]):
            chosen, reasons = compiler.select_builds(model, "all", backend)
            skipped += [{"build": r.split(":")[0].split("/")[-1], "backend": backend or "(build's)", "reason": r}
                        for r in reasons]
        else:
            chosen = list(builds or model.builds[:1])
        pairs += [(build, backend) for build in chosen]
    base = {"model": model.name, "variant": variant, "weights": str(weights) if weights else None,
            "workspace": str(workspace) if workspace else None, "options": options or {}, "batch": batch,
            "threads": threads, "instances": instances, "shape": shape, "warmup": warmup, "repeat": repeat}
    rows, plans = [], []
    for build, backend in pairs:
        try:
            job = compiler.prepare(model, build, backend, variant, weights, workspace=workspace, options=options)
            mode = shape_mode(job, [batch, *shape])
            config = {**base, "kind": "build", "build": build, "backend": job.backend.name, "shape_mode": mode}
            problem = _cannot_run(job)
            if problem:
                raise ZooError(problem)
            job = job_for(model, config)
            compiler.ensure(job, log=log)
            plans.append(config)
        except ZooError as exc:
            skipped.append({"build": build, "backend": backend or "(build's)", "reason": str(exc)})
            log(f"skip {build} on {backend or 'its backend'}: {exc}")
    baseline_row = None
    if baseline:
        config = {**base, "kind": "baseline", "batch": 1, "build": "baseline", "backend": "torch-eager",
                  "shape_mode": "eager", "device": "auto"}
        baseline_row = _child(config, isolate, log)
        if "error" in baseline_row:
            raise ZooError(f"baseline: {baseline_row['error']}")
    for config in plans:
        row = _child(config, isolate, log)
        if "error" in row:
            skipped.append({"build": config["build"], "backend": config["backend"], "reason": row["error"]})
            continue
        row["speedup"] = speedup(row, baseline_row)
        rows.append(row)
    counted = count_model(model, variant, [1, *shape])
    return {
        "kind": "bench", "schema_version": SCHEMA_VERSION, "model": model.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": describe(), "versions": versions(),
        "settings": {"shape": shape, "batch": batch, "threads": threads, "instances": instances, "warmup": warmup,
                     "repeat": repeat, "isolation": "process" if isolate else "none"},
        "complexity": {k: counted[k] for k in ("params", "macs", "flops", "shape")},
        "baseline": baseline_row, "rows": rows, "skipped": skipped,
    }


def _cannot_run(job):
    if job.backend.name == "torch":
        device = resolve_device(job.options.get("device"))
        if device == "cpu" and job.dtype != "fp32":
            return (f"{job.label}: torch {job.dtype} runs on CUDA only and no GPU is present here; skipped "
                    f"(run it on a GPU machine, or see benchmarks/gpu_bench.py)")
    return None


def _child(config, isolate, log):
    label = f"{config['build']} ({config['backend']}, batch {config['batch']}, x{config['instances']})"
    log(f"bench {label}: {config['warmup']} warm-up + {config['repeat']} timed runs")
    if not isolate:
        return measure(config)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, config).result()


def speedup(row, baseline_row):
    if not baseline_row:
        return None
    if row["instances"] == 1 and baseline_row["instances"] == 1:
        return round(baseline_row["per_image_ms"]["p50"] / row["per_image_ms"]["p50"], 3)
    return round(row["throughput_ips"] / baseline_row["throughput_ips"], 3)


# -- output -------------------------------------------------------------------------------------------------
def validate(document):
    problems = documents.errors(document, "bench", "bench")
    if problems:
        raise ValidationError(problems)
    return document


def save(model, document, machine_id=None):
    """Write the document to the model's results folder as bench-<machine-id>.json, or
    bench-<machine-id>-<W>x<H>.json when it measured another input size than the card's; returns the path."""
    validate(document)
    folder = model.results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    height, width = document["settings"]["shape"][-2:]
    size = "" if [height, width] == model.input_shape()[-2:] else f"-{width}x{height}"
    target = folder / f"bench-{machine_id or document['machine']['id']}{size}.json"
    atomic_write(target, json.dumps(document, indent=2) + "\n")
    return target


def table_rows(document):
    """(headers, rows) for the text table."""
    headers = ["build", "backend", "dtype", "device", "batch", "p50 ms", "p90 ms", "p99 ms", "img/s", "peak MB",
               "x baseline"]
    rows = []
    every = ([document["baseline"]] if document["baseline"] else []) + document["rows"]
    for row in every:
        lat = row["latency_ms"]
        ratio = row.get("speedup")
        rows.append([row["build"], row["backend"] + (" (dyn)" if row["shape_mode"] == "dynamic" else ""),
                     row["dtype"], row["device"], row["batch"] if row["instances"] == 1 else
                     f"{row['batch']} x{row['instances']}", f"{lat['p50']:.1f}", f"{lat['p90']:.1f}",
                     f"{lat['p99']:.1f}", f"{row['throughput_ips']:.2f}", f"{row['peak_rss_mb']:.0f}",
                     "1.00 (ref)" if row["build"] == "baseline" else ("-" if ratio is None else f"{ratio:.2f}")])
    return headers, rows
