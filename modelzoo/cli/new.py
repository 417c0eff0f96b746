"""`modelzoo new NAME`: scaffold a model plugin (see modelzoo/scaffold.py and docs/adding-a-model.md)."""
from pathlib import Path

import click

from modelzoo.cli import cli
from modelzoo.plugins import registry


@cli.command()
@click.argument("name")
@click.option("--dest", type=click.Path(path_type=Path), default=None,
              help="The plugin folder to create (default: models/NAME in the checkout).")
@click.option("--tests", type=click.Path(path_type=Path), default=None,
              help="Folder for test_NAME.py (default: tests/models, or the plugin folder with --dest).")
@click.option("--title", default=None, help="The card's title (default: NAME capitalised).")
@click.option("--task", type=click.Choice(["low-light-image-enhancement", "image-to-image"]),
              default="low-light-image-enhancement", show_default=True)
@click.option("--network", default=None, metavar="MODEL",
              help="A weights-only sibling: reuse this registered model's network (card network: MODEL), no net.py.")
def new(name, dest, tests, title, task, network):
    """Scaffold a model plugin: card, build yaml, vdsp params, net.py, plugin.py and a test."""
    from modelzoo import scaffold

    base = registry().model(network) if network else None
    made = scaffold.create(name, dest=dest, tests=tests, title=title, task=task, registered=set(registry().models),
                           network=base)
    for path in made.written:
        click.echo(f"created {scaffold.display(path)}")
    entry, package = made.pyproject_lines()
    click.echo("\nNext: add these two lines to pyproject.toml")
    click.echo(f"  under [project.entry-points.modelzoo]:   {entry}")
    click.echo(f"  to [tool.setuptools] packages:           {package}")
    if dest is not None:
        click.echo(f"  (the package line assumes the folder is models/{made.module}; move it there first)")
    click.echo("then run\n  pip install -e .")
    if base is not None:
        click.echo(f"and replace the TODOs in card.yaml until `pytest {scaffold.display(made.test)}` passes "
                   f"(docs/adding-a-model.md, weights-only siblings).")
        return
    click.echo(f"and write {scaffold.display(made.folder / 'net.py')} until "
               f"`pytest {scaffold.display(made.test)}` passes; replace the TODOs in card.yaml "
               f"(docs/adding-a-model.md).")
