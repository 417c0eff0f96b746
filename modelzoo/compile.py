"""The compile step: export with the plugin's deploy patch, build for a backend, keep artifacts in a cache.

Artifacts live under the workspace (default: the user cache) in a folder named by a hash of everything that
decides their content: the sha256 of every weights file, the build yaml, the backend, the shape mode and library versions.
Each folder has a manifest with the sha256 of its files, so a corrupt or partial artifact is rebuilt, and a
file lock keeps two processes from building the same artifact at once.
"""
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from modelzoo import documents, paths, weights
from modelzoo.errors import ZooError
from modelzoo.export import export_onnx
from modelzoo.machine import versions
from modelzoo.padding import padded, wrap
from modelzoo.plugins import registry as default_registry
from modelzoo.version import __version__

# Vendor compilers named in reference-zoo build yamls that no open runtime here provides.
VENDOR_BACKENDS = {"tvm_vacc": "the VastAI NPU compiler (vamc)"}
MANIFEST = "manifest.json"
# Libraries whose versions are part of an artifact's cache key (an upgrade rebuilds; `cache prune` removes the old).
LIBRARIES = ("torch", "onnx", "onnxruntime", "openvino", "onnxconverter-common")
logger = logging.getLogger(__name__)


@dataclass
class Job:
    model: object
    build: str
    spec: dict
    spec_path: Path
    backend: object
    dtype: str
    variant: str
    weights: object  # weights.resolve(): a Path, {role: Path}, or None for a model without weights
    native: bool = False
    options: dict = field(default_factory=dict)
    workspace: Path | None = None
    workdir: Path | None = None
    onnx: Path | None = None
    report: dict = field(default_factory=dict)
    donor: "Job | None" = None  # the compiled int8 job of another backend that this one converts (int8_donor)

    @property
    def label(self):
        return f"{self.model.name}/{self.build} ({self.backend.name} {self.dtype})"

    @property
    def shape(self):
        """The export shape: the build yaml's frontend.shape, else the card's input.shape, with H and W rounded
        up to the card's input.multiple_of (the session pads inputs to it, see modelzoo.padding)."""
        frontend = self.spec["frontend"].get("shape") or {"input": self.model.input_shape()}
        batch, channels, height, width = next(iter(frontend.values()))
        multiple = self.model.multiple_of
        return [batch, channels, padded(height, multiple), padded(width, multiple)]

    def torch_module(self):
        """The plugin's network with verified weights, wrapped by its deploy patch, in eval mode."""
        state = weights.load(self.model, self.variant, self.weights)
        label = ", ".join(map(str, self.weights.values())) if isinstance(self.weights, dict) else self.weights
        return self.model.deploy(self.model.with_weights(self.variant, state, label)).eval()


def prepare(model, build=None, backend=None, variant=None, weights_path=None, native=False, workspace=None,
            registry=None, options=None):
    """A Job for a card build name (or a build yaml path) on a backend (default: the yaml's)."""
    registry = registry or default_registry()
    build = build or model.builds[0]
    spec_path = Path(build) if build.endswith((".yaml", ".yml")) else model.build_path(build)
    spec = documents.load(spec_path, "build")
    name = build if not build.endswith((".yaml", ".yml")) else Path(build).stem
    backend_name = backend or spec["backend"]["type"]
    if model.unsupported(backend_name):
        raise ZooError(f"{model.card_path}: unsupported.{backend_name}: {model.name} cannot run on {backend_name}: "
                       f"{model.unsupported(backend_name)}")
    if backend_name not in registry.backends and backend_name in VENDOR_BACKENDS:
        raise ZooError(f"{spec_path}: backend.type: '{backend_name}' is {VENDOR_BACKENDS[backend_name]}, which is "
                       f"not installed here; available backends: {', '.join(sorted(registry.backends))} "
                       f"(pass --backend NAME)")
    runtime = registry.backend(backend_name)
    problem = runtime.missing(spec["backend"])
    if problem:
        raise ZooError(problem)
    dtype = spec["backend"]["dtype"]
    if dtype not in runtime.dtypes:
        raise ZooError(f"{spec_path}: backend.dtype: {backend_name} builds {', '.join(runtime.dtypes)}, not {dtype}")
    checkpoint = spec["frontend"].get("checkpoint")
    if checkpoint and getattr(runtime, "needs_onnx", True) and not Path(checkpoint).is_file():
        raise ZooError(f"{spec_path}: frontend.checkpoint: {checkpoint} not found")
    variant = variant or model.default_variant
    path = weights.resolve(model, variant, weights_path)
    merged = {**(spec["backend"].get("compile") or {}), **(options or {})}
    space = Path(workspace or spec.get("workspace", {}).get("path") or paths.cache_dir() / "artifacts")
    return Job(model, name, spec, spec_path, runtime, dtype, variant, path, native, merged, space)


def select_builds(model, build, backend=None, registry=None):
    """(build names to run, [skip reasons]) for a build name or 'all'.

    With 'all', a build written for another backend than the card's first build (e.g. an ncnn yaml) is not
    re-run on --backend; builds whose runtime is missing here are skipped with the install hint, and those on a
    backend the card declares unsupported with the card's reason.
    """
    if build != "all":
        return [build], []
    registry = registry or default_registry()
    specs = {name: documents.load(model.build_path(name), "build")["backend"] for name in model.builds}
    default = specs[model.builds[0]]["type"]
    chosen, skipped = [], []
    for name, spec in specs.items():
        written_for, runtime = spec["type"], backend or spec["type"]
        if backend and written_for not in (backend, default):
            skipped.append(f"{model.name}/{name}: written for {written_for}, not run on {backend}")
        elif model.unsupported(runtime):
            skipped.append(f"{model.name}/{name}: {model.name} cannot run on {runtime}: {model.unsupported(runtime)}")
        elif runtime not in registry.backends:
            skipped.append(f"{model.name}/{name}: backend {runtime} is not available here")
        elif registry.backends[runtime].missing(spec):
            skipped.append(f"{model.name}/{name}: {registry.backends[runtime].missing(spec)}")
        elif spec["dtype"] not in registry.backends[runtime].dtypes:
            skipped.append(f"{model.name}/{name}: {runtime} does not build {spec['dtype']}")
        else:
            chosen.append(name)
    return chosen, skipped


def code_hash(model):
    """sha256 over the model folder's Python files (and those of the model whose network it reuses): the network
    and hooks that decide an export's content."""
    digest = hashlib.sha256()
    for folder in (model.folder, *([model.base.folder] if model.base is not None else [])):
        for path in sorted(folder.glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cache_key(job):
    inputs = {
        "modelzoo": __version__,
        "model": job.model.name,
        "variant": job.variant,
        "weights_sha256": weights.sha256s(job.model, job.variant),  # every file's
        "weights_reading": weights.READING,  # files read another way make other artifacts
        "code_sha256": code_hash(job.model),  # an edited net.py or plugin.py must not reuse old artifacts
        "build": {k: v for k, v in job.spec.items() if k != "workspace"},
        "backend": job.backend.name,
        "shape": job.shape,
        "native": job.native,
        "versions": versions(*LIBRARIES),
    }
    blob = json.dumps(inputs, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest(), inputs


def artifact_dir(job):
    key, _ = cache_key(job)
    shape = "dynamic" if job.native else "x".join(map(str, job.shape))
    return Path(job.workspace) / job.model.name / f"{job.build}-{job.backend.name}-{job.dtype}-{shape}-{key[:12]}"


def intact(folder):
    """True when the manifest exists and every file it lists has the recorded sha256."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return False
    try:
        files = json.loads(manifest.read_text())["files"]
        return all((folder / name).is_file() and weights.sha256(folder / name) == digest
                   for name, digest in files.items())
    except (ValueError, KeyError, OSError):
        return False


def ensure(job, force=False, log=logger.info, then=None):
    """Compile `job` unless an intact artifact is cached; sets job.workdir and returns its manifest.

    `then(manifest)` runs while the lock is still held (load() opens its session there, so a concurrent
    --force rebuild cannot delete the files under it) and its value is returned instead.
    """
    job.workdir = artifact_dir(job)
    job.workdir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(job.workdir) + ".lock"):
        if not force and intact(job.workdir):
            manifest = json.loads((job.workdir / MANIFEST).read_text())
            with contextlib.suppress(OSError):  # its mtime is the artifact's last use (`modelzoo cache list`)
                os.utime(job.workdir / MANIFEST)
            manifest["cache"] = "hit"
            job.report.update(manifest.get("report", {}))
        else:
            if job.workdir.exists():
                if (job.workdir / MANIFEST).exists() and not force:
                    log(f"{job.label}: cached artifact in {job.workdir} is damaged; rebuilding")
                shutil.rmtree(job.workdir)
            manifest = _build(job, log)
        return then(manifest) if then else manifest


def _build(job, log):
    building = job.workdir.with_name(job.workdir.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    final, job.workdir = job.workdir, building
    started = time.perf_counter()
    try:
        files = []
        job.donor = donor(job, log)
        if getattr(job.backend, "needs_onnx", True) and job.donor is None:
            checkpoint = job.spec["frontend"].get("checkpoint")
            if checkpoint:
                job.onnx = Path(checkpoint)
            else:
                log(f"{job.label}: exporting ONNX with the {job.model.name} deploy patch")
                job.onnx = building / "export.onnx"
                job.report["export"] = export_onnx(job, job.onnx)
        log(f"{job.label}: compiling")
        with contextlib.redirect_stdout(sys.stderr):  # runtimes' chatter must not corrupt --json output
            files += job.backend.compile(job)
        key, inputs = cache_key(job)
        manifest = {
            "key": key, "inputs": inputs, "label": job.label, "dtype": job.dtype,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(time.perf_counter() - started, 2),
            "report": job.report,
            "files": {name: weights.sha256(building / name) for name in files},
        }
        for leftover in building.iterdir():
            if leftover.name not in files:
                leftover.unlink()
        (building / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        building.rename(final)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        job.workdir = final
        raise
    job.workdir = final
    manifest["cache"] = "miss"
    return manifest


def donor(job, log):
    """The same int8 build compiled (or found cached) on the backend job.backend converts its int8 from, or None."""
    name = job.backend.int8_donor(job.spec["backend"]) if job.dtype == "int8" else None
    if name is None:
        return None
    given = dataclasses.replace(job, backend=default_registry().backend(name), workdir=None, onnx=None, report={},
                                donor=None)
    ensure(given, log=log)
    return given


def ready(job):
    """True when `job` opens within seconds: compiled here already, or a float build on a backend that compiles
    quickly. An int8 build calibrates for minutes first (unless the int8 build it converts from has); ncnn's
    conversion takes a minute."""
    if intact(artifact_dir(job)):
        return True
    if job.dtype == "int8":
        name = job.backend.int8_donor(job.spec["backend"])
        given = name and dataclasses.replace(job, backend=default_registry().backend(name))
        return bool(given) and intact(artifact_dir(given))
    return job.backend.quick


def artifact_hash(job):
    """One hash for a compiled artifact: the sha256 of its manifest's file list."""
    manifest = json.loads((job.workdir / MANIFEST).read_text())
    return hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest()


def load(job, threads=0, force=False, log=logger.info):
    """Compile if needed, then open a session (under the artifact's lock) that meets the card's input.multiple_of."""
    session = ensure(job, force=force, log=log, then=lambda manifest: job.backend.load(job, threads=threads))
    return wrap(session, job.model.multiple_of)
