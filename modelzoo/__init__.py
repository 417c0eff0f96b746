"""modelzoo: a plugin-based zoo of deployable image models.

    import modelzoo
    enhance = modelzoo.load(name)               # an Enhancer (modelzoo/api.py); names: modelzoo.list_models()
    bright = enhance("dark.png")                 # RGB uint8, the input's size
"""
from modelzoo.errors import ZooError
from modelzoo.hookspecs import hookimpl
from modelzoo.model import Model
from modelzoo.version import __version__
__all__ = ["Model", "ZooError", "card", "hookimpl", "list_models", "load", "__version__"]
API = ("load", "list_models", "card")


def __getattr__(name):
    # The API imports the runtimes' helpers (OpenCV, ...); plugins importing `modelzoo` should not pay for it.
    if name in API:
        from modelzoo import api

        return getattr(api, name)
    raise AttributeError(f"module 'modelzoo' has no attribute {name!r}")
