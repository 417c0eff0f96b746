"""Package discovery: the engine, every model folder under models/ (installed as modelzoo_models.<name>) and
the schemas (modelzoo_schemas). pyproject.toml holds everything else; a new model folder needs no edit here."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["modelzoo", "modelzoo.*"])
      + ["modelzoo_models", "modelzoo_schemas"]
      + [f"modelzoo_models.{name}" for name in find_packages("models")])
