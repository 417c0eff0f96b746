"""Find and load plugins; one broken plugin is reported, never fatal.

MODELZOO_LOAD_PLUGINS=name1,name2 restricts which entry points load (empty: none but the built-ins).
"""
import importlib
import os
import sys
import traceback
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from modelzoo import hookspecs
from modelzoo.errors import ZooError

GROUP = "modelzoo"
BUILTINS = ("modelzoo.backends.builtin",)


@dataclass
class Loaded:
    name: str
    module: str
    version: str = ""
    hooks: list = field(default_factory=list)
    error: str = ""


class Registry:
    """What the plugins registered, by kind and name; duplicates and failures are kept as problems."""

    def __init__(self):
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[Loaded] = []
        self.problems: list[str] = []
        self.models, self.datasets, self.evaluators, self.backends = {}, {}, {}, {}

    # -- loading ---------------------------------------------------------
    def load(self):
        for module in BUILTINS:
            self._add(module.rsplit(".", 1)[-1], module, lambda m=module: importlib.import_module(m), "builtin")
        wanted = os.environ.get("MODELZOO_LOAD_PLUGINS")
        allowed = None if wanted is None else {w.strip() for w in wanted.split(",") if w.strip()}
        for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
            if allowed is None or ep.name in allowed:
                version = ep.dist.version if ep.dist else ""
                self._add(ep.name, ep.value, ep.load, version)
        self._collect()
        return self

    def _add(self, name, module, importer, version):
        record = Loaded(name, module, version)
        self.plugins.append(record)
        try:
            plugin = importer()
            self.pm.register(plugin, name=name)
            # A misspelled hook (register_model instead of register_models) fails loudly here.
            self.pm.check_pending()
        except Exception as exc:  # noqa: BLE001 - any import error must stay inside its plugin
            if self.pm.is_registered(plugin if "plugin" in locals() else None):
                self.pm.unregister(plugin)
            record.error = one_line(exc)
            self.problems.append(f"plugin {name} ({module}): {record.error}")
            if os.environ.get("MODELZOO_DEBUG"):
                traceback.print_exc(file=sys.stderr)
            return
        record.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])

    def _collect(self):
        for hook, table in (("register_backends", self.backends), ("register_datasets", self.datasets),
                            ("register_evaluators", self.evaluators), ("register_models", self.models)):
            caller = getattr(self.pm.hook, hook)
            for impl in caller.get_hookimpls():
                name = self.pm.get_name(impl.plugin)
                try:
                    impl.function(register=lambda obj, n=name, t=table, h=hook: self._register(t, obj, n, h))
                except Exception as exc:  # noqa: BLE001 - a failing hook disables its plugin's entries only
                    self.problems.append(f"plugin {name}: {hook} failed: {one_line(exc)}")
                    self._mark(name, f"{hook}: {one_line(exc)}")
        self._bind_networks()

    def _bind_networks(self):
        """A model whose card says `network: OTHER` reuses OTHER's network; without OTHER it is not registered."""
        for model in list(self.models.values()):
            other = model.card.get("network")
            if other is None:
                continue
            try:
                if other not in self.models:
                    raise ZooError(f"{model.card_path}: network: '{other}' is not a registered model")
                model.bind(self.models[other])
            except ZooError as exc:
                del self.models[model.name]
                self.problems.append(f"plugin {model.plugin}: {exc}")
                self._mark(model.plugin, str(exc))

    def _register(self, table, obj, plugin, hook):
        key = obj.name
        if key in table:
            self.problems.append(f"plugin {plugin}: {hook}: '{key}' is already registered by "
                                 f"plugin {table[key].plugin}; kept the first")
            return
        obj.plugin = plugin
        table[key] = obj

    def _mark(self, name, error):
        for record in self.plugins:
            if record.name == name and not record.error:
                record.error = error

    # -- lookups ---------------------------------------------------------
    def model(self, name):
        return self._get(self.models, name, "model", "modelzoo list")

    def dataset(self, name):
        return self._get(self.datasets, name, "dataset", "modelzoo datasets")

    def evaluator(self, name):
        return self._get(self.evaluators, name, "evaluator", "modelzoo plugins")

    def backend(self, name):
        return self._get(self.backends, name, "backend", "modelzoo backends")

    def _get(self, table, name, kind, hint):
        if name not in table:
            known = ", ".join(sorted(table)) or "none"
            raise ZooError(f"unknown {kind} '{name}' (registered: {known}; see `{hint}`)")
        return table[name]


def one_line(exc):
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return first if isinstance(exc, ZooError) else f"{type(exc).__name__}: {first}".rstrip(": ")


_registry = None


def registry():
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = Registry().load()
    return _registry


def reset():
    """Forget loaded plugins (tests change MODELZOO_LOAD_PLUGINS between cases)."""
    global _registry
    _registry = None
