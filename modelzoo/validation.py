"""`modelzoo validate`: every document checked against its schema, each problem a path into the document."""
from pathlib import Path

from modelzoo import documents, plugins
from modelzoo.errors import ZooError
from modelzoo.model import check_params, convert_value, inherit


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
        document, problems = with_network(path, document)
    if kind == "card" and not problems:
        more, extra = referenced(path, document)
        problems += more
        count += extra
    return problems, count


def with_network(path, card):
    """(the card with what it inherits from the model whose network it names, problems)."""
    other = card.get("network")
    if other is None:
        return card, []
    base = plugins.registry().models.get(other)
    if base is None:
        return card, [f"{path}: network: '{other}' is not a registered model (see `modelzoo list`)"]
    return inherit(card, base.card), []


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
        problems += found or agrees_with_card(target, kind, card)
        count += checked
    problems += declared_params(card_path, card)
    results = card.get("results")
    if results:
        folder = card_path.parent / results
        # hidden files are an evaluation's resume checkpoints, not results
        for path in sorted(folder.glob("[!.]*.json")) if folder.is_dir() else []:
            found, checked = validate_file(path)
            problems += found
            count += checked
    return problems, count


def agrees_with_card(path, kind, card):
    """The input size lives in the card: a build yaml or vdsp params file that repeats it must agree."""
    height, width = card["input"]["shape"][2:]
    document = documents.read(path)
    if kind == "vdsp":
        config = document["OpConfig"]
        return [f"{path}: OpConfig.{key}: {config[key]} differs from the card's input.shape ({height}x{width})"
                for key, expected in (("OimageHeight", height), ("OimageWidth", width)) if config[key] != expected]
    problems = [f"{path}: frontend.shape.{name}: {shape} differs from the card's input.shape "
                f"{card['input']['shape']} (leave it out to inherit the card's)"
                for name, shape in (document["frontend"].get("shape") or {}).items()
                if list(shape) != list(card["input"]["shape"])]
    ops = (document.get("dataset") or {}).get("process_ops") or []
    problems += [f"{path}: dataset.process_ops[{i}].size: {op['size']} differs from the card's input.shape "
                 f"({height}x{width}; leave it out to inherit the card's)"
                 for i, op in enumerate(ops) if op.get("size") and list(op["size"]) != [height, width]]
    return problems


def declared_params(card_path, card):
    """Each protocol's post-processing values must be parameters the card declares, in range; runtime input
    defaults in range; a reference-guided protocol needs runtime inputs to derive."""
    problems = []
    for name, protocol in card["protocols"].items():
        try:
            check_params(card, protocol["postprocess"], f"{card_path}: protocols.{name}.postprocess:")
        except ZooError as exc:
            problems.append(str(exc))
        if protocol.get("reference_guided") and not card.get("runtime_inputs"):
            problems.append(f"{card_path}: protocols.{name}.reference_guided: the card declares no runtime_inputs "
                            f"for the reference to give")
    for name, spec in (card.get("runtime_inputs") or {}).items():
        try:
            convert_value(spec["default"], spec, f"{card_path}: runtime_inputs.{name}.default")
        except ZooError as exc:
            problems.append(str(exc))
    return problems


def validate_everything(registry):
    problems = list(registry.problems)
    count = 0
    for model in registry.models.values():
        found, checked = validate_file(model.card_path)
        problems += found
        count += checked
    return problems, count
