"""Property tests: the validators and the image loader give the project's own clean errors, never another exception.

Each property runs 1,000 examples (deadline off, tiny inputs) and should take a few seconds.
"""
import copy
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import ROOT
from modelzoo import documents, imaging
from modelzoo.errors import ZooError
from modelzoo.validation import validate_file

pytestmark = pytest.mark.filterwarnings("ignore")

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
PAIRLIE = ROOT / "models" / "pairlie"
REAL = {
    "card": yaml.safe_load((PAIRLIE / "card.yaml").read_text()),
    "build": yaml.safe_load((PAIRLIE / "build" / "int8.yaml").read_text()),
    "vdsp": json.loads((PAIRLIE / "vdsp_params.json").read_text()),
}

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12))
json_like = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12,
)


def paths_of(document, prefix=()):
    """Every path (tuple of keys/indices) to a value inside a nested document."""
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from paths_of(value, prefix + (key,))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from paths_of(value, prefix + (index,))


@st.composite
def mutated(draw, kind):
    """A copy of a real document with a few values replaced, removed or added."""
    document = copy.deepcopy(REAL[kind])
    for _ in range(draw(st.integers(1, 4))):
        spots = list(paths_of(document))
        path = draw(st.sampled_from(spots))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            if action == "replace":
                document = draw(json_like)
            continue
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        if action == "replace":
            parent[path[-1]] = draw(json_like)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_like)
        else:
            parent.append(draw(json_like))
    return document


def assert_clean(problems):
    assert isinstance(problems, list)
    for line in problems:
        assert isinstance(line, str) and line and "\n" not in line, repr(line)


@pytest.mark.parametrize("kind", ["card", "build", "vdsp"])
def test_validators_on_random_documents(kind):
    @FUZZ
    @given(st.one_of(json_like, mutated(kind)))
    def check(document):
        try:
            assert_clean(documents.errors(document, kind, f"{kind}.yaml"))
        except ZooError:
            pass

    check()


@FUZZ
@given(st.one_of(mutated("card"), mutated("build"), mutated("vdsp"), json_like),
       st.sampled_from([".json", ".json", ".json", ".yaml"]))
def test_validate_file_on_mutated_real_documents(document, suffix):
    """The `modelzoo validate` path: parse, guess the kind, validate, follow a card's references."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / f"doc{suffix}"
        try:
            text = json.dumps(document) if suffix == ".json" else yaml.safe_dump(document)
        except (ValueError, yaml.YAMLError):
            return
        target.write_text(text, encoding="utf-8")
        problems, count = validate_file(target)
        assert_clean(problems)
        assert count >= 1


@FUZZ
@given(st.binary(max_size=400))
def test_document_reader_on_random_bytes(blob):
    with tempfile.TemporaryDirectory() as folder:
        for name in ("doc.yaml", "doc.json"):
            target = Path(folder) / name
            target.write_bytes(blob)
            try:
                documents.read(target)
            except ZooError as exc:
                assert "\n" not in str(exc)


def encoded_samples():
    """Tiny real images in several formats and modes, the seeds that the mutations damage."""
    rng = np.random.default_rng(0)
    rgb = (rng.random((5, 7, 3)) * 255).astype(np.uint8)
    out = []
    for mode, fmt in [("RGB", "PNG"), ("RGB", "JPEG"), ("L", "PNG"), ("RGBA", "PNG"), ("P", "PNG"),
                      ("I;16", "PNG"), ("RGB", "BMP"), ("RGB", "TIFF"), ("RGB", "WEBP")]:
        image = Image.fromarray(rgb)
        if mode == "I;16":
            image = Image.fromarray((rgb[:, :, 0].astype(np.uint16) * 257))
        elif mode != "RGB":
            image = image.convert(mode)
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        out.append((fmt.lower(), buffer.getvalue()))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", exif=exif)
    out.append(("jpeg", buffer.getvalue()))
    return out


SAMPLES = encoded_samples()


@st.composite
def damaged_image(draw):
    fmt, data = draw(st.sampled_from(SAMPLES))
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[position:position + draw(st.integers(1, 64))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
    return fmt, bytes(data)


def check_loader(suffix, blob, folder):
    target = Path(folder) / f"in.{suffix}"
    target.write_bytes(blob)
    try:
        image = imaging.read_rgb(target, limit=1_000_000)
    except ZooError as exc:
        assert "\n" not in str(exc) and str(target) in str(exc)
        return
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8
    assert image.ndim == 3 and image.shape[2] == 3 and image.shape[0] >= 1 and image.shape[1] >= 1


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["png", "jpg", "bmp", "tif", "webp"]))
def test_image_loader_on_random_bytes(blob, suffix):
    with tempfile.TemporaryDirectory() as folder:
        check_loader(suffix, blob, folder)


@FUZZ
@given(damaged_image())
def test_image_loader_on_mutated_real_images(sample):
    fmt, blob = sample
    with tempfile.TemporaryDirectory() as folder:
        check_loader(fmt, blob, folder)
