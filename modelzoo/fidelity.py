"""How close a build stays to the reference build on real photos, and what a 12 MP photo costs it in memory.

A dataset score within tolerance is not enough: an int8 build within 0.04 dB on fifteen dark indoor images was
26 dB from fp32's output on a bright, detailed photo. So each build is run, the way `modelzoo run` runs it (each
photo at its own size, tiled above the tile size), on folders of photos of other kinds, and every output is
compared with the reference build's (agreement in dB, see modelzoo.metrics.agreement_db); then one synthetic
12 MP photo is enhanced in a process of its own, whose peak resident memory is recorded, at the default tile
and, where that peak is over the limit, at smaller tiles. The document (results/photos-<build>-<backend>.json,
schemas/photos.schema.json) is what the automatic choice reads (modelzoo.choose.on_photos): a build counts as
accurate only at MIN_AGREEMENT_DB or more on every photo, and opens at the largest tile within MEMORY_LIMIT_MB.
"""
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from modelzoo import documents, imaging
from modelzoo.api import DEFAULT_TILE, open_enhancer
from modelzoo.choose import MEMORY_LIMIT_MB, MIN_AGREEMENT_DB
from modelzoo.errors import ValidationError, ZooError
from modelzoo.machine import describe, peak_rss_mb, versions
from modelzoo.metrics import agreement_db
from modelzoo.plugins import registry

PHOTO_SHAPE = (3000, 4000)  # 12 MP
TILES = (DEFAULT_TILE, 512, 256)  # tried in turn until the 12 MP peak fits


def synthetic_photo(height, width, seed=0):
    """A dark, detailed synthetic photo: gradients, soft shapes, a fine pattern and sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([x / width, y / height, 0.5 + 0.5 * np.sin(x / 7.0 + y / 11.0)], axis=2) * 0.25
    for _ in range(6):
        cy, cx, r = rng.random() * height, rng.random() * width, (0.05 + rng.random() * 0.2) * min(height, width)
        image += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))[:, :, None] * rng.random(3) * 0.3
    image += rng.normal(0, 0.02, image.shape).astype(np.float32)
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def outputs(config):
    """In a child: the build's uint8 outputs for every photo, saved as .npy under config['scratch']."""
    model = registry().model(config["model"])
    enhancer = open_enhancer(model, config["build"], config["backend"], native=True, tile=config["tile"])
    saved = {}
    for name, paths in config["sets"].items():
        for path in paths:
            target = Path(config["scratch"]) / f"{config['build']}-{config['backend']}-{name}-{Path(path).stem}.npy"
            np.save(target, enhancer(imaging.read_rgb(path)))
            saved.setdefault(name, []).append(str(target))
    return saved


def photo_peak(config):
    """In a child: seconds and peak resident MB for one synthetic photo at config['tile']."""
    model = registry().model(config["model"])
    enhancer = open_enhancer(model, config["build"], config["backend"], native=True, tile=config["tile"])
    image = synthetic_photo(*config["shape"])
    started = time.perf_counter()
    enhancer(image)
    return {"tile": config["tile"], "seconds": round(time.perf_counter() - started, 2), "peak_rss_mb": peak_rss_mb()}


def in_child(function, config):
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, config).result()


def measure(model, builds, reference, sets, shape=PHOTO_SHAPE, tiles=TILES, log=print):
    """{(build, backend): photos document} for each of `builds` [(build, backend)] against `reference`
    (build, backend), on `sets` ({name: [image paths]}); each build in processes of its own."""
    found = {}
    with tempfile.TemporaryDirectory(prefix="modelzoo-photos-") as scratch:
        base = {"model": model.name, "sets": {k: [str(p) for p in v] for k, v in sets.items()}, "scratch": scratch,
                "tile": tiles[0], "shape": list(shape)}
        log(f"{model.name}: reference {reference[0]} on {reference[1]} on {sum(map(len, sets.values()))} photos")
        expected = in_child(outputs, {**base, "build": reference[0], "backend": reference[1]})
        for build, backend in builds:
            log(f"{model.name}: {build} on {backend}: photos, then a {shape[0]}x{shape[1]} photo's peak memory")
            config = {**base, "build": build, "backend": backend}
            try:
                got = in_child(outputs, config)
                peaks = []
                for tile in tiles:
                    peaks.append(in_child(photo_peak, {**config, "tile": tile}))
                    if peaks[-1]["peak_rss_mb"] <= MEMORY_LIMIT_MB:
                        break
            except ZooError as exc:
                log(f"{model.name}: {build} on {backend}: skipped: {exc}")
                continue
            found[(build, backend)] = document(model, build, backend, reference, agreements(expected, got), peaks,
                                               shape)
    return found


def agreements(expected, got):
    """{set: [dB per photo]} of `got`'s outputs against `expected`'s (saved .npy paths per set)."""
    return {name: [round(min(agreement_db(np.load(b) / 255.0, np.load(a) / 255.0), 99.0), 2)
                   for a, b in zip(expected[name], got[name])] for name in expected}


def document(model, build, backend, reference, per_set, peaks, shape):
    every = [value for values in per_set.values() for value in values]
    return {
        "kind": "photos", "schema_version": 1, "model": model.name, "variant": model.default_variant,
        "build": build, "backend": backend, "reference": {"build": reference[0], "backend": reference[1]},
        "min_agreement_db": MIN_AGREEMENT_DB, "memory_limit_mb": MEMORY_LIMIT_MB,
        "sets": {name: {"images": len(values), "min_db": min(values), "mean_db": round(float(np.mean(values)), 2)}
                 for name, values in per_set.items()},
        "min_db": min(every), "photo": {"shape": list(shape), "runs": peaks},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": describe(), "versions": versions(),
    }


def save(model, document_):
    problems = documents.errors(document_, "photos", "photos")
    if problems:
        raise ValidationError(problems)
    folder = model.results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"photos-{document_['build']}-{document_['backend']}.json"
    imaging.atomic_write(target, json.dumps(document_, indent=2) + "\n")
    return target
