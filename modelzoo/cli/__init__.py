"""The `modelzoo` command line. Errors print one line; tracebacks only with --debug.

Exit codes: 0 success, 1 error, 2 usage error, 3 partial (some inputs of a batch failed), 130 interrupted.
"""
import json
import logging
import os

import click

from modelzoo.errors import EXIT_ERROR, EXIT_USAGE, ValidationError, ZooError
from modelzoo.plugins import registry


class ZooGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ZooError, OSError) as exc:
            if os.environ.get("MODELZOO_DEBUG"):
                raise
            lines = exc.errors if isinstance(exc, ValidationError) else [str(exc) if isinstance(exc, ZooError)
                                                                           else f"{exc}"]
            for line in lines:
                click.secho(f"error: {line}", fg="red", err=True)
            ctx.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            click.echo("interrupted: finished outputs are kept, none is half-written", err=True)
            ctx.exit(130)
        except click.UsageError as exc:  # one line too, e.g. "--tile: -1 is not in the range x>=0"
            command = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            click.secho(f"error: {exc.format_message()}{command}", fg="red", err=True)
            ctx.exit(EXIT_USAGE)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the last guard: one line unless --debug
            if os.environ.get("MODELZOO_DEBUG"):
                raise
            click.secho(f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                        f" (rerun with --debug for the traceback)", fg="red", err=True)
            ctx.exit(EXIT_ERROR)


@click.group(cls=ZooGroup)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("--offline", is_flag=True, help="Never use the network (as MODELZOO_OFFLINE=1): missing weights "
              "are an error that says how to provide them.")
@click.version_option(package_name="modelzoo")
def cli(debug, offline):
    """A zoo of deployable image models: run, compile, evaluate, benchmark and publish them."""
    if debug:
        os.environ["MODELZOO_DEBUG"] = "1"
    if offline:
        os.environ["MODELZOO_OFFLINE"] = "1"
    show_logs()


class EchoHandler(logging.Handler):
    """Library log records on stderr, one line each (stdout stays for results and --json)."""

    def emit(self, record):
        click.secho(self.format(record), err=True, fg="yellow" if record.levelno >= logging.WARNING else None)


def show_logs(level=logging.INFO):
    """Send the library's `modelzoo.*` log records to stderr (the library itself sets up no handler)."""
    logger = logging.getLogger("modelzoo")
    if not any(isinstance(h, EchoHandler) for h in logger.handlers):
        logger.addHandler(EchoHandler())
        logger.propagate = False
    logger.setLevel(level)


def quiet_logs(quiet):
    """--quiet (and --json where it silences progress): only warnings and errors from the library."""
    if quiet:
        logging.getLogger("modelzoo").setLevel(logging.WARNING)


def warn_problems():
    for problem in registry().problems:
        click.secho(f"warning: {problem}", fg="yellow", err=True)


def emit_json(data):
    click.echo(json.dumps(data, indent=2, default=str))


def table(rows, headers):
    """A plain aligned text table."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def main():
    cli(prog_name="modelzoo")


# Each module adds its commands to `cli`.
from modelzoo.cli import bench, cache, compare, eval, info, new, publish, run, score, serve  # noqa: E402,F401
