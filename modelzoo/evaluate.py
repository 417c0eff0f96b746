"""The evaluation step: score a build of a model on a dataset under the card's protocols, with provenance.

Protocols are data in the card (post-processing parameters and how predictions become pixels); evaluators
come from plugins per task. Results are written as JSON validated by schemas/results.schema.json. An
interrupted evaluation resumes from a checkpoint of the images it already scored.
"""
import hashlib
import io
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from modelzoo import compile as compiler
from modelzoo import documents, imaging, paths, runner, weights
from modelzoo.errors import ZooError
from modelzoo.machine import describe, versions
from modelzoo.plugins import registry as default_registry
from modelzoo.tiling import DEFAULT_TILE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metric:
    """What an evaluator measures; run, eval, publish and the templates show whatever is declared."""

    name: str  # the key in scores and results files
    label: str  # for tables, e.g. an abbreviation
    unit: str = ""  # "dB"; empty for a unitless index
    higher_is_better: bool = True
    digits: int = 3  # decimals shown in tables
    description: str = ""
    tolerance: float = 0.0  # a build within this of fp32 (either way) counts as accurate (automatic choice)
    needs_reference: bool = True  # full-reference (scored against a reference) or no-reference (the image alone)

    def format(self, value, digits=None):
        return "-" if value is None else f"{value:.{self.digits if digits is None else digits}f}"

    def heading(self):
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def as_dict(self):
        return asdict(self)


class Evaluator:
    """`score(prediction, reference, protocol, metrics)` -> {metric name: value} for the named metrics.

    prediction is float RGB in [0, 1], reference uint8 RGB or None (an unpaired image: no-reference metrics
    only). `protocols` are the task's own protocols, offered to every model of the task beside its card's:
    each is applied on top of the card's first protocol (its post-processing and quantization) and adds keys
    the evaluator reads; `needs_reference: true` keeps one off unpaired datasets.
    """

    name = ""
    tasks = ()
    metrics = ()  # Metric declarations, the first one the headline (plots, leaderboard sorting)
    # (dataset, protocol, metric name) columns of the index and `modelzoo list`, one row per model; empty: the
    # metrics of each model's first dataset under its first protocol (see modelzoo.leaderboard)
    headline = ()
    protocols = {}  # task-level protocols: name -> {"description": ..., keys the evaluator reads}
    plugin = ""

    def score(self, prediction, reference, protocol, metrics=None):
        raise NotImplementedError

    def metric_names(self, has_reference, requested=None):
        """The metrics to score: `requested` (names) or, by default, the full-reference ones when there is a
        reference and the no-reference ones when there is not. A name not declared, or a full-reference metric
        without a reference, is an error."""
        declared = {m.name: m for m in self.metrics}
        if requested is None:
            return [m.name for m in self.metrics if m.needs_reference == has_reference]
        for name in requested:
            if name not in declared:
                raise ZooError(f"unknown metric '{name}' (declared: {', '.join(declared)})")
            if declared[name].needs_reference and not has_reference:
                raise ZooError(f"metric '{name}' needs a reference image (pass --reference DIR)")
        return list(requested)


def metrics_of(registry, scores):
    """Metric declarations for the metric names in `scores` (dicts of name -> value), in order of appearance;
    a name no evaluator declares is shown as it is."""
    declared = {m.name: m for evaluator in registry.evaluators.values() for m in evaluator.metrics}
    names = dict.fromkeys(name for score in scores for name in score)
    return [declared.get(name) or Metric(name, name, digits=4) for name in names]


AS_WRITTEN = {"quantize": "round"}  # images on disk, or `run`'s outputs, are scored as the uint8 pixels they are


def pair_references(files, folder):
    """{image stem: reference path}, paired by file stem as a dataset's pairs are; an image without one is an
    error naming the folder."""
    found = {p.stem: p for p in imaging.list_images(folder)}
    missing = [f.name for f in files if f.stem not in found]
    if missing:
        more = " ..." if len(missing) > 5 else ""
        raise ZooError(f"--reference {folder}: no reference for {', '.join(missing[:5])}{more}")
    return {f.stem: found[f.stem] for f in files}


def score_pixels(evaluator, pixels, reference, names, label):
    """Metric `names` of uint8 `pixels` (HxWx3), against the reference image file when given; `label` names the
    image in errors."""
    truth = imaging.read_rgb(reference) if reference is not None else None
    if truth is not None and truth.shape != pixels.shape:
        raise ZooError(f"{label}: {pixels.shape[1]}x{pixels.shape[0]} but its reference {reference} is "
                       f"{truth.shape[1]}x{truth.shape[0]}")
    return evaluator.score(pixels.astype(np.float64) / 255.0, truth, AS_WRITTEN, names)


def for_task(registry, task):
    for evaluator in registry.evaluators.values():
        if task in evaluator.tasks:
            return evaluator
    raise ZooError(f"no evaluator registered for task {task} (see `modelzoo plugins`)")


def file_list_hash(items):
    """Identifies the dataset's content: names plus the sha256 of every input and reference."""
    digest = hashlib.sha256()
    for item in sorted(items, key=lambda i: i.name):
        digest.update(item.name.encode())
        for path in (item.input, item.reference):
            if path is not None:
                digest.update(weights.sha256(path).encode())
    return digest.hexdigest()


def protocols_of(model, evaluator):
    """{name: protocol}: the card's protocols, then the task's (the evaluator's), each of those on top of the
    card's first protocol. The one place both kinds meet: eval, run and publish read protocols from here."""
    protocols = dict(model.card["protocols"])
    first = next(iter(protocols.values()))
    for name, spec in evaluator.protocols.items():
        protocols.setdefault(name, {**first, **spec})
    return protocols


def needs_reference(protocol):
    """A protocol that scores against the reference, or derives its runtime inputs from it."""
    return bool(protocol.get("needs_reference") or protocol.get("reference_guided"))


def protocols_for(model, protocol, evaluator, paired=True):
    """[(name, protocol)] to evaluate: one by name or all; on an unpaired dataset, those needing no reference."""
    protocols = protocols_of(model, evaluator)
    if protocol not in (None, "all"):
        if protocol not in protocols:
            raise ZooError(f"{model.card_path}: protocols: no protocol '{protocol}' (have: {', '.join(protocols)})")
        if not paired and needs_reference(protocols[protocol]):
            raise ZooError(f"protocol '{protocol}' needs references; the dataset has none")
        return [(protocol, protocols[protocol])]
    return [(n, p) for n, p in protocols.items() if paired or not needs_reference(p)]


def results_name(model, dataset, job_build, backend, variant, npz=False):
    parts = ["eval", dataset, variant if variant != model.default_variant else None, job_build,
             "npz" if npz else backend]
    return "-".join(p for p in parts if p) + ".json"


def results_file(model, document):
    """The results file name of a document: one file per dataset, variant, build and backend (or npz)."""
    return results_name(model, document["dataset"]["name"], document["build"], document["backend"],
                        document["variant"], npz=document.get("source") == "npz")


def default_results_dir(model):
    """Where `modelzoo eval` writes without --results or --save: the user's data folder, never the package."""
    return paths.data_dir() / "results" / model.name


def merge(old, new):
    """`new` with the metric entries of `old` it does not replace: one protocol's evaluation keeps the others.

    Every entry carries the provenance of the evaluation that wrote it; entries of files written before
    entries had their own get that file's provenance, so nothing kept loses where it came from.
    """
    if not old or any(old.get(key) != new[key] for key in ("model", "variant", "build", "backend")):
        return new
    kept = {}
    for name, entry in old.get("metrics", {}).items():
        if name not in new["metrics"]:
            provenance = entry.get("provenance") or {**old["provenance"],
                                                     "file_list_sha256": old["dataset"]["file_list_sha256"]}
            kept[name] = {**entry, "provenance": provenance}
    return {**new, "metrics": {**kept, **new["metrics"]}}


def write_results(folder, model, document):
    """Merge `document` into its results file in `folder` (see merge); returns the file's path."""
    path = Path(folder) / results_file(model, document)
    old = None
    if path.is_file():
        try:
            old = documents.read(path)
        except ZooError as exc:  # never clobber what cannot be read: the user decides
            raise ZooError(f"{exc} (not overwritten; move it away to write new results)") from None
    merged = merge(old, document)
    problems = documents.errors(merged, "results", str(path))
    if problems:
        raise ZooError(problems[0])
    imaging.atomic_write(path, json.dumps(merged, indent=2) + "\n")
    return path


def evaluate(model, dataset, build="fp32", backend=None, protocol="all", data_root=None, variant=None,
             weights_path=None, workspace=None, threads=0, from_npz=None, results_dir=None, progress=True,
             log=logger.info, registry=None):
    """Evaluate and return the results document (also merged into its file in results_dir when given)."""
    registry = registry or default_registry()
    data = registry.dataset(dataset)
    items = data.items(data_root)
    evaluator = for_task(registry, model.card["task"])
    protocols = protocols_for(model, protocol, evaluator, data.paired)
    # Photos of an unpaired set run at their own size, tiled where large, as `modelzoo run` enhances them, and are
    # scored with the no-reference metrics; paired sets keep the card's input shape (the reference zoo's
    # protocol; LOL's images have that size).
    native = not data.paired
    job = compiler.prepare(model, build, backend, variant, weights_path, native=native, workspace=workspace,
                           registry=registry)
    request = runner.Request(model, progress=progress, evaluator=evaluator, native=native,
                             tile=DEFAULT_TILE if native else 0,
                             references={i.name: i.reference for i in items if i.reference is not None},
                             protocols=protocols, score_unpaired=not data.paired)
    if from_npz:
        request.outputs_for = npz_outputs(Path(from_npz), len(model.card["outputs"]))
        artifact = None
    else:
        request.session = compiler.load(job, threads=threads, log=log)
        artifact = compiler.artifact_hash(job) if job.workdir and (job.workdir / compiler.MANIFEST).exists() \
            else None
    name = results_name(model, dataset, job.build, job.backend.name, job.variant, npz=bool(from_npz))
    checkpoint = Checkpoint(Path(results_dir or Path(workspace or paths.cache_dir()) / "results") / name,
                            {"artifact": artifact, "npz": str(from_npz), "dataset": dataset,
                             "protocols": [p for p, _ in protocols], "variant": job.variant, "build": job.build,
                             "runtime_inputs": model.runtime_values()})
    request.done = set(checkpoint.scored)
    request.on_result = checkpoint.add
    started = time.perf_counter()
    report = runner.run_files(request, [i.input for i in items])
    if report["failures"]:
        raise ZooError(f"{dataset}: {len(report['failures'])} image(s) failed: {report['failures'][0]['error']}")
    scored = checkpoint.scored
    file_list_sha256 = file_list_hash(items)
    results = {
        "model": model.name, "variant": job.variant, "build": job.build, "backend": job.backend.name,
        "dtype": job.dtype, "source": "npz" if from_npz else "inference",
        "dataset": {"name": dataset, "split": data.split, "images": len(items), "file_list_sha256": file_list_sha256},
        "metrics": {},
        "timing": {"seconds": round(time.perf_counter() - started, 2)},
        **({"runtime_inputs": model.runtime_values()} if model.runtime_inputs else {}),
        "provenance": {
            "weights_sha256": weights.sha256s(model, job.variant),
            "artifact_sha256": artifact,
            "build_yaml_sha256": weights.sha256(job.spec_path),
            "versions": versions("torch", "onnx", "onnxruntime", "openvino", "onnxconverter-common",
                                          "numpy", "scikit-image", "opencv-python-headless"),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": describe(),  # the same description bench documents carry
            "modelzoo": versions("modelzoo")["modelzoo"],
            "command": " ".join(["modelzoo", *sys.argv[1:]]) if sys.argv else "",
        },
    }
    if report["images"]:
        results["timing"]["inference_mean"] = float(np.mean([i["seconds"] for i in report["images"]]))
    for protocol_name, protocol_spec in protocols:
        per_image = {n: s[protocol_name] for n, s in sorted(scored.items())}
        mean = {m: float(np.mean([s[m] for s in per_image.values()])) for m in next(iter(per_image.values()))}
        results["metrics"][protocol_name] = {"protocol": protocol_spec, "mean": mean, "images": per_image,
                                             "provenance": {**results["provenance"],
                                                            "file_list_sha256": file_list_sha256}}
        if protocol_spec.get("reference_guided"):  # the runtime inputs each image's reference gave
            results["metrics"][protocol_name]["runtime_inputs"] = {
                n: checkpoint.inputs.get(n, {}).get(protocol_name) for n in sorted(scored)}
    problems = documents.errors(results, "results", name)
    if problems:
        raise ZooError(problems[0])
    if results_dir:
        write_results(results_dir, model, results)
    checkpoint.clear()
    return results


class Checkpoint:
    """Per-image scores saved after each image, so an interrupted evaluation resumes where it stopped."""

    def __init__(self, final_path, key):
        self.path = final_path.with_name(f".{final_path.stem}.partial.json")
        self.key = key
        self.scored, self.inputs = {}, {}  # inputs: image -> {protocol: runtime inputs} (reference-guided)
        try:
            saved = json.loads(self.path.read_text())
            if saved.get("key") == key:
                self.scored, self.inputs = saved["images"], saved.get("runtime_inputs", {})
        except (OSError, ValueError, KeyError):
            pass

    def add(self, result):
        self.scored[result["name"]] = result["metrics"]
        if result.get("runtime_inputs"):
            self.inputs[result["name"]] = result["runtime_inputs"]
        imaging.atomic_write(self.path, json.dumps({"key": self.key, "images": self.scored,
                                                    "runtime_inputs": self.inputs}))

    def clear(self):
        self.path.unlink(missing_ok=True)


def npz_outputs(folder, count):
    """outputs_for() reading `<stem>.npz` with output_0..output_{count-1} saved by `modelzoo run --npz-out`."""

    def load(source, image):
        path = folder / f"{Path(source).stem}.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                return [data[f"output_{i}"] for i in range(count)]
        except FileNotFoundError:
            raise ZooError(f"{path}: no saved outputs for {Path(source).name}") from None
        except (OSError, ValueError, KeyError) as exc:
            raise ZooError(f"{path}: unreadable outputs ({exc})") from None

    return load


def save_npz_outputs(folder):
    """on_outputs() writing each image's raw outputs as output_0.. (the reference zoo's vamp npz layout)."""
    folder = Path(folder)

    def save(source, outputs):
        buffer = io.BytesIO()
        np.savez(buffer, **{f"output_{i}": o for i, o in enumerate(outputs)})
        imaging.atomic_write(folder / f"{Path(source).stem}.npz", buffer.getvalue())

    return save


def image2npz(source, target, datalist):
    """Images -> `<stem>.npz` with uint8 CHW RGB under input_0, plus a datalist of npz paths (one a line)."""
    written = []
    for path in imaging.list_images(source):
        image = imaging.read_rgb(path)
        buffer = io.BytesIO()
        np.savez(buffer, input_0=np.ascontiguousarray(image.transpose(2, 0, 1)))
        out = Path(target) / f"{path.stem}.npz"
        imaging.atomic_write(out, buffer.getvalue())
        written.append(out)
    imaging.atomic_write(datalist, "".join(f"{p.resolve()}\n" for p in written))
    return written


def read_datalist(path):
    """The npz paths of a datalist file (relative lines are relative to the datalist's folder)."""
    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise ZooError(f"{path}: cannot read datalist ({exc.strerror or exc})") from None
    if not lines:
        raise ZooError(f"{path}: the datalist is empty")
    return [p if p.is_absolute() else path.parent / p for p in map(Path, lines)]
