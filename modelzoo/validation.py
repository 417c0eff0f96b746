"""`modelzoo validate`: every document checked against its schema, each problem a path into the document."""
from pathlib import Path

from modelzoo import documents
from modelzoo.errors import ZooError


def validate_file(path):
    """Problems in one file (kind guessed from its content); a card also checks the files it references."""
    path = Path(path)
    try:
        document = read_any(path)
    except ZooError as exc:
        return [str(exc)], 1
    kind = documents.guess_kind(path, document)
    if kind == "card" and path.suffix == ".md":
        kind = "frontmatter"
    problems = documents.errors(document, kind, str(path))
    count = 1
    if kind == "card" and not problems:
        more, extra = referenced(path, document)
        problems += more
        count += extra
    return problems, count


def read_any(path):
    if path.suffix == ".md":
        from modelzoo.frontmatter import read_front_matter

        return read_front_matter(path)
    return documents.read(path)


def referenced(card_path, card):
    """Validate the build yamls and vdsp params a card names, refusing paths outside its folder."""
    problems, count = [], 0
    refs = [(f"builds.{name}", rel, "build") for name, rel in card["builds"].items()]
    refs.append(("vdsp_params", card["vdsp_params"], "vdsp"))
    for field, relative, kind in refs:
        try:
            target = documents.inside(card_path.parent, relative, str(card_path), field)
        except ZooError as exc:
            problems.append(str(exc))
            continue
        if not target.is_file():
            problems.append(f"{card_path}: {field}: '{relative}' does not exist")
            continue
        found, checked = validate_file(target)
        problems += found
        count += checked
    results = card.get("results")
    if results:
        folder = card_path.parent / results
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            found, checked = validate_file(path)
            problems += found
            count += checked
    return problems, count


def validate_everything(registry):
    problems = list(registry.problems)
    count = 0
    for model in registry.models.values():
        found, checked = validate_file(model.card_path)
        problems += found
        count += checked
    return problems, count
