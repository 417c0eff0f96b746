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
"""
import hashlib
import json
import logging
from dataclasses import dataclass, field

from modelzoo import documents, paths
from modelzoo.evaluate import for_task
from modelzoo.machine import describe, versions
from modelzoo.plugins import registry as default_registry

log = logging.getLogger(__name__)
CONTENDERS = 2  # builds timed on the first images where this class has no bench results


@dataclass
class Choice:
    build: str
    backend: str
    reason: str  # one line for the user: what was chosen, why, and how sure that is
    speedup: float | None = None
    scores: dict | None = None
    contenders: list = field(default_factory=list)  # [(build, backend)] still to be timed here; empty: settled


def evaluations(model):
    """{(build, backend): mean scores} on the card's first dataset and protocol, default weights variant."""
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


def bench_rows(model, isa=None):
    """{isa: {(build, backend): (p50 ms, speed-up)}} from the model's bench files (batch 1, one instance, CPU,
    static shapes); only class `isa` when given."""
    classes = {}
    folder = model.results_dir()
    for path in sorted(folder.glob("bench-*.json")) if folder.is_dir() else []:
        document = documents.read(path)
        found = document.get("machine", {}).get("isa") or ""
        if isa is not None and found != isa:
            continue
        rows = classes.setdefault(found, {})
        for row in document.get("rows", []):
            if row.get("batch") == 1 and row.get("instances") == 1 and row.get("device", "cpu") == "cpu" \
                    and row.get("shape_mode") != "dynamic":
                key = (row["build"], row["backend"])
                if key not in rows or row["per_image_ms"]["p50"] < rows[key][0]:
                    rows[key] = (row["per_image_ms"]["p50"], row.get("speedup"))
    return classes


def runnable(model, build, backend, registry):
    runtime = registry.backends.get(backend)
    spec = documents.load(model.build_path(build), "build")["backend"]
    return runtime is not None and not runtime.missing(spec) and spec["dtype"] in runtime.dtypes


def candidates(model, registry, only_runnable=True):
    """{(build, backend): mean scores} of the accurate builds (that can run here, unless told otherwise)."""
    metrics = for_task(registry, model.card["task"]).metrics
    return {key: mean for key, mean in accurate(model, evaluations(model), metrics).items()
            if not only_runnable or runnable(model, *key, registry)}


def fastest(speeds):
    """((build, backend), (p50 ms, speed-up)) with the lowest p50, or None."""
    return min(speeds.items(), key=lambda item: item[1][0]) if speeds else None


def ranked_elsewhere(keys, classes):
    """`keys` ordered by the bench results of other instruction-set classes: by the mean, over the classes that
    measured a key, of its p50 relative to that class's fastest key; keys measured nowhere come last."""
    relative = {}
    for rows in classes.values():
        measured = {k: rows[k][0] for k in keys if k in rows}
        if measured:
            best = min(measured.values())
            for key, p50 in measured.items():
                relative.setdefault(key, []).append(p50 / best)
    return sorted(keys, key=lambda k: (k not in relative, sum(relative.get(k, [0])) / len(relative.get(k, [1])), k))


def pick_contenders(order, count=CONTENDERS):
    """The leader, then the best of each other backend: runtimes differ most between CPUs, builds on one
    runtime much less."""
    chosen = order[:1]
    for key in order[1:]:
        if len(chosen) < count and key[1] not in {backend for _, backend in chosen}:
            chosen.append(key)
    return chosen


def cache_path(model, machine, keys):
    blob = json.dumps([model.name, sorted(keys), machine["id"], versions()], sort_keys=True)
    return paths.cache_dir() / "choices" / f"{model.name}-{machine['id']}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.json"


def choose(model, registry=None, machine=None):
    """The Choice for `model` on this machine (see the module's docstring)."""
    registry = registry or default_registry()
    machine = machine or describe()
    first, default_backend = reference_key(model)
    found = candidates(model, registry)
    if not found:
        return Choice(first, default_backend, f"using {first} on {default_backend}: no measured accuracy to "
                      f"choose a faster build by")
    metrics = for_task(registry, model.card["task"]).metrics
    classes = bench_rows(model)
    here = {k: v for k, v in classes.pop(machine["isa"], {}).items() if k in found}
    if here:
        (build, backend), (p50, speedup) = fastest(here)
        pace = f"{speedup:.1f}x eager" if speedup else f"{p50:.0f} ms/image"
        return Choice(build, backend, f"using {build} on {backend}: {pace} on this CPU (bench results for "
                      f"{machine['isa']} CPUs), {quality(model, metrics, found[(build, backend)])}", speedup,
                      found[(build, backend)])
    cached = cache_path(model, machine, found)
    if cached.is_file():
        settled = json.loads(cached.read_text())
        key = tuple(settled["build"])
        if key in found:
            return Choice(*key, settled["reason"] + " (cached)", scores=found[key])
    others = sorted(i for i, rows in classes.items() if any(k in found for k in rows))
    contenders = pick_contenders(ranked_elsewhere(sorted(found), classes))
    build, backend = contenders[0]
    basis = f"the fastest accurate on {', '.join(others)} CPUs" if others else "no bench results on any CPU"
    if len(contenders) == 1:
        return Choice(build, backend, f"using {build} on {backend}: {basis}, unmeasured on {machine['isa']} "
                      f"CPUs", scores=found[(build, backend)])
    names = " and ".join(f"{b} on {k}" for b, k in contenders)
    return Choice(build, backend, f"no bench results for {machine['isa']} CPUs: timing {names} ({basis}) on "
                  f"the first images, then keeping the faster", scores=found[(build, backend)], contenders=contenders)


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
    path = cache_path(model, machine, found)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"build": [build, backend], "reason": reason,
                                "seconds_per_megapixel": {f"{b}|{k}": t for (b, k), t in timed}}))
    return Choice(build, backend, reason, scores=found.get((build, backend)))


def quality(model, metrics, scores):
    """`lol-eval15 PSNR 18.507 dB, SSIM 0.7481`: what the chosen build scores on the card's dataset."""
    shown = ", ".join(f"{m.label} {m.format(scores[m.name])}{' ' + m.unit if m.unit else ''}"
                      for m in metrics if m.name in scores)
    return f"{model.card['datasets'][0]} {shown}"
