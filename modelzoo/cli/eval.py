"""Evaluation commands: eval, image2npz."""
import sys
from pathlib import Path

import click

from modelzoo.cli import cli, complete, emit_json, quiet_logs, table
from modelzoo.cli.run import engine_options
from modelzoo.compile import select_builds
from modelzoo.errors import EXIT_PARTIAL, ZooError
from modelzoo.plugins import registry


@cli.command("eval")
@click.argument("model", required=False, shell_complete=complete.models)
@click.option("--all", "all_models", is_flag=True, help="Every model registered for the dataset.")
@click.option("--dataset", default=None, shell_complete=complete.datasets, help="A registered dataset (default: the card's first).")
@click.option("--build", default="fp32", show_default=True, shell_complete=complete.builds, help="A card build, a build yaml, or 'all'.")
@click.option("--backend", default=None, shell_complete=complete.backends, help="Runtime (default: each build yaml's).")
@click.option("--protocol", default="all", show_default=True, help="A protocol from the card, or 'all'.")
@click.option("--variant", default=None, help="Weights variant (default: the card's first).")
@click.option("--weights", type=click.Path(path_type=Path), default=None)
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where the dataset lives.")
@click.option("--from-npz", type=click.Path(path_type=Path), default=None,
              help="Score outputs saved by `modelzoo run --npz-out DIR` instead of running the model.")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the results JSON (with --all: a subfolder per model; default: "
                   "$MODELZOO_HOME/results/MODEL, else ~/.local/share/modelzoo/results/MODEL).")
@click.option("--save", is_flag=True, help="Write into the model's results/ folder instead (for maintainers, "
              "like bench --save); a results file keeps the protocols and builds this run does not touch.")
@click.option("--workspace", type=click.Path(path_type=Path), default=None)
@click.option("--threads", type=click.IntRange(min=0), default=0, help="Runtime threads (0: the runtime's default).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", is_flag=True)
@engine_options
def eval_command(model, all_models, dataset, build, backend, protocol, variant, weights, data_root, from_npz,
                 results, save, workspace, threads, as_json, quiet, engine, address, workers):
    """Score MODEL's builds on a dataset (the task evaluator's metrics), per image and mean, as a results JSON."""
    from modelzoo.evaluate import default_results_dir, evaluate, results_file

    if engine == "ray":
        from modelzoo import ray_engine

        ray_engine.require()
    reg = registry()
    if save and results:
        raise click.UsageError("--save writes into the model's results/ folder; it cannot be combined with --results")
    if all_models == bool(model):
        raise ZooError("name a MODEL or pass --all")
    task = reg.dataset(dataset).task if dataset else None
    models = [reg.model(model)] if model else [m for m in reg.models.values() if not dataset or
                                               dataset in m.card["datasets"] or task == m.card["task"]]
    jobs = []

    def results_folder(m):
        if results:
            return results / m.name if all_models else results  # results files are named per model folder
        return m.results_dir() if save else default_results_dir(m)

    quiet_logs(quiet or as_json)
    for m in models:
        builds, skipped = select_builds(m, build, backend, reg)
        for reason in skipped:
            click.secho(f"skipped: {reason}", fg="yellow", err=True)
        chosen = dataset or (m.card["datasets"] or [None])[0]
        if chosen is None:
            raise ZooError(f"{m.card_path}: datasets: empty; pass --dataset")
        folder = results_folder(m)
        jobs += [dict(model=m, dataset=chosen, build=name, backend=backend, protocol=protocol, data_root=data_root,
                      variant=variant, weights_path=weights, workspace=workspace, threads=threads,
                      from_npz=from_npz, results_dir=folder) for name in builds]
    if engine == "ray":  # one Ray task per (model, build, dataset)
        documents, failed = ray_engine.eval_with_ray(jobs, address=address, workers=workers)
    else:
        documents, failed = [], []
        for job in jobs:
            try:
                documents.append(evaluate(**job, progress=not quiet and not as_json))
            except ZooError as exc:
                if len(jobs) == 1:
                    raise
                failed.append(exc)
                click.secho(f"failed: {job['model'].name}/{job['build']}: {exc}", fg="red", err=True)
        if not documents:
            raise ZooError("no evaluation finished")
    for document in documents if not quiet else []:
        m = reg.model(document["model"])
        click.echo(f"results: {results_folder(m) / results_file(m, document)}", err=True)
    if as_json:
        emit_json(documents if len(documents) > 1 else documents[0])
    else:
        click.echo(summary_table(documents))
    if failed:
        sys.exit(EXIT_PARTIAL)


def summary_table(documents):
    from modelzoo.evaluate import metrics_of

    protocols = list(dict.fromkeys(p for d in documents for p in d["metrics"]))
    metrics = metrics_of(registry(), [e["mean"] for d in documents for e in d["metrics"].values()])
    headers = ["model", "variant", "build", "backend", "dtype"]
    for p in protocols:
        headers += [f"{p} {m.name}" for m in metrics]
    rows = []
    for d in documents:
        row = [d["model"], d["variant"], d["build"], d["backend"], d["dtype"]]
        for p in protocols:
            mean = d["metrics"].get(p, {}).get("mean", {})
            row += [m.format(mean.get(m.name)) for m in metrics]
        rows.append(row)
    dataset = documents[0]["dataset"]
    return table(rows, headers) + f"\n{dataset['name']}: {dataset['images']} images"


@cli.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--datalist", type=click.Path(path_type=Path), default=Path("npz_datalist.txt"), show_default=True)
def image2npz(source, target, datalist):
    """Images in SOURCE -> npz files (uint8 CHW RGB under input_0) in TARGET and a datalist."""
    from modelzoo.evaluate import image2npz as convert

    written = convert(source, target, datalist)
    click.echo(f"{len(written)} npz file(s) in {target}; datalist {datalist}")
