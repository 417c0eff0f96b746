"""`modelzoo compare`: every model on your photos, one HTML report."""
import sys
from pathlib import Path

import click

from modelzoo import compare as engine
from modelzoo.cli import cli, complete
from modelzoo.errors import EXIT_PARTIAL, ZooError
from modelzoo.plugins import registry


@cli.command()
@click.option("--input", "inputs", multiple=True, required=True, type=click.Path(path_type=Path),
              help="A photo or a folder of photos (repeatable).")
@click.option("--output", type=click.Path(path_type=Path), default=Path("modelzoo-compare"), show_default=True,
              help="Folder for report.html.")
@click.option("--models", default=None, shell_complete=complete.models,
              help="Comma-separated model names (default: every registered model).")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="Folder of reference photos paired by file name: adds the full-reference metrics.")
def compare(inputs, output, models, reference):
    """Run every model on your photos and write one self-contained report: each photo through each model, a
    before/after slider between any two, and the models ranked by the declared metrics with time per image.
    Exit code 3 when some model failed on some photo (the report says which)."""
    reg = registry()
    names = [n.strip() for n in models.split(",") if n.strip()] if models else sorted(reg.models)
    chosen = [reg.model(name) for name in names]
    if not chosen:
        raise ZooError("--models: no model named")
    result = engine.compare(list(inputs), chosen, reg, reference=reference, progress=sys.stderr.isatty())
    target = engine.write_report(result, output)
    best = engine.ranking(result)[0] if result["columns"][1:] else None
    lead = result["metrics"][0] if result["metrics"] else None
    if best is not None and lead is not None and best.mean(lead.name) is not None:
        click.echo(f"{target}: {len(result['photos'])} photos, {len(chosen)} models; best by {lead.label}: "
                   f"{best.name} ({lead.format(best.mean(lead.name))})")
    else:
        click.echo(f"{target}: {len(result['photos'])} photos, {len(chosen)} models")
    if result["failures"]:
        click.secho(f"{result['failures']} model-photo runs failed (see the report)", fg="red", err=True)
        sys.exit(EXIT_PARTIAL)
