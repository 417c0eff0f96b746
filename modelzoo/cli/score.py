"""`modelzoo score`: any images scored with the metrics the task evaluators declare."""
import sys
from pathlib import Path

import click
import numpy as np

from modelzoo import imaging
from modelzoo.cli.common import cli, emit_json, table
from modelzoo.errors import EXIT_PARTIAL, ZooError
from modelzoo.evaluate import for_task, pair_references, score_pixels
from modelzoo.plugins import registry


def pick_evaluator(reg, task):
    evaluators = list(reg.evaluators.values())
    if task:
        return for_task(reg, task)
    if len(evaluators) != 1:
        tasks = sorted(t for e in evaluators for t in e.tasks)
        raise ZooError(f"{len(evaluators)} evaluators registered: pass --task ({', '.join(tasks) or 'none'})")
    return evaluators[0]


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="Folder of reference images, paired by file name: adds the full-reference metrics.")
@click.option("--metric", "metric_list", default=None,
              help="Comma-separated metric names (default: the no-reference metrics, and the full-reference "
                   "ones with --reference).")
@click.option("--task", default=None, help="Whose evaluator's metrics (default: the only one registered).")
@click.option("--json", "as_json", is_flag=True)
def score(paths, reference, metric_list, task, as_json):
    """Score images or folders (PATH...) with the declared metrics: one row per image and the mean."""
    evaluator = pick_evaluator(registry(), task)
    requested = [m.strip() for m in metric_list.split(",") if m.strip()] if metric_list else None
    names = evaluator.metric_names(reference is not None, requested)
    if requested is None and reference is not None:
        names = evaluator.metric_names(False) + names
    declared = {m.name: m for m in evaluator.metrics}
    metrics = [declared[n] for n in names]
    files = [f for p in paths for f in imaging.list_images(p)]
    pairs = pair_references(files, reference) if reference is not None else {}
    rows, failures = [], []
    for path in files:
        try:
            values = score_pixels(evaluator, imaging.read_rgb(path), pairs.get(path.stem), names, path)
        except ZooError as exc:
            failures.append(str(exc))
            click.secho(f"error: {exc}", fg="red", err=True)
            continue
        rows.append({"name": path.name, "path": str(path), **values})
    if not rows:
        raise ZooError(f"no image could be scored ({len(failures)} failed)")
    mean = {n: float(np.mean([r[n] for r in rows])) for n in names}
    if as_json:
        emit_json({"metrics": [m.as_dict() for m in metrics], "images": rows, "mean": mean,
                   "failures": failures})
    else:
        body = [[r["name"], *(m.format(r[m.name]) for m in metrics)] for r in rows]
        body.append([f"mean ({len(rows)} images)", *(m.format(mean[m.name]) for m in metrics)])
        headings = [f"{m.heading()} {'(lower is better)' if not m.higher_is_better else ''}".strip() for m in metrics]
        click.echo(table(body, ["image", *headings]))
    if failures:
        sys.exit(EXIT_PARTIAL)
