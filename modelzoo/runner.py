"""The run step: enhance files with a compiled model, write outputs atomically, report failures per file.

Decoding the next image, and post-processing, scoring and writing the previous one, happen on worker
threads while the backend runs, so a folder run or an evaluation costs little more than its inferences.
Outputs keep their input's format and metadata (imaging.read_photo / write_photo) unless `format` is set.
"""
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from modelzoo import imaging
from modelzoo.backends import feed
from modelzoo.errors import ZooError
from modelzoo.tiling import run_tiled

MAX_QUEUED_WRITES = 2  # outputs waiting for the writer: a 12 MP PairLIE output is about 200 MB of float


@dataclass
class Request:
    """What to do with each image.

    params: post-processing for the written outputs. inputs: the card's runtime inputs (checked values; the
    card's defaults for the rest), except under a reference-guided protocol, whose runtime inputs the plugin
    derives from each image's reference (Model.reference_inputs) in an inference of its own. protocols: [(name, protocol)] to score against
    `references` (input stem -> reference path) with `evaluator`; `overrides` apply on top of each protocol.
    outputs_for(source, image) replaces inference (e.g. outputs saved as npz); on_outputs(source, outputs)
    sees each image's raw deploy outputs (e.g. to save them).
    """

    model: object
    session: object = None
    native: bool = False
    params: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)
    output: Path | None = None
    format: str | None = None  # png, jpg, webp or tiff; None: each output in its input's format
    quality: int = 95  # JPEG and WebP
    references: dict = field(default_factory=dict)
    evaluator: object = None
    protocols: list = field(default_factory=list)
    score_unpaired: bool = False  # score inputs without a reference too (the no-reference metrics)
    resume: bool = False
    progress: bool = True
    tile: int = 0
    outputs_for: object = None
    on_outputs: object = None
    done: set = field(default_factory=set)  # input stems already finished elsewhere (resumed evaluations)
    on_result: object = None  # callback(result) after each image, e.g. to checkpoint an evaluation


def infer(request, image, inputs=None):
    """Raw deploy outputs for one RGB uint8 image, with the runtime `inputs` (default: request.inputs)."""
    model = request.model
    height, width = image.shape[:2]
    minimum = model.card["input"]["min_size"]
    if request.native and min(height, width) < minimum:
        raise ZooError(f"{width}x{height} is smaller than {model.name}'s minimum of {minimum}x{minimum} pixels "
                       f"(run with --resize to resize it)")
    x = model.preprocess(image, model.vdsp(), native=request.native)
    # Tiles are exact only for a finite receptive field; a card without one (global pooling, attention) runs whole.
    # By area: memory scales with the pixel count, so a frame of at most tile x tile pixels (a 1280x720 video
    # frame under the 1024 px default) runs whole even where one side is longer than the tile.
    radius = model.card.get("complexity", {}).get("receptive_radius")
    arrays = model.runtime_arrays(request.inputs if inputs is None else inputs)
    if request.native and request.tile and radius is not None and height * width > request.tile ** 2:
        return run_tiled(request.session, x, request.tile, radius, arrays)
    return feed(request.session, x, arrays)


def guided(request, source, image):
    """{protocol: (runtime inputs, outputs)} for the reference-guided protocols scored on this image: the plugin
    derives the runtime inputs from the reference, and the image is run again with them."""
    reference = request.references.get(Path(source).stem)
    chosen = [name for name, protocol in request.protocols if protocol.get("reference_guided")]
    if not chosen or reference is None or request.evaluator is None:
        return {}
    if request.outputs_for is not None:
        raise ZooError(f"protocol {chosen[0]}: reference-guided, so it needs inference, not saved outputs")
    model = request.model
    low = image.astype(np.float32) / 255.0
    truth = imaging.read_rgb(reference).astype(np.float32) / 255.0
    values = model.check_runtime(model.reference_inputs(low, truth), f"{model.name} reference_inputs:")
    outputs = infer(request, image, values)
    return {name: (model.runtime_values(values), outputs) for name in chosen}


def enhance(request, outputs, size, params):
    """Post-process raw outputs into float RGB in [0, 1] at `size` (height, width)."""
    enhanced = request.model.enhance(outputs, **params)
    if enhanced.shape[:2] != tuple(size):
        enhanced = np.clip(imaging.resize(enhanced, size[1], size[0]), 0.0, 1.0)
    return enhanced


def output_path(request, source):
    target = Path(request.output) / f"{Path(source).stem}{imaging.output_suffix(source, request.format)}"
    if target.resolve() == Path(source).resolve():
        raise ZooError(f"{target}: output would overwrite its input; choose another --output")
    return target


def plan(request, files):
    """(todo as [(source, target)], report with the failures and skipped inputs decided before any work).

    Resume skips inputs whose output exists (or that request.done lists); two inputs with the same file
    stem would write the same output, so the second is a failure.
    """
    report = {"images": [], "failures": [], "skipped": []}
    todo, claimed = [], {}
    for source in files:
        target = output_path(request, source) if request.output else None
        finished = request.resume and target is not None and target.exists()
        if target is not None and target in claimed:
            report["failures"].append({"input": str(source), "error": f"{source}: {target} is already the output of "
                                       f"{claimed[target]} (same file stem); rename one of them"})
            continue
        if target is not None:
            claimed[target] = source
        if finished or Path(source).stem in request.done:
            report["skipped"].append(str(source))
        else:
            todo.append((Path(source), target))
    return todo, report


def run_files(request, files):
    """Enhance (and score) `files`; returns a report with per-image results, failures and skipped inputs."""
    todo, report = plan(request, files)
    started = time.perf_counter()
    bar = tqdm(total=len(todo), desc=request.model.name, unit="img", disable=not request.progress, leave=False)
    with ThreadPoolExecutor(max_workers=1) as reader, ThreadPoolExecutor(max_workers=1) as writer:
        pending = []
        upcoming = reader.submit(imaging.read_photo, todo[0][0]) if todo else None
        try:
            for index, (source, target) in enumerate(todo):
                current = upcoming
                if index + 1 < len(todo):
                    upcoming = reader.submit(imaging.read_photo, todo[index + 1][0])
                try:
                    photo = current.result()
                    image, size = photo.pixels, photo.size
                    photo.pixels = None  # the writer needs only the metadata
                    tick = time.perf_counter()
                    outputs = (request.outputs_for or (lambda s, i: infer(request, i)))(source, image)
                    by_reference = guided(request, source, image)
                    del image
                    seconds = time.perf_counter() - tick
                except ZooError as exc:
                    report["failures"].append({"input": str(source), "error": str(exc)})
                    bar.update()
                    continue
                if request.on_outputs:
                    request.on_outputs(source, outputs)
                while len(pending) - sum(f.done() for f in pending) >= MAX_QUEUED_WRITES:
                    next(f for f in pending if not f.done()).result()  # bounded memory at photo size
                pending.append(writer.submit(finish, request, source, target, photo, size, outputs, seconds,
                                             by_reference))
                bar.update()
            for future in pending:
                result = future.result()
                (report["failures"] if "error" in result else report["images"]).append(result)
        except KeyboardInterrupt:
            for future in pending:
                future.cancel()
            raise
        finally:
            bar.close()
    report["seconds"] = round(time.perf_counter() - started, 3)
    report["mean"] = means(report["images"], request.protocols)
    return report


def finish(request, source, target, photo, size, outputs, seconds, by_reference=None):
    """Write and score one image (on the writer thread); a dict with `error` on failure. `by_reference`: the
    reference-guided protocols' (runtime inputs, outputs), see guided()."""
    by_reference = by_reference or {}
    result = {"name": source.stem, "input": str(source), "seconds": round(seconds, 4)}
    try:
        if target is not None:
            image = enhance(request, outputs, size, request.params)
            imaging.write_photo(target, image, photo, request.quality)
            result["output"] = str(target)
        reference = request.references.get(source.stem)
        if request.evaluator is not None and (reference is not None or request.score_unpaired):
            truth = imaging.read_rgb(reference) if reference is not None else None
            result["metrics"] = {}
            for name, protocol in request.protocols:
                params = {**protocol.get("postprocess", {}), **request.overrides}
                values, scored = by_reference.get(name, (None, outputs))
                prediction = enhance(request, scored, truth.shape[:2] if truth is not None else size, params)
                result["metrics"][name] = request.evaluator.score(prediction, truth, protocol)
                if values is not None:
                    result.setdefault("runtime_inputs", {})[name] = values
    except ZooError as exc:
        return {"input": str(source), "error": str(exc)}
    if request.on_result:
        request.on_result(result)
    return result


def means(images, protocols):
    """Mean of each metric per protocol over the images that have it."""
    summary = {}
    for name, _ in protocols:
        scored = [i["metrics"][name] for i in images if name in i.get("metrics", {})]
        if scored:
            summary[name] = {metric: float(np.mean([s[metric] for s in scored])) for metric in scored[0]}
    return summary
