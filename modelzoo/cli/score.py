"""`modelzoo score`: any images scored with the metrics the task evaluators declare."""
import sys
from pathlib import Path

import click

from modelzoo.cli import cli, emit_json, table
from modelzoo.errors import EXIT_PARTIAL, ZooError
from modelzoo.plugins import registry

AS_WRITTEN = {"quantize": "round"}  # the pixels are scored as they are


def pick_evaluator(reg, task):
    evaluators = list(reg.evaluators.values())
    if task:
        from modelzoo.evaluate import for_task

        return for_task(reg, task)
    if len(evaluators) != 1:
        tasks = sorted(t for e in evaluators for t in e.tasks)
        raise ZooError(f"{len(evaluators)} evaluators registered: pass --task ({', '.join(tasks) or 'none'})")
    return evaluators[0]


def references_for(files, folder):
    """{input path: reference path}, paired by file stem as `modelzoo eval` pairs a dataset."""
    from modelzoo import imaging

    refs = {p.stem: p for p in imaging.list_images(folder)}
    missing = [f.name for f in files if f.stem not in refs]
    if missing:
        raise ZooError(f"{folder}: no reference for {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return {f: refs[f.stem] for f in files}


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
    import numpy as np

    from modelzoo import imaging

    evaluator = pick_evaluator(registry(), task)
    requested = [m.strip() for m in metric_list.split(",") if m.strip()] if metric_list else None
    names = evaluator.metric_names(reference is not None, requested)
    if requested is None and reference is not None:
        names = evaluator.metric_names(False) + names
    declared = {m.name: m for m in evaluator.metrics}
    metrics = [declared[n] for n in names]
    files = [f for p in paths for f in imaging.list_images(p)]
    pairs = references_for(files, reference) if reference is not None else {}
    rows, failures = [], []
    for path in files:
        try:
            image = imaging.read_rgb(path)
            truth = imaging.read_rgb(pairs[path]) if path in pairs else None
            if truth is not None and truth.shape != image.shape:
                raise ZooError(f"{path}: {image.shape[1]}x{image.shape[0]} but its reference {pairs[path]} is "
                               f"{truth.shape[1]}x{truth.shape[0]}")
            values = evaluator.score(image.astype(np.float64) / 255.0, truth, AS_WRITTEN, names)
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
