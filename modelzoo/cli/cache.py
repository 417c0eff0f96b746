"""`modelzoo cache`: list the compiled artifacts and prune the ones no longer used."""
import time
from pathlib import Path

import click

from modelzoo import cache as artifacts
from modelzoo.cli.common import cli, emit_json, table

WORKSPACE = click.option("--workspace", type=click.Path(file_okay=False, path_type=Path), default=None,
                         help="Artifact cache folder (default: the user cache's artifacts).")


@cli.group()
def cache():
    """The artifact cache: compiled builds per model, backend and library versions."""


@cache.command("list")
@WORKSPACE
@click.option("--json", "as_json", is_flag=True)
def cache_list(workspace, as_json):
    """Each artifact with its size, model, build, backend, library versions and last use."""
    found = artifacts.artifacts(workspace)
    if as_json:
        return emit_json([a.as_dict() for a in found])
    rows = [[a.model, a.build, f"{a.backend} {a.dtype}", megabytes(a.size), versions(a),
             time.strftime("%Y-%m-%d %H:%M", time.localtime(a.last_used)), a.folder.name] for a in found]
    click.echo(table(rows, ["model", "build", "backend", "MB", "versions", "last use", "folder"]))
    click.echo(f"{len(found)} artifact(s), {megabytes(sum(a.size for a in found))} MB in "
               f"{workspace or artifacts.default_root()}")


@cache.command("prune")
@WORKSPACE
@click.option("--older-than", type=click.FloatRange(min=0), default=None, metavar="DAYS",
              help="Also remove artifacts not used for DAYS days.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed, remove nothing.")
def cache_prune(workspace, older_than, dry_run):
    """Remove artifacts built with other library versions (and, with --older-than, unused ones)."""
    doomed = artifacts.stale(artifacts.artifacts(workspace), older_than)
    freed = 0
    for artifact in doomed:
        why = "other library versions" if not artifact.current else "unused"
        if dry_run:
            click.echo(f"would remove {artifact.folder} ({megabytes(artifact.size)} MB, {why})")
        elif artifacts.remove(artifact):
            freed += artifact.size
            click.echo(f"removed {artifact.folder} ({megabytes(artifact.size)} MB, {why})")
        else:
            click.secho(f"kept {artifact.folder}: in use by another process", fg="yellow", err=True)
    if not dry_run:
        click.echo(f"{megabytes(freed)} MB freed")


def megabytes(size):
    return f"{size / 1e6:.1f}"


def versions(artifact):
    """The versions that decide the artifact, the runtime's first: compact enough for one table cell."""
    return ", ".join(f"{k} {v}" for k, v in artifact.versions.items() if v and k in ("modelzoo", artifact.backend,
                                                                                       "torch"))
