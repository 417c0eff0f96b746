"""`modelzoo compare`: every model on the user's own photos, side by side in one self-contained HTML report.

Each model runs through `modelzoo.load` (its fastest accurate build, default weights: what `modelzoo run` gives)
at each photo's own size. Outputs are scored with the metrics their task's evaluator declares: the no-reference
ones, and the full-reference ones too when references are given (paired by file name, as `eval` pairs them).
A model that fails on a photo is reported in the page; the others complete.
"""
import base64
import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from modelzoo import api, imaging
from modelzoo.publish import render
from modelzoo.errors import ZooError
from modelzoo.evaluate import for_task, pair_references, score_pixels

logger = logging.getLogger(__name__)
SHOWN_SIDE = 1024  # pictures in the report: at most this many pixels a side, JPEG, embedded
INPUT = "input"  # the column of the unenhanced photos (its no-reference scores are the baseline)


@dataclass
class Column:
    """One model's (or the input's) results over the photos."""

    name: str
    title: str
    label: str = ""  # the build that ran
    pictures: dict = field(default_factory=dict)  # photo name -> data URI
    scores: dict = field(default_factory=dict)  # photo name -> {metric: value}
    seconds: dict = field(default_factory=dict)  # photo name -> seconds to enhance
    errors: dict = field(default_factory=dict)  # photo name (or "*" for the whole model) -> one line

    def mean(self, metric):
        values = [s[metric] for s in self.scores.values() if metric in s]
        return float(np.mean(values)) if values else None

    def mean_seconds(self):
        return float(np.mean(list(self.seconds.values()))) if self.seconds else None


def photos_in(paths):
    files = [f for p in paths for f in imaging.list_images(p)]
    if not files:
        raise ZooError(f"{', '.join(map(str, paths))}: no images found")
    names = [f.stem for f in files]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ZooError(f"--input: several photos are named {', '.join(repeated)}: names must be unique")
    return files


def data_uri(image):
    """A picture small enough to embed: JPEG at most SHOWN_SIDE a side."""
    picture = Image.fromarray(image)
    picture.thumbnail((SHOWN_SIDE, SHOWN_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=88)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def compare(paths, models, registry, reference=None, progress=True):
    """{"photos": [names], "columns": [Column], "metrics": [Metric], "failures": n}; the input is the first column."""
    files = photos_in(paths)
    refs = pair_references(files, reference) if reference else {}
    evaluators = {m.card["task"]: for_task(registry, m.card["task"]) for m in models}
    declared = {m.name: m for e in evaluators.values() for m in e.metrics}
    names = {task: e.metric_names(False) + (e.metric_names(True) if refs else []) for task, e in evaluators.items()}
    metrics = [declared[n] for n in dict.fromkeys(n for task in names.values() for n in task)]
    baseline = Column(INPUT, "input (not enhanced)", "the photo as given")
    columns = [baseline]
    bar = tqdm(total=len(files) * (len(models) + 1), desc="compare", unit="image", disable=not progress)
    first = next(iter(evaluators.values()), None)
    for file in files:
        image = imaging.read_rgb(file)
        baseline.pictures[file.stem] = data_uri(image)
        if first is not None:
            baseline.scores[file.stem] = score_pixels(first, image, refs.get(file.stem), names[models[0].card["task"]],
                                                      file)
        bar.update()
    for model in models:
        columns.append(run_model(model, files, refs, evaluators[model.card["task"]], names[model.card["task"]], bar))
    bar.close()
    failures = sum(len(c.errors) if "*" not in c.errors else len(files) for c in columns)
    return {"photos": [f.stem for f in files], "columns": columns, "metrics": metrics, "failures": failures}


def run_model(model, files, refs, evaluator, names, bar):
    column = Column(model.name, model.card["title"])
    try:
        enhance = api.load(model.name)
    except ZooError as exc:
        column.errors["*"] = str(exc)
        logger.warning("%s: %s", model.name, exc)
        bar.update(len(files))
        return column
    column.label = enhance.job.label
    for file in files:
        try:
            image = imaging.read_rgb(file)
            started = time.perf_counter()
            output = enhance(image)
            column.seconds[file.stem] = time.perf_counter() - started
            column.scores[file.stem] = score_pixels(evaluator, output, refs.get(file.stem), names, file)
            column.pictures[file.stem] = data_uri(output)
        except (ZooError, ValueError, RuntimeError, MemoryError) as exc:
            column.errors[file.stem] = imaging.one_line(exc)
            logger.warning("%s on %s: %s", model.name, file.name, column.errors[file.stem])
        bar.update()
    return column


def ranking(result):
    """The model columns sorted by the first metric (its own direction); the input and failed models last."""
    lead = result["metrics"][0] if result["metrics"] else None
    models = [c for c in result["columns"] if c.name != INPUT]

    def key(column):
        value = column.mean(lead.name) if lead else None
        if value is None:
            return (1, 0.0, column.name)
        return (0, -value if lead.higher_is_better else value, column.name)

    return sorted(models, key=key)


def write_report(result, out):
    """report.html, self-contained (pictures embedded), in folder `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    imaging.check_writable(out)
    baseline = result["columns"][0]
    page = render("compare.html.j2", generated="generated by modelzoo compare", photos=result["photos"],
                  columns=result["columns"], metrics=result["metrics"], ranking=ranking(result), baseline=baseline,
                  failures=result["failures"])
    target = out / "report.html"
    imaging.atomic_write(target, page)
    return target
