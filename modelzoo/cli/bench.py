"""`modelzoo bench`: latency, throughput and peak memory per build and backend (the reference zoo's `vamp`)."""
from pathlib import Path

import click

from modelzoo import bench as engine
from modelzoo import choose, documents, fidelity
from modelzoo.cli import complete
from modelzoo.cli.common import cli, emit_json, table
from modelzoo.complexity import summary
from modelzoo.errors import ZooError
from modelzoo.imaging import list_images
from modelzoo.plugins import registry
from modelzoo.samples import folder as sample_folder


def _shape(value):
    if value is None:
        return None
    try:
        dims = [int(v) for v in value.replace("x", ",").split(",") if v.strip()]
    except ValueError:
        dims = []
    if len(dims) != 3 or min(dims) < 1:
        raise ZooError(f"--shape {value}: expected C,H,W such as 3,400,600")
    return dims


def _names(value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@cli.command()
@click.argument("model", shell_complete=complete.models)
@click.option("--build", default=None, shell_complete=complete.builds, help="Card build(s), comma-separated, or 'all' (default: the card's first).")
@click.option("--backend", default=None, shell_complete=complete.backends,
              help="Runtime(s), comma-separated (default: each build yaml's backend.type); torch fp16/bf16 need CUDA.")
@click.option("--batch", type=int, default=1, show_default=True, help="Images per inference.")
@click.option("--threads", type=click.IntRange(min=0), default=0, help="Runtime threads (0: the runtime's default).")
@click.option("--instances", type=int, default=1, show_default=True,
              help="Concurrent sessions, one thread each; throughput is their sum.")
@click.option("--shape", default=None, help="Input C,H,W (default: the card's, e.g. 3,400,600).")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed runs per session.")
@click.option("--repeat", type=int, default=20, show_default=True, help="Timed runs per session.")
@click.option("--baseline", is_flag=True, help="Also time the official-style torch eager fp32 model, print ratios.")
@click.option("--device", default=None, help="torch backend device: auto, cpu, cuda (default: auto).")
@click.option("--torch-compile", is_flag=True, help="torch backend: torch.compile the module.")
@click.option("--variant", default=None, help="Weights variant from the card (default: the first).")
@click.option("--weights", type=click.Path(path_type=Path), default=None, help="Weights file or folder.")
@click.option("--workspace", type=click.Path(path_type=Path), default=None, help="Artifact cache folder.")
@click.option("--in-process", is_flag=True,
              help="Measure in this process instead of one spawned process per row (peak memory is then shared).")
@click.option("--save", is_flag=True, help="Write results/bench-<machine-id>.json in the model's folder.")
@click.option("--machine-id", default=None, help="Name for the saved file (default: cpu model and cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the document (schemas/bench.schema.json).")
def bench(model, build, backend, batch, threads, instances, shape, warmup, repeat, baseline, device, torch_compile,
          variant, weights, workspace, in_process, save, machine_id, as_json):
    """Benchmark MODEL: warm-up, latency p50/p90/p99, images/s and peak memory per build and backend."""
    m = registry().model(model)
    options = {}
    if device:
        options["device"] = device
    if torch_compile:
        options["torch_compile"] = True
    builds = _names(build) or m.builds[:1]
    document = engine.run(m, builds="all" if builds == ["all"] else builds, backends=_names(backend), batch=batch,
                          threads=threads, instances=instances, shape=_shape(shape), warmup=warmup,
                          repeat=repeat, baseline=baseline, variant=variant, weights=weights,
                          workspace=workspace, options=options, isolate=not in_process)
    engine.validate(document)
    if save:
        target = engine.save(m, document, machine_id)
        click.echo(f"saved {target}", err=True)
    if as_json:
        return emit_json(document)
    mach = document["machine"]
    click.echo(f"{m.name}: {summary(document['complexity'])}")
    click.echo(f"machine: {mach['cpu']}, {mach['cores']} cores, {' '.join(mach['flags'])}"
               + (f", GPU {mach['gpu']}" if mach["gpu"] else ", no GPU"))
    click.echo("versions: " + ", ".join(f"{k} {v}" for k, v in document["versions"].items() if v))
    s = document["settings"]
    click.echo(f"input {'x'.join(map(str, s['shape']))}, warm-up {s['warmup']}, {s['repeat']} timed runs per "
               f"instance; latency per batch; x baseline = per-image p50 speed-up vs torch eager fp32 batch 1\n")
    headers, rows = engine.table_rows(document)
    click.echo(table(rows, headers))
    for skip in document["skipped"]:
        click.secho(f"skipped {skip['build']} on {skip['backend']}: {skip['reason']}", fg="yellow")


@cli.command()
@click.argument("model", shell_complete=complete.models)
@click.option("--build", default="all", show_default=True, shell_complete=complete.builds,
              help="Card build(s), comma-separated, or 'all' (each on its yaml's backend unless --backend).")
@click.option("--backend", default=None, shell_complete=complete.backends, help="Runtime for every build.")
@click.option("--input", "inputs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A folder of photos (repeatable); its name names the set.")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Only every Nth photo of each folder.")
@click.option("--samples", is_flag=True, help="Also the built-in samples, at full size.")
@click.option("--save", is_flag=True, help="Write results/photos-<build>-<backend>.json in the model's folder.")
@click.option("--json", "as_json", is_flag=True)
def photos(model, build, backend, inputs, every, samples, save, as_json):
    """How close each build's outputs stay to the reference build's on photos of other kinds, and its peak memory
    on a 12 MP photo: what the automatic choice needs besides the dataset score (modelzoo/fidelity.py)."""
    m = registry().model(model)
    sets = {folder.name: list_images(folder)[::every] for folder in inputs}
    if samples:
        sets["samples"] = list_images(sample_folder() / "low")
    if not sets:
        raise click.UsageError("give at least one --input folder or --samples")
    reference = choose.reference_key(m)
    names = m.builds if build == "all" else _names(build)
    pairs = [(name, backend or documents.load(m.build_path(name), "build")["backend"]["type"]) for name in names]
    found = fidelity.measure(m, pairs, reference, sets, log=lambda line: click.echo(line, err=True))
    rows = []
    for (name, runtime), document in found.items():
        close, tile = choose.on_photos({(name, runtime): document}, (name, runtime))
        peaks = ", ".join(f"{r['tile']}: {r['peak_rss_mb']:.0f}" for r in document["photo"]["runs"])
        rows.append([name, runtime, f"{document['min_db']:.1f}", peaks, "yes" if close else "no", tile or "-"])
        if save:
            click.echo(f"wrote {fidelity.save(m, document)}", err=True)
    if as_json:
        return emit_json(list(found.values()))
    click.echo(table(rows, ["build", "backend", "min dB vs reference", "12 MP peak MB by tile", "usable", "tile"]))
