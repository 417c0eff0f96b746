"""The engine's version (the package metadata's, kept in pyproject.toml too)."""
__version__ = "0.1.0"
