"""The headline table: one row per model (default weights, the card's reference build), the scores its task
declares as headline, its size, the latency of its fastest accurate build and its licence.

The published index and `modelzoo list` show the same rows. Which (dataset, protocol, metric) columns a task
headlines is the evaluator's declaration (`Evaluator.headline`); without one, the first protocol's metrics on
each model's first dataset. Everything comes from the results and bench files: nothing is typed here.
"""
from collections import Counter
from dataclasses import dataclass

from modelzoo import choose, documents
from modelzoo.evaluate import for_task

COMMERCIAL = {"commercial": "yes", "non-commercial": "no", "unknown": "unknown"}


@dataclass(frozen=True)
class Column:
    dataset: str
    protocol: str
    metric: object  # modelzoo.evaluate.Metric

    @property
    def key(self):
        return f"{self.dataset}/{self.protocol}/{self.metric.name}"

    def heading(self, first_protocol="zoo"):
        protocol = "" if self.protocol == first_protocol else f" {self.protocol}"
        return f"{self.dataset}{protocol} {self.metric.heading()}"


def columns(registry, models):
    """The headline columns of the models' tasks, in declaration order, without repeats."""
    found = {}
    for model in models:
        evaluator = for_task(registry, model.card["task"])
        declared = {m.name: m for m in evaluator.metrics}
        wanted = getattr(evaluator, "headline", ()) or [
            (dataset, next(iter(model.card["protocols"])), m.name) for dataset in model.card["datasets"][:1]
            for m in evaluator.metrics]
        for dataset, protocol, metric in wanted:
            if metric in declared:
                column = Column(dataset, protocol, declared[metric])
                found.setdefault(column.key, column)
    return list(found.values())


def reference_scores(model):
    """{(dataset, protocol): {metric: mean}} of the reference build (default weights) from its results files."""
    build, backend = choose.reference_key(model)
    scores = {}
    folder = model.results_dir()
    for path in sorted(folder.glob("eval-*.json")) if folder.is_dir() else []:
        document = documents.read(path)
        if (document.get("variant"), document.get("build"), document.get("backend")) != \
                (model.default_variant, build, backend):
            continue
        for protocol, measured in document.get("metrics", {}).items():
            scores[(document["dataset"]["name"], protocol)] = measured["mean"]
    return scores


def bench_class(models):
    """The instruction-set class most bench rows come from (latencies are only comparable within one)."""
    counts = Counter()
    for model in models:
        folder = model.results_dir()
        for path in sorted(folder.glob("bench-*.json")) if folder.is_dir() else []:
            document = documents.read(path)
            counts[document.get("machine", {}).get("isa") or ""] += len(document.get("rows", []))
    return counts.most_common(1)[0][0] if counts else None


def fastest_accurate(model, registry, isa):
    """(build, backend, p50 ms) of the fastest accurate build on `isa` CPUs, from bench files, or None."""
    accurate = choose.candidates(model, registry, only_runnable=False)
    speeds = {key: value for key, value in choose.bench_rows(model, isa).get(isa, {}).items() if key in accurate}
    best = choose.fastest(speeds)
    return (*best[0], best[1][0]) if best else None


def table(registry, models=None):
    """{"columns": [Column], "rows": [row dict], "isa": class of the latencies}, rows sorted by name."""
    models = sorted(models or registry.models.values(), key=lambda m: m.name)
    wanted = columns(registry, models)
    isa = bench_class(models)
    rows = []
    for model in models:
        scores = reference_scores(model)
        card = model.card
        fastest = fastest_accurate(model, registry, isa) if isa is not None else None
        rows.append({
            "name": model.name, "title": card["title"], "variant": model.default_variant,
            "reference": "/".join(choose.reference_key(model)),
            "values": [scores.get((c.dataset, c.protocol), {}).get(c.metric.name) for c in wanted],
            "params": card["complexity"]["params"], "macs": card["complexity"]["macs"] / 1e9,
            "fastest": {"build": fastest[0], "backend": fastest[1], "p50": fastest[2]} if fastest else None,
            "license": card["license"]["id"], "commercial": COMMERCIAL[card["license"]["use"]],
            "notice": " ".join((card["license"].get("notice") or "").split()),
        })
    return {"columns": wanted, "rows": rows, "isa": isa}
