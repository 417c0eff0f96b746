"""The run step: enhance files with a compiled model, write outputs atomically, report failures per file.

Decoding the next image and post-processing/writing the previous one happen on worker threads while the
backend runs, so an end-to-end folder run costs little more than its inferences.
"""
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from modelzoo import imaging
from modelzoo.errors import ZooError


@dataclass
class Request:
    """What to do with each image; `protocol` and `evaluator` are set when references are given."""

    model: object
    session: object
    native: bool = False
    params: dict = field(default_factory=dict)
    output: Path | None = None
    suffix: str = ".png"
    references: dict = field(default_factory=dict)  # input stem -> reference path
    evaluator: object = None
    protocol: tuple = ("", {})
    resume: bool = False
    progress: bool = True
    tile: int = 0  # tile size for native runs of large images (0: whole frame)
    keep: bool = False  # keep float predictions in the results (for npz outputs and tests)
    on_outputs: object = None  # callback(name, raw outputs) for npz writing


def predict(request, image):
    """One RGB uint8 image -> (raw deploy outputs, enhanced float RGB at the input's size)."""
    model = request.model
    height, width = image.shape[:2]
    minimum = model.card["input"]["min_size"]
    if request.native and min(height, width) < minimum:
        raise ZooError(f"{width}x{height} is smaller than {model.name}'s minimum of {minimum}x{minimum} pixels "
                       f"(run without --native to resize it)")
    x = model.preprocess(image, model.vdsp(), native=request.native)
    if request.native and request.tile and max(height, width) > request.tile:
        from modelzoo.tiling import run_tiled

        outputs = run_tiled(request.session, x, request.tile, model.card["complexity"].get("receptive_radius", 16))
    else:
        outputs = request.session.run(x)
    params = {**request.params, **request.protocol[1].get("postprocess", {})} if request.protocol[0] \
        else request.params
    enhanced = model.enhance(outputs, **params)
    if enhanced.shape[:2] != (height, width):
        enhanced = np.clip(imaging.resize(enhanced, width, height), 0.0, 1.0)
    return outputs, enhanced


def output_path(request, source):
    target = Path(request.output) / f"{source.stem}{request.suffix}"
    if target.resolve() == Path(source).resolve():
        raise ZooError(f"{target}: output would overwrite its input; choose another --output")
    return target


def run_files(request, files):
    """Enhance `files`; returns a report dict with per-image results and failures."""
    report = {"images": [], "failures": [], "skipped": []}
    todo = []
    for source in files:
        target = output_path(request, source) if request.output else None
        if request.resume and target is not None and target.exists():
            report["skipped"].append(str(source))
        else:
            todo.append((source, target))
    started = time.perf_counter()
    bar = tqdm(total=len(todo), desc=f"{request.model.name}", unit="img", disable=not request.progress,
               leave=False)
    with ThreadPoolExecutor(max_workers=1) as reader, ThreadPoolExecutor(max_workers=1) as writer:
        pending = []
        decoded = reader.submit(imaging.read_rgb, todo[0][0]) if todo else None
        try:
            for index, (source, target) in enumerate(todo):
                current = decoded
                decoded = reader.submit(imaging.read_rgb, todo[index + 1][0]) if index + 1 < len(todo) else None
                try:
                    image = current.result()
                    tick = time.perf_counter()
                    outputs, enhanced = predict(request, image)
                    seconds = time.perf_counter() - tick
                except ZooError as exc:
                    report["failures"].append({"input": str(source), "error": str(exc)})
                    bar.update()
                    continue
                if request.on_outputs:
                    request.on_outputs(source, outputs)
                pending.append(writer.submit(_finish, request, source, target, enhanced, seconds))
                bar.update()
            for future in pending:
                result = future.result()
                (report["failures"] if "error" in result else report["images"]).append(result)
        except KeyboardInterrupt:
            for future in pending:
                future.cancel()
            bar.close()
            raise
    bar.close()
    report["seconds"] = round(time.perf_counter() - started, 3)
    _summarise(report)
    return report


def _finish(request, source, target, enhanced, seconds):
    result = {"name": source.stem, "input": str(source), "seconds": round(seconds, 4)}
    try:
        if target is not None:
            imaging.write_rgb(target, imaging.quantize(enhanced, "round"))
            result["output"] = str(target)
        reference = request.references.get(source.stem)
        if reference is not None and request.evaluator is not None:
            truth = imaging.read_rgb(reference)
            if truth.shape != enhanced.shape:
                raise ZooError(f"{reference}: reference is {truth.shape[1]}x{truth.shape[0]}, "
                               f"prediction is {enhanced.shape[1]}x{enhanced.shape[0]}")
            result.update(request.evaluator.score(enhanced, truth, request.protocol[1]))
        if request.keep:
            result["prediction"] = enhanced
    except ZooError as exc:
        return {"input": str(source), "error": str(exc)}
    return result


def _summarise(report):
    images = report["images"]
    if images:
        report["mean_seconds"] = round(float(np.mean([i["seconds"] for i in images])), 4)
    for metric in ("psnr", "ssim"):
        values = [i[metric] for i in images if metric in i]
        if values:
            report.setdefault("mean", {})[metric] = float(np.mean(values))
