"""Load cards, build yamls, vdsp params and results files safely, and validate them against schemas/."""
import json
from functools import cache
from pathlib import Path

import jsonschema
import yaml

from modelzoo.errors import ValidationError, ZooError

KINDS = ("card", "build", "vdsp", "results")


def schema_dir():
    import modelzoo_schemas

    return Path(modelzoo_schemas.__file__).parent


@cache
def validator(kind):
    schema = json.loads((schema_dir() / f"{kind}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def read(path):
    """Parse a YAML or JSON file with safe loading only (no Python tags)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ZooError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ZooError(f"{path}: cannot read: {exc}") from None
    try:
        if path.suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ZooError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ZooError(f"{path}: invalid YAML{where}: {problem}") from None


def field_path(parts):
    """Render a jsonschema error path as `weights.official.sha256` or `process_ops[1].size`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        part = str(part)
        if not part.isprintable() or not part or any(c in part for c in ".[] "):
            part = json.dumps(part)  # keys with odd characters stay on one readable line
        out += f".{part}" if out else part
    return out or "(document)"


def errors(document, kind, label):
    """One line per schema violation: `label: field.path: message`."""
    found = sorted((deepest(e) for e in validator(kind).iter_errors(document)),
                   key=lambda e: list(map(str, e.absolute_path)))
    return [f"{label}: {field_path(e.absolute_path)}: {e.message}" for e in found]


def deepest(error):
    """For a value that fits none of several shapes (oneOf/anyOf, e.g. a weights entry with one file or several),
    the problem inside the shape it came closest to: `weights.official.sha256: 'abc' does not match ...` rather
    than the whole entry."""
    while error.context:  # the branch whose problem lies deepest in the value got furthest
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


def load(path, kind):
    """Read and validate a document; raise ValidationError listing every problem."""
    document = read(path)
    problems = errors(document, kind, str(path))
    if problems:
        raise ValidationError(problems)
    return document


def guess_kind(path, document):
    """Which schema a file answers to, from its content (build yamls and vdsp params keep the reference zoo's shape)."""
    if isinstance(document, dict):
        if document.get("kind") == "bench":
            return "bench"  # modelzoo bench --save: results/bench-<machine-id>.json
        if document.get("kind") == "photos":
            return "photos"  # modelzoo.fidelity: results/photos-<build>-<backend>.json
        if "metrics" in document and "provenance" in document:
            return "results"
        if "OpType" in document or "OpConfig" in document:
            return "vdsp"
        if "frontend" in document or "backend" in document:
            return "build"
        if Path(path).suffix == ".md":
            return "card"
    return "card"


def inside(folder, relative, label, field):
    """Resolve a path a document references, refusing ones that escape its folder."""
    folder = Path(folder).resolve()
    target = (folder / relative).resolve()
    if Path(relative).is_absolute() or not target.is_relative_to(folder):
        raise ZooError(f"{label}: {field}: '{relative}' must be a path inside {folder}")
    return target
