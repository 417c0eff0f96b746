"""Shell completion of model, build, backend and dataset names (click's shell_complete; see README.md)."""
from modelzoo.plugins import registry

TAKE_ALL = ("compile", "eval", "bench")  # the commands whose --build accepts 'all'


def _matching(names, incomplete):
    return sorted(n for n in set(names) if n.startswith(incomplete))


def _guarded(function):
    """A completion must never fail in the user's shell: no candidates instead of a traceback."""

    def complete(ctx, param, incomplete):
        try:
            return _matching(function(ctx), incomplete)
        except Exception:  # noqa: BLE001 - e.g. a broken plugin while typing
            return []

    return complete


@_guarded
def models(ctx):
    return registry().models


@_guarded
def builds(ctx):
    """The named model's builds (the union over all models before one is typed), and 'all' where it is taken."""
    reg, name = registry(), ctx.params.get("model")
    chosen = [reg.models[name]] if name in reg.models else reg.models.values()
    return [b for m in chosen for b in m.builds] + (["all"] if ctx.command.name in TAKE_ALL else [])


@_guarded
def backends(ctx):
    return registry().backends


@_guarded
def datasets(ctx):
    return registry().datasets
