"""`modelzoo new NAME`: write a plugin folder that validates and a test that fails until the network is written.

The files come from the jinja2 templates in modelzoo/templates/new/. Every fact the engine cannot know (paper,
source commit, licence, weights, complexity) is a schema-valid placeholder marked TODO, so `modelzoo validate`
passes from the first minute and the generated test's failure points at the one thing left to write: net.py.

Layout: `models/NAME/` plus `tests/models/test_NAME.py` in a checkout; with `dest`, the folder is `dest` itself
and the test goes inside it unless `tests` says where. With `network` (a registered model), the plugin is a
weights-only sibling that reuses that model's network (card `network:`): no net.py, a plugin that registers the
card, vdsp params at that model's input size.
"""
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from modelzoo.errors import ZooError

TEMPLATES = "templates/new"
TASKS = ("low-light-image-enhancement", "image-to-image")
FOLDER_FILES = {  # template -> path inside the model folder
    "card.yaml.j2": "card.yaml",
    "fp32.yaml.j2": "build/fp32.yaml",
    "vdsp_params.json.j2": "vdsp_params.json",
    "__init__.py.j2": "__init__.py",
    "net.py.j2": "net.py",
    "plugin.py.j2": "plugin.py",
}
SIBLING_FILES = {  # a weights-only sibling (--network OTHER)
    "sibling_card.yaml.j2": "card.yaml",
    "fp32.yaml.j2": "build/fp32.yaml",
    "vdsp_params.json.j2": "vdsp_params.json",
    "__init__.py.j2": "__init__.py",
    "sibling_plugin.py.j2": "plugin.py",
}


@dataclass
class Scaffold:
    name: str
    module: str
    folder: Path
    test: Path
    written: list = field(default_factory=list)

    def pyproject_lines(self):
        return [f'{self.name} = "modelzoo_models.{self.module}.plugin"', f'"modelzoo_models.{self.module}",']


def name_pattern():
    """The card schema's pattern for `name`: one rule for cards and for the scaffold."""
    from modelzoo.documents import validator

    return validator("card").schema["properties"]["name"]["pattern"]


def check_name(name, registered=()):
    if not re.fullmatch(name_pattern(), name or ""):
        raise ZooError(f"'{name}' is not a valid model name: lowercase letter first, then 1 to 40 of a-z, 0-9, "
                       f"'_' or '-' (card schema pattern {name_pattern()})")
    if name in registered:
        raise ZooError(f"a model named '{name}' is already registered (see `modelzoo list`)")


def checkout_root():
    """The project checkout new models go into: the working directory if it is one, else the engine's own."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (candidate / "pyproject.toml").is_file() and (candidate / "models").is_dir():
            return candidate
    raise ZooError("not in a modelzoo checkout (no pyproject.toml and models/ here): pass --dest DIR")


def class_name(name):
    return "".join(part.capitalize() for part in re.split(r"[_-]+", name) if part)


def display(path):
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def plan(name, dest=None, tests=None, registered=()):
    """Where the files go; refuses invalid names, registered names and anything that already exists."""
    check_name(name, registered)
    module = name.replace("-", "_")  # the folder is a Python package: modelzoo_models.<module>
    if dest is None:
        root = checkout_root()
        folder = root / "models" / module
        test_dir = Path(tests) if tests else root / "tests" / "models"
    else:
        folder = Path(dest)
        test_dir = Path(tests) if tests else folder
    test = test_dir / f"test_{module}.py"
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ZooError(f"{folder} already exists; choose another name or --dest")
    if test.exists():
        raise ZooError(f"{test} already exists; choose another name or --tests")
    return Scaffold(name, module, folder.resolve(), test.resolve())


def render(scaffold, title=None, task=TASKS[0], height=400, width=600, network=None):
    """{relative path or absolute test path: text} for every file, rendered from the templates; `network`: the
    base Model of a weights-only sibling."""
    import jinja2

    if task not in TASKS:
        raise ZooError(f"--task: '{task}' is not one of {', '.join(TASKS)}")
    environment = jinja2.Environment(loader=jinja2.PackageLoader("modelzoo", TEMPLATES),
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                     autoescape=False)
    model_class = class_name(scaffold.name)
    if network is not None:
        height, width = network.input_shape()[2:]
    context = {
        "name": scaffold.name, "module": scaffold.module, "title": title or model_class, "task": task,
        "height": height, "width": width, "model_class": model_class, "network_class": f"{model_class}Net",
        "net_label": f"{display(scaffold.folder)}/net.py",
        "folder_from_test": Path(os.path.relpath(scaffold.folder, scaffold.test.parent)).as_posix(),
        "network": network.name if network is not None else None,
    }
    sources = SIBLING_FILES if network is not None else FOLDER_FILES
    files = {target: environment.get_template(source).render(context) for source, target in sources.items()}
    test = "test_sibling.py.j2" if network is not None else "test_model.py.j2"
    files[scaffold.test] = environment.get_template(test).render(context)
    return files


def create(name, dest=None, tests=None, title=None, task=TASKS[0], registered=(), network=None):
    """Write the plugin folder and its test; returns the Scaffold (its `written` lists the files). `network`: the
    registered Model whose network a weights-only sibling reuses."""
    from modelzoo.validation import validate_file

    scaffold = plan(name, dest, tests, registered)
    files = render(scaffold, title=title, task=task, network=network)
    for target, text in files.items():
        path = Path(target) if Path(target).is_absolute() else scaffold.folder / target
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as handle:  # "x": never overwrite
            handle.write(text)
        scaffold.written.append(path)
    problems, _ = validate_file(scaffold.folder / "card.yaml")
    if problems:  # the templates are wrong, not the user: say so loudly
        raise ZooError(f"modelzoo new: the generated card does not validate ({'; '.join(problems)})")
    return scaffold
