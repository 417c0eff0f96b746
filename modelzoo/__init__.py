"""modelzoo: a plugin-based zoo of deployable image models."""
from modelzoo.errors import ZooError
from modelzoo.hookspecs import hookimpl
from modelzoo.model import Model

__version__ = "0.1.0"
__all__ = ["Model", "ZooError", "hookimpl", "__version__"]
