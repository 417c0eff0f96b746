"""Dataset layouts plugins register: paired folders (low/ and high/ with matching names) and plain folders."""
from dataclasses import dataclass
from pathlib import Path

from modelzoo import paths
from modelzoo.errors import ZooError
from modelzoo.imaging import list_images


@dataclass
class Item:
    name: str
    input: Path
    reference: Path | None = None


@dataclass
class Dataset:
    """`subpath` is looked up under --data-root, then each folder of $MODELZOO_DATA, then ../shared/data."""

    name: str
    subpath: str
    paired: bool
    split: str = "test"
    description: str = ""
    inputs: str = "low"  # paired layout: folder of inputs and folder of references
    references: str = "high"
    task: str = ""  # the task whose models `modelzoo eval --all --dataset NAME` evaluates on it
    plugin: str = ""

    def root(self, data_root=None):
        if data_root:
            root = Path(data_root)
            for candidate in (root / self.subpath, root):
                if self._looks_right(candidate):
                    return candidate
            raise ZooError(f"--data-root {root}: neither it nor {self.subpath} under it holds {self.name} "
                           f"({self._expected()})")
        for folder in paths.search_path("MODELZOO_DATA", "data"):
            if self._looks_right(folder / self.subpath):
                return folder / self.subpath
        raise ZooError(f"dataset {self.name}: not found; pass --data-root DIR or set MODELZOO_DATA to the folder "
                       f"holding {self.subpath} ({self._expected()})")

    def _expected(self):
        return f"{self.inputs}/ and {self.references}/ with matching names" if self.paired else "image files"

    def _looks_right(self, folder):
        if self.paired:
            return (folder / self.inputs).is_dir() and (folder / self.references).is_dir()
        return folder.is_dir()

    def items(self, data_root=None):
        root = self.root(data_root)
        return pair_folders(root / self.inputs, root / self.references) if self.paired else \
            [Item(p.stem, p) for p in list_images(root)]


def pair_folders(inputs, references):
    """Pair inputs with references by file stem (not by sorted position); a missing partner is an error."""
    refs = {p.stem: p for p in list_images(references)}
    items, missing = [], []
    for path in list_images(inputs):
        if path.stem in refs:
            items.append(Item(path.stem, path, refs[path.stem]))
        else:
            missing.append(path.name)
    if missing:
        raise ZooError(f"{references}: no reference for {', '.join(missing[:5])}"
                       f"{' ...' if len(missing) > 5 else ''}")
    return items
