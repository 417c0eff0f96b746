"""The plugin contract. Each hook takes a `register` callback; the core decides what to do with what is registered.

A model plugin is a module (named by a `modelzoo` entry point) with `@hookimpl` functions:

    @hookimpl
    def register_models(register):
        register(MyModel(Path(__file__).parent / "card.yaml"))

The registered `modelzoo.Model` supplies the card, the torch network, the export patch, the build yamls and
vdsp params (paths in the card) and the pre/post-processing. Datasets, evaluators and runtime backends are
plugins of the same contract; the engine's own backends are registered through it too.
"""
import pluggy

hookspec = pluggy.HookspecMarker("modelzoo")
hookimpl = pluggy.HookimplMarker("modelzoo")


@hookspec
def register_models(register):
    """Register models: register(model) with a modelzoo.Model subclass instance per card."""


@hookspec
def register_datasets(register):
    """Register datasets: register(dataset) with a modelzoo.datasets.Dataset."""


@hookspec
def register_evaluators(register):
    """Register evaluators: register(evaluator) with a modelzoo.evaluate.Evaluator."""


@hookspec
def register_backends(register):
    """Register runtimes: register(backend) with a modelzoo.backends.Backend subclass instance."""

