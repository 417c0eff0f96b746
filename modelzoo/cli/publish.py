"""`modelzoo publish`: model cards (Markdown + HF front matter) and the HTML site from the measured results."""
from pathlib import Path

import click

from modelzoo import publish as engine
from modelzoo.cli import complete
from modelzoo.cli.common import cli, warn_problems
from modelzoo.errors import ZooError
from modelzoo.plugins import registry


@cli.command()
@click.argument("model", required=False, shell_complete=complete.models)
@click.option("--all", "all_models", is_flag=True, help="Every registered model.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs"), show_default=True,
              help="Folder for index.html and models/ (committed).")
@click.option("--site", type=click.Path(path_type=Path), default=None,
              help="Also write a site build here with LOL before/after pages (uncommitted; implies --with-lol).")
@click.option("--with-lol", is_flag=True, help="Add LOL eval15 before/after pages to the site build (default site/).")
@click.option("--no-images", is_flag=True,
              help="Keep the before/after PNGs already in OUT instead of running the models.")
@click.option("--weights", type=click.Path(path_type=Path), default=None, help="Weights file or folder.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where LOL lives (--with-lol).")
def publish(model, all_models, out, site, with_lol, no_images, weights, data_root):
    """Write docs/models/MODEL.md and .html (or every model's with --all) and docs/index.html."""
    reg = registry()
    if all_models == bool(model):
        raise ZooError("name a MODEL or pass --all")
    warn_problems()
    models = list(reg.models.values()) if all_models else [reg.model(model)]
    written = engine.publish(models, out=out, site=site, lol=with_lol or site is not None, images=not no_images,
                             registry=reg, weights=weights, data_root=data_root)
    for path in written:
        click.echo(str(path))
