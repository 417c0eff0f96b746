"""The fastest accurate build for this machine, chosen from measurements, never from a list in the engine.

Accurate: on the card's first dataset and protocol (default weights), every metric the evaluator declares is
within that metric's tolerance of the reference build (the card's first build on its own backend, fp32).
Fastest: the lowest per-image p50 latency among the accurate builds, from the model's bench files for this
machine's instruction-set class (bench-<machine>.json, `modelzoo bench --save`). Where no bench file matches
the class, the accurate candidates are timed once here (a short bench) and the result is cached per machine
and library versions. Builds whose runtime is missing here are never chosen.
"""
import hashlib
import json
import logging
from dataclasses import dataclass

from modelzoo import documents, paths

log = logging.getLogger(__name__)
QUICK_REPEAT = 3  # timed runs per candidate when measuring here: a choice, not a published number


@dataclass
class Choice:
    build: str
    backend: str
    reason: str  # one line for the user: what was chosen and why
    speedup: float | None = None
    scores: dict | None = None


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


def bench_rows(model, isa):
    """{(build, backend): (p50 ms, speed-up)} from the bench files of machines of instruction-set class `isa`."""
    rows = {}
    folder = model.results_dir()
    for path in sorted(folder.glob("bench-*.json")) if folder.is_dir() else []:
        document = documents.read(path)
        machine = document.get("machine", {})
        if (machine.get("isa") or "") != isa:
            continue
        for row in document.get("rows", []):
            if row.get("batch") == 1 and row.get("instances") == 1 and row.get("device", "cpu") == "cpu" \
                    and row.get("shape_mode") != "dynamic":
                key = (row["build"], row["backend"])
                if key not in rows or row["per_image_ms"]["p50"] < rows[key][0]:
                    rows[key] = (row["per_image_ms"]["p50"], row.get("speedup"))
    return rows


def runnable(model, build, backend, registry):
    runtime = registry.backends.get(backend)
    if model.unsupported(backend):
        return False
    spec = documents.load(model.build_path(build), "build")["backend"]
    return runtime is not None and not runtime.missing(spec) and spec["dtype"] in runtime.dtypes


def measured_here(model, candidates, machine, registry):
    """Time each candidate once on this machine (cached per machine and library versions)."""
    from modelzoo import bench

    key = hashlib.sha256(json.dumps([model.name, sorted(candidates), machine["id"], bench.versions()],
                                    sort_keys=True).encode()).hexdigest()[:16]
    cache = paths.cache_dir() / "choices" / f"{model.name}-{machine['id']}-{key}.json"
    if cache.is_file():
        return {tuple(k.split("|")): tuple(v) for k, v in json.loads(cache.read_text()).items()}
    log.info("%s: no bench results for %s CPUs; timing %d accurate builds once (cached in %s)", model.name,
             machine["isa"], len(candidates), cache.parent)
    rows = {}
    for build, backend in sorted(candidates):
        document = bench.run(model, builds=[build], backends=[backend], warmup=1, repeat=QUICK_REPEAT,
                             isolate=False, log=lambda m: log.info("%s", m))
        for row in document["rows"]:
            rows[(build, backend)] = (row["per_image_ms"]["p50"], None)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"|".join(k): v for k, v in rows.items()}))
    return rows


def candidates(model, registry, only_runnable=True):
    """{(build, backend): mean scores} of the accurate builds (that can run here, unless told otherwise)."""
    from modelzoo.evaluate import for_task

    metrics = for_task(registry, model.card["task"]).metrics
    return {key: mean for key, mean in accurate(model, evaluations(model), metrics).items()
            if not only_runnable or runnable(model, *key, registry)}


def fastest(speeds):
    """((build, backend), (p50 ms, speed-up)) with the lowest p50, or None."""
    return min(speeds.items(), key=lambda item: item[1][0]) if speeds else None


def choose(model, registry=None, measure=True):
    """The Choice for `model` on this machine; the card's first build when nothing was measured."""
    from modelzoo.bench import machine as this_machine
    from modelzoo.evaluate import for_task
    from modelzoo.plugins import registry as default_registry

    registry = registry or default_registry()
    first, default_backend = reference_key(model)
    metrics = for_task(registry, model.card["task"]).metrics
    if len(model.builds) == 1:
        return Choice(first, default_backend, f"using {first} on {default_backend}: the card's only build")
    candidates_here = candidates(model, registry)
    machine = this_machine()
    if not candidates_here:
        return Choice(first, default_backend, f"using {first} on {default_backend}: no measured accuracy to "
                      f"choose a faster build by")
    speeds = {k: v for k, v in bench_rows(model, machine["isa"]).items() if k in candidates_here}
    source = f"bench results for {machine['isa']} CPUs"
    if not speeds and measure:
        speeds = {k: v for k, v in measured_here(model, candidates_here, machine, registry).items()
                  if k in candidates_here}
        source = f"timed on this {machine['isa']} CPU"
    if not speeds:
        return Choice(first, default_backend, f"using {first} on {default_backend}: no timings for "
                      f"{machine['isa']} CPUs")
    (build, backend), (p50, speedup) = fastest(speeds)
    scores = candidates_here[(build, backend)]
    quality = ", ".join(f"{m.label} {m.format(scores[m.name])}{' ' + m.unit if m.unit else ''}"
                        for m in metrics if m.name in scores)
    pace = f"{speedup:.1f}x eager" if speedup else f"{p50:.0f} ms/image"
    dataset = model.card["datasets"][0]
    return Choice(build, backend, f"using {build} on {backend}: {pace} on this CPU ({source}), "
                  f"{dataset} {quality}", speedup, scores)
