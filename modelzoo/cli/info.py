"""Discovery and validation commands: list, info, plugins, backends, datasets, validate."""
import sys
from pathlib import Path

import click

from modelzoo import leaderboard
from modelzoo.cli import complete
from modelzoo.cli.common import cli, emit_json, table, warn_problems
from modelzoo.errors import EXIT_ERROR, ZooError
from modelzoo.plugins import registry
from modelzoo.validation import validate_everything, validate_file


# -- discovery ----------------------------------------------------------------------------------------------
@cli.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_models(as_json):
    """Registered models, with the headline scores of the published index (default weights, reference build;
    ↑ higher is better, ↓ lower) and the latency of each one's fastest accurate build."""
    warn_problems()
    reg = registry()
    board = leaderboard.table(reg)
    columns = board["columns"]
    models = {r["name"]: reg.model(r["name"]) for r in board["rows"]}
    if as_json:
        return emit_json([{"name": r["name"], "title": r["title"], "task": models[r["name"]].card["task"],
                           "license": r["license"], "commercial": r["commercial"], "variant": r["variant"],
                           "builds": models[r["name"]].builds, "variants": models[r["name"]].variants,
                           "plugin": models[r["name"]].plugin, "params": r["params"], "fastest": r["fastest"],
                           "scores": {c.key: v for c, v in zip(columns, r["values"])}} for r in board["rows"]])
    headers = ["name"] + [short_heading(c) for c in columns] + [f"ms/img ({board['isa'] or '-'})", "licence",
                                                                 "plugin"]
    rows = [[r["name"], *(c.metric.format(v) for c, v in zip(columns, r["values"])),
             f"{r['fastest']['p50']:.1f}" if r["fastest"] else "-",
             f"{r['license']} ({models[r['name']].card['license']['use']})", models[r["name"]].plugin]
            for r in board["rows"]]
    click.echo(table(rows, headers))


def short_heading(column):
    """'lol-eval15 <label>↑', 'dicm <label>↓': the terminal has no room for units."""
    protocol = "" if column.protocol == "zoo" else f" {column.protocol}"
    return f"{column.dataset}{protocol} {column.metric.label}{'↑' if column.metric.higher_is_better else '↓'}"


@cli.command()
@click.argument("model", shell_complete=complete.models)
@click.option("--json", "as_json", is_flag=True)
def info(model, as_json):
    """A model's card as a table."""
    m = registry().model(model)
    if as_json:
        return emit_json({**m.card, "card_path": str(m.card_path), "plugin": m.plugin})
    c = m.card
    cx = c["complexity"]
    rows = [
        ("name", c["name"]), ("title", c["title"]), ("task", c["task"]),
        ("paper", f"{c['paper']['title']} ({c['paper']['venue']} {c['paper']['year']})"),
        ("source", f"{c['source']['repo']} @ {c['source']['branch']} {c['source']['commit'][:12]}"),
        ("license", f"{c['license']['id']} ({c['license']['use']})"),
        ("weights", ", ".join(f"{k}: {files(v)}" for k, v in c["weights"].items())),
        ("input", f"{'x'.join(map(str, c['input']['shape']))} {c['input']['dtype']} {c['input']['layout']} "
                  f"{c['input']['color']} in {c['input']['range']}"),
        ("outputs", ", ".join(f"{o['name']} ({o['channels']} ch)" for o in c["outputs"])),
        ("operators", ", ".join(c["operators"])),
        ("params", f"{cx['params']:,}"),
        ("MACs / FLOPs", f"{cx['macs'] / 1e9:.2f} G / {2 * cx['macs'] / 1e9:.1f} G at {'x'.join(map(str, cx['shape']))}"),
        ("postprocess", ", ".join(f"{k}={v['default']}" for k, v in c["postprocess"].items())),
        ("protocols", ", ".join(c["protocols"])),
        ("builds", ", ".join(f"{k} ({v})" for k, v in c["builds"].items())),
        ("datasets", ", ".join(c["datasets"])),
    ]
    for r in c["reported"]:
        scores = ", ".join(f"{name} {value}" for name, value in r["metrics"].items())
        rows.append((f"reported: {r['label']}", f"{scores} ({r['protocol']})"))
    click.echo(table(rows, ["field", "value"]))



def files(variant):
    """A weights variant's files for the table: file and sha256 prefix (role=file for several)."""
    entries = variant.get("files") or ({"": variant} if "file" in variant else {})
    return "; ".join(f"{role + '=' if role else ''}{e['file']} sha256 {e['sha256'][:12]}…"
                     for role, e in entries.items()) or "no weights"

@cli.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json):
    """Loaded plugins, their hooks and any that failed."""
    reg = registry()
    rows = [{"name": p.name, "module": p.module, "version": p.version, "hooks": p.hooks, "error": p.error}
            for p in reg.plugins]
    if as_json:
        return emit_json({"plugins": rows, "problems": reg.problems})
    click.echo(table([[r["name"], r["module"], r["version"], ",".join(r["hooks"]), r["error"] or "ok"]
                      for r in rows], ["plugin", "module", "version", "hooks", "status"]))
    for problem in reg.problems:
        click.secho(f"problem: {problem}", fg="yellow")


@cli.command()
def backends():
    """Registered runtime backends and whether they are installed."""
    rows = [[b.name, ",".join(b.dtypes), b.missing() or "available", b.description]
            for b in registry().backends.values()]
    click.echo(table(rows, ["backend", "dtypes", "status", "description"]))


@cli.command()
def datasets():
    """Registered datasets and where they were found."""
    rows = []
    for d in registry().datasets.values():
        try:
            where = str(d.root())
        except ZooError:
            where = f"not found (set MODELZOO_DATA or --data-root; expects {d.subpath})"
        rows.append([d.name, "paired" if d.paired else "images", d.split, where])
    click.echo(table(rows, ["dataset", "layout", "split", "root"]))


# -- validation -------------------------------------------------------------------------------------------
@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate(paths):
    """Check cards, build yamls, vdsp params and results files (default: everything registered)."""
    problems, checked = [], 0
    if paths:
        for path in paths:
            found, count = validate_file(path)
            problems += found
            checked += count
    else:
        problems, checked = validate_everything(registry())
    for line in problems:
        click.secho(line, fg="red", err=True)
    click.echo(f"{checked} document(s) checked, {len(problems)} problem(s)")
    sys.exit(EXIT_ERROR if problems else 0)
