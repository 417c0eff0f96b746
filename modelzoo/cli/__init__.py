"""The `modelzoo` command line. Errors print one line; tracebacks only with --debug.

The group and its shared helpers live in modelzoo/cli/common.py; each command module adds its commands to it.
"""
from modelzoo.cli import bench, cache, compare, eval, info, new, publish, run, score, serve  # noqa: F401 - each adds its commands
from modelzoo.cli.common import cli, emit_json, show_logs, table  # noqa: F401 - the package's interface


def main():
    cli(prog_name="modelzoo")
