"""`modelzoo bench`: latency, throughput and peak memory per build and backend (the reference zoo's `vamp`)."""
from pathlib import Path

import click

from modelzoo import bench as engine
from modelzoo.cli import complete
from modelzoo.cli.common import cli, emit_json, table
from modelzoo.complexity import summary
from modelzoo.errors import ZooError
from modelzoo.plugins import registry


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
