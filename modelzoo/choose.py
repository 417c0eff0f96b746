"""The fastest accurate build for this machine, chosen from measurements, never from a list in the engine.

Accurate: on the card's first dataset and protocol (default weights), every metric the evaluator declares is
within that metric's tolerance of the reference build (the card's first build on its own backend, fp32).
Fastest: the lowest per-image p50 latency among the accurate builds, from the model's bench files for this
machine's instruction-set class (bench-<machine>.json, `modelzoo bench --save`).

Where no bench file matches the class, the choice costs almost nothing: the accurate builds are ranked by the
bench results of the other classes (which build is faster carries over between CPUs better than how fast),
and the leader and the best build on another backend become contenders. The caller (modelzoo.api) runs the
first images on each in turn, keeps those outputs, and reports the timings back to `settle`, which caches
the winner per machine and library versions. This module only reads results documents and that cache.

A build whose first compile takes a minute or more (an int8 build calibrates, ncnn converts) is not waited
for: until it has been compiled here, the caller's `ready(build, backend)` says no and the fastest build that
opens in seconds runs instead, with the command that makes the faster one the default in the reason line.
"""
import hashlib
import json
import logging
import math
from dataclasses import dataclass, field

from modelzoo import documents, paths
from modelzoo.evaluate import for_task
from modelzoo.machine import describe, versions
from modelzoo.plugins import registry as default_registry

log = logging.getLogger(__name__)
CONTENDERS = 2  # builds timed on the first images where this class has no bench results
CLOSE = 1.5  # a runner-up elsewhere this much slower than the leader, or closer, is worth timing here
MIN_AGREEMENT_DB = 40.0  # on every photo, a build's output at least this close to the reference build's
MEMORY_LIMIT_MB = 2048  # peak resident memory for a 12 MP photo


@dataclass
class Choice:
    build: str
    backend: str
    reason: str  # one line for the user: what was chosen, why, and how sure that is
    speedup: float | None = None
    scores: dict | None = None
    contenders: list = field(default_factory=list)  # [(build, backend)] still to be timed here; empty: settled
    tile: int | None = None  # the largest tile whose 12 MP peak fits MEMORY_LIMIT_MB (None: unmeasured)
    size: tuple | None = None  # (height, width) chosen for; None: the card's input


def evaluations(model):
    """{(build, backend): mean scores} on the card's first dataset and protocol, default weights variant."""
    if not model.card["datasets"]:
        return {}  # a card that names no dataset has nothing measured to choose by
    dataset, protocol = model.card["datasets"][0], next(iter(model.card["protocols"]))
    found = {}
    folder = model.results_dir()
    for path in sorted(folder.glob("eval-*.json")) if folder.is_dir() else []:
        document = documents.read(path)
        if (document.get("dataset", {}).get("name") == dataset and document.get("variant") == model.default_variant
                and protocol in document.get("metrics", {})):
            found[(document["build"], document["backend"])] = document["metrics"][protocol]["mean"]
    return found


def reference_key(model):
    """The build every other is compared with: the card's first (fp32) on its build yaml's backend."""
    first = model.builds[0]
    return first, documents.load(model.build_path(first), "build")["backend"]["type"]


def accurate(model, scores, metrics):
    """The (build, backend) pairs whose every metric is within tolerance of the reference build's."""
    reference = scores.get(reference_key(model))
    if reference is None:
        return {}
    kept = {}
    for key, mean in scores.items():
        # both ways: a build that scores higher is a different output too, not the model the card describes
        if all(m.name in mean and abs(mean[m.name] - reference[m.name]) <= m.tolerance
               for m in metrics if m.name in reference):
            kept[key] = mean
    return kept


def bench_rows(model, isa=None, size=None):
    """{isa: {(build, backend): (p50 ms, speed-up)}} from the model's bench files (batch 1, one instance, CPU,
    static shapes); only class `isa` when given. Per class, only the files benched at the input size nearest
    `size` (height, width; default the card's input): which build is fastest changes with the size (a runtime
    with a larger cost per call but faster full-resolution kernels wins on video frames, loses on LOL)."""
    documents_by_class = {}
    folder = model.results_dir()
    for path in sorted(folder.glob("bench-*.json")) if folder.is_dir() else []:
        document = documents.read(path)
        found = document.get("machine", {}).get("isa") or ""
        if isa is None or found == isa:
            documents_by_class.setdefault(found, []).append(document)
    wanted = pixels(size or model.input_shape()[-2:])
    classes = {}
    for found, benched in documents_by_class.items():
        nearest = min(abs(math.log(bench_pixels(model, d) / wanted)) for d in benched)
        rows = classes.setdefault(found, {})
        for document in benched:
            if abs(math.log(bench_pixels(model, document) / wanted)) > nearest:
                continue
            for row in document.get("rows", []):
                if row.get("batch") == 1 and row.get("instances") == 1 and row.get("device", "cpu") == "cpu" \
                        and row.get("shape_mode") != "dynamic":
                    key = (row["build"], row["backend"])
                    if key not in rows or row["per_image_ms"]["p50"] < rows[key][0]:
                        rows[key] = (row["per_image_ms"]["p50"], row.get("speedup"))
    return classes


def pixels(size):
    return max(int(size[-2]) * int(size[-1]), 1)


def bench_pixels(model, document):
    """Pixels of the input a bench document measured (settings.shape, C,H,W; the card's input when absent)."""
    return pixels((document.get("settings") or {}).get("shape") or model.input_shape()[-2:])


def runnable(model, build, backend, registry):
    runtime = registry.backends.get(backend)
    if model.unsupported(backend):
        return False
    spec = documents.load(model.build_path(build), "build")["backend"]
    return runtime is not None and not runtime.missing(spec) and spec["dtype"] in runtime.dtypes


def candidates(model, registry, only_runnable=True):
    """{(build, backend): mean scores} of the accurate builds (that can run here, unless told otherwise): within
    tolerance on the card's dataset and, once the model has photos results, close on photos within memory."""
    metrics = for_task(registry, model.card["task"]).metrics
    photos = photo_results(model)
    return {key: mean for key, mean in accurate(model, evaluations(model), metrics).items()
            if (not only_runnable or runnable(model, *key, registry)) and (not photos or on_photos(photos, key)[0])}


def photo_results(model):
    """{(build, backend): photos document} (modelzoo.fidelity, results/photos-*.json), default weights."""
    folder = model.results_dir()
    found = {}
    for path in sorted(folder.glob("photos-*.json")) if folder.is_dir() else []:
        document = documents.read(path)
        if document.get("variant") == model.default_variant:
            found[(document["build"], document["backend"])] = document
    return found


def on_photos(photos, key):
    """(fit: close to the reference on every photo and some tile within the memory limit, that largest tile)."""
    document = photos.get(key)
    if document is None:
        return False, None
    fitting = [run["tile"] for run in document["photo"]["runs"] if run["peak_rss_mb"] <= document["memory_limit_mb"]]
    return document["min_db"] >= document["min_agreement_db"] and bool(fitting), max(fitting, default=None)


def fastest(speeds):
    """((build, backend), (p50 ms, speed-up)) with the lowest p50, or None."""
    return min(speeds.items(), key=lambda item: item[1][0]) if speeds else None


def relative_elsewhere(keys, classes):
    """{key: mean, over the other classes that measured it, of its p50 relative to that class's fastest key}."""
    ratios = {}
    for rows in classes.values():
        measured = {k: rows[k][0] for k in keys if k in rows}
        if measured:
            best = min(measured.values())
            for key, p50 in measured.items():
                ratios.setdefault(key, []).append(p50 / best)
    return {key: sum(values) / len(values) for key, values in ratios.items()}


def ranked_elsewhere(keys, relative):
    """`keys`, the fastest elsewhere first; keys measured nowhere last, in the order given."""
    return sorted(keys, key=lambda k: (k not in relative, relative.get(k, 0.0)))


def pick_contenders(order, relative, count=CONTENDERS):
    """The leader, then the best build on each other backend that ran within CLOSE of it elsewhere (runtimes
    differ most between CPUs, builds on one runtime much less). Compiling costs more than a few images, so a
    runner-up far behind everywhere is not timed. Measured nowhere: the first `count` builds."""
    if not relative:
        return order[:count]
    chosen = order[:1]
    for key in order[1:]:
        close = key in relative and relative[key] <= CLOSE * relative[chosen[0]]
        if len(chosen) < count and close and key[1] not in {backend for _, backend in chosen}:
            chosen.append(key)
    return chosen


def cache_path(model, machine, keys, size=None):
    blob = json.dumps([model.name, sorted(keys), machine["id"], versions(), *([list(size)] if size else [])],
                      sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return paths.cache_dir() / "choices" / f"settled-{model.name}-{machine['id']}-{digest}.json"


def every_build_ready(build, backend):
    return True


def choose(model, registry=None, machine=None, size=None, ready=every_build_ready):
    """The Choice for `model` on this machine (see the module's docstring) for images of `size` (height, width;
    default the card's input, as benched), with the tile its photos results say keeps a 12 MP photo within
    MEMORY_LIMIT_MB (the smallest over the contenders). `ready(build, backend)`: False for a build whose first
    compile takes a minute or more (default: every build is ready)."""
    choice = pick(model, registry, machine, size, ready)
    choice.size = tuple(size) if size else None
    if size:
        choice.reason += f" (for {size[1]}x{size[0]} images)"
    photos = photo_results(model)
    tiles = [on_photos(photos, key)[1] for key in choice.contenders or [(choice.build, choice.backend)]]
    choice.tile = min((tile for tile in tiles if tile), default=None)
    if choice.tile:
        choice.reason += f"; {choice.tile} px tiles keep a 12 MP photo within {MEMORY_LIMIT_MB / 1024:g} GB"
    return choice


def pick(model, registry=None, machine=None, size=None, ready=every_build_ready):
    registry = registry or default_registry()
    machine = machine or describe()
    first, default_backend = reference_key(model)
    if len(model.builds) == 1:
        return Choice(first, default_backend, f"using {first} on {default_backend}: the card's only build")
    found = candidates(model, registry)
    if not found:
        return Choice(first, default_backend, f"using {first} on {default_backend}: no measured accuracy to "
                      f"choose a faster build by")
    metrics = for_task(registry, model.card["task"]).metrics
    classes = bench_rows(model, size=size)
    here = {k: v for k, v in classes.pop(machine["isa"], {}).items() if k in found}
    if here:
        best = fastest(here)
        waiting = fastest({k: v for k, v in here.items() if ready(*k)}) if not ready(*best[0]) else None
        (build, backend), (p50, speedup) = waiting or best
        reason = (f"using {build} on {backend}: {pace(p50, speedup)} on this CPU (bench results for {machine['isa']} "
                  f"CPUs), {quality(model, metrics, found[(build, backend)])}")
        if waiting:
            (faster, on), its_pace = best[0], pace(*best[1])
            reason += (f"; {faster} on {on} ({its_pace}) compiles for a minute or more first, once: `modelzoo "
                       f"compile {model.name} --build {faster} --backend {on} --native` makes it the default")
        return Choice(build, backend, reason, speedup, found[(build, backend)])
    cached = cache_path(model, machine, found, size)
    settled = read_settled(cached)
    if settled and tuple(settled["build"]) in found:
        key = tuple(settled["build"])
        return Choice(*key, settled["reason"] + " (cached)", scores=found[key])
    others = sorted(i for i, rows in classes.items() if any(k in found for k in rows))
    relative = relative_elsewhere(sorted(found), classes)
    order = ranked_elsewhere([k for k in model_order(model, registry) if k in found], relative)
    order = [k for k in order if ready(*k)] or order  # a first run does not wait minutes for a contender
    contenders = pick_contenders(order, relative)
    build, backend = contenders[0]
    basis = f"the fastest accurate on {', '.join(others)} CPUs" if others else "no bench results on any CPU"
    if len(contenders) == 1:
        rivals = [relative[k] for k in order if k in relative and k[1] != backend]
        lead = f"{min(rivals) / relative[order[0]]:.1f}x ahead of other runtimes there, " if rivals else ""
        return Choice(build, backend, f"using {build} on {backend}: {basis} ({lead}not timed on {machine['isa']} "
                      f"CPUs), {quality(model, metrics, found[(build, backend)])}", scores=found[(build, backend)])
    names = " and ".join(f"{b} on {k}" for b, k in contenders)
    return Choice(build, backend, f"no bench results for {machine['isa']} CPUs: timing {names} ({basis}) on "
                  f"the first images, then keeping the faster", scores=found[(build, backend)], contenders=contenders)


def pace(p50, speedup):
    return f"{speedup:.1f}x eager" if speedup else f"{p50:.0f} ms/image"


def read_settled(path):
    """A cached settled choice, or None when there is none or it cannot be read (then it is timed again)."""
    try:
        settled = json.loads(path.read_text())
        return settled if isinstance(settled.get("build"), list) and isinstance(settled.get("reason"), str) else None
    except (OSError, ValueError, AttributeError):
        return None


def model_order(model, registry):
    """Every (build, backend) of the card in its order: each build on its yaml's backend first, then the others."""
    own = [(b, documents.load(model.build_path(b), "build")["backend"]["type"]) for b in model.builds]
    return own + [(b, k) for b in model.builds for k in sorted(registry.backends) if (b, k) not in own]


def settle(model, choice, seconds_per_megapixel, images, registry=None, machine=None):
    """The contenders' timings here ({(build, backend): s/MP}) decide: cache the winner and return its Choice."""
    registry = registry or default_registry()
    machine = machine or describe()
    found = candidates(model, registry)
    timed = sorted(seconds_per_megapixel.items(), key=lambda item: item[1])
    (build, backend), best = timed[0]
    runner_up = ", ".join(f"{b} on {k} {t / best:.2f}x slower" for (b, k), t in timed[1:])
    metrics = for_task(registry, model.card["task"]).metrics
    reason = (f"using {build} on {backend}: {best:.2f} s/MP, timed against {runner_up} on {images} images on "
              f"this {machine['isa']} CPU, {quality(model, metrics, found.get((build, backend), {}))}")
    path = cache_path(model, machine, found, choice.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"build": [build, backend], "reason": reason,
                                "seconds_per_megapixel": {f"{b}|{k}": t for (b, k), t in timed}}))
    return Choice(build, backend, reason, scores=found.get((build, backend)))


def quality(model, metrics, scores):
    """`lol-eval15 <metric> 18.507 dB, ...`: what the chosen build scores on the card's dataset, every declared metric."""
    shown = ", ".join(f"{m.label} {m.format(scores[m.name])}{' ' + m.unit if m.unit else ''}"
                      for m in metrics if m.name in scores)
    return f"{model.card['datasets'][0]} {shown}"
