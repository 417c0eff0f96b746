"""YAML front matter of Markdown cards (Hugging Face model-card metadata)."""
import yaml

from modelzoo import documents
from modelzoo.errors import ZooError


def split(text):
    """(front matter dict, body) of a Markdown document that starts with a `---` block."""
    if not text.startswith("---\n"):
        raise ZooError("no YAML front matter (the file must start with '---')")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise ZooError("front matter is not closed by a '---' line")
    try:
        return yaml.safe_load(text[4:end]) or {}, text[end + 5:]
    except yaml.YAMLError as exc:
        raise ZooError(f"invalid YAML front matter: {str(exc).splitlines()[0]}") from None


def read_front_matter(path):
    try:
        return split(path.read_text(encoding="utf-8"))[0]
    except ZooError as exc:
        raise ZooError(f"{path}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ZooError(f"{path}: cannot read: {exc}") from None


def validate(metadata, label):
    return documents.errors(metadata, "frontmatter", label)
