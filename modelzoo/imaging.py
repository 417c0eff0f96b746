"""Reading, preprocessing and writing images.

Inputs of any common kind become RGB uint8: grayscale and palette images are expanded to RGB, the alpha
channel of RGBA is dropped, 16-bit images are scaled to 8 bits, and EXIF orientation is applied. Headers are
checked against a pixel limit before anything is decoded (decompression bombs).
"""
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from modelzoo.errors import ZooError

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_MAX_PIXELS = 120_000_000  # about 11000 x 11000; override with --max-pixels or MODELZOO_MAX_PIXELS
Image.MAX_IMAGE_PIXELS = None  # our own limit below replaces Pillow's warning


def max_pixels():
    return int(os.environ.get("MODELZOO_MAX_PIXELS", DEFAULT_MAX_PIXELS))


def list_images(path):
    """One image file, or the image files of a folder (sorted, not recursive)."""
    path = Path(path)
    if not path.exists():
        raise ZooError(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise ZooError(f"{path}: no images ({', '.join(SUFFIXES)}) in this folder")
    return files


def read_rgb(path, limit=None):
    """Decode an image file to RGB uint8 HxWx3, or raise ZooError with the file and the cause."""
    path = Path(path)
    limit = limit or max_pixels()
    if path.suffix.lower() == ".npz":
        return read_npz_input(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > limit:
                raise ZooError(f"{path}: {width}x{height} is {width * height:,} pixels, above the limit of "
                               f"{limit:,} (raise it with --max-pixels or MODELZOO_MAX_PIXELS)")
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except FileNotFoundError:
        raise ZooError(f"{path}: no such file") from None
    except PermissionError:
        raise ZooError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        size = path.stat().st_size if path.exists() else 0
        cause = "empty file" if size == 0 else "not an image Pillow can decode"
        raise ZooError(f"{path}: {cause}") from None
    except ZooError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ZooError(f"{path}: cannot decode ({one_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - damaged files make Pillow raise TypeError, IndexError, struct.error...
        raise ZooError(f"{path}: cannot decode ({type(exc).__name__}: {one_line(exc)})") from None


def one_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_npz_input(path):
    """An input saved by `modelzoo image2npz`: uint8 CHW RGB under key input_0 (the reference zoo's layout)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            array = data["input_0"]
    except (OSError, ValueError, KeyError) as exc:
        raise ZooError(f"{path}: not an image2npz file with an input_0 array ({exc})") from None
    if array.ndim != 3 or array.shape[0] != 3:
        raise ZooError(f"{path}: input_0 has shape {array.shape}, expected 3xHxW")
    return np.ascontiguousarray(array.transpose(1, 2, 0).astype(np.uint8))


def to_rgb(image):
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, dtype=np.float64)
        scale = 257.0 if values.max(initial=0) > 255 or image.mode.startswith("I;16") else 1.0
        gray = np.clip(np.round(values / scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "RGBA" or image.mode == "LA" or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def to_rgb_array(array):
    """An in-memory image (gray, RGB or RGBA uint8 array) as RGB uint8 HxWx3."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3].astype(np.uint8))


def resize(image, width, height):
    """Bilinear resize the way OpenCV does it (the reference zoo's BILINEAR_CV)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def vdsp_preprocess(image, vdsp, native=False):
    """RGB uint8 HxWx3 -> float32 1x3xHxW as the vdsp params describe (resize, colour, normalisation)."""
    config = vdsp["OpConfig"]
    if not native:
        interpolation = {"NEAREST": cv2.INTER_NEAREST, "BICUBIC": cv2.INTER_CUBIC}.get(config["ResizeType"],
                                                                                       cv2.INTER_LINEAR)
        size = (config["OimageWidth"], config["OimageHeight"])
        if image.shape[1::-1] != size:
            image = cv2.resize(image, size, interpolation=interpolation)
    if config["ColorCvtCode"] == "COLOR_RGB2BGR" or config["IimageFormat"] == "BGR_PLANAR":
        image = image[:, :, ::-1]
    x = image.astype(np.float32)
    norm = config["NormaType"]
    if norm == "DIV255":
        x /= 255.0
    elif norm == "MINUSMEAN_DIVSTD":
        x = (x - np.float32(config["Mean"])) / np.float32(config["Std"])
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def quantize(image, mode="round"):
    """Float RGB in [0, 1] -> pixels: 'clip' keeps float x 255 in [0, 255]; 'floor' and 'round' give uint8."""
    scaled = np.clip(image.astype(np.float32) * 255.0, 0, 255)
    if mode == "clip":
        return scaled
    if mode == "floor":
        return np.floor(scaled).astype(np.uint8)
    return np.floor(scaled + 0.5).astype(np.uint8)


def write_rgb(path, image):
    """Write an RGB uint8 image atomically: a temporary file in the same folder, then rename."""
    path = Path(path)
    ok, encoded = cv2.imencode(path.suffix or ".png", np.ascontiguousarray(image[:, :, ::-1]))
    if not ok:
        raise ZooError(f"{path}: cannot encode image as {path.suffix}")
    atomic_write(path, encoded.tobytes())


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp's temporary files are 0600


def atomic_write(path, data):
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ZooError(f"{path.parent}: cannot write here ({exc.strerror or exc})") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data if isinstance(data, bytes) else data.encode("utf-8"))
            os.fchmod(out.fileno(), FILE_MODE)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ZooError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_writable(folder):
    """Raise a one-line ZooError unless files can be created in `folder`; folders it had to create are removed."""
    folder = Path(folder)
    created, parent = [], folder
    while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
        created.append(parent)
        parent = parent.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".modelzoo-probe.", suffix=".tmp")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise ZooError(f"{folder}: cannot write output here ({exc.strerror or exc})") from None
    finally:
        for made in created:  # deepest first
            try:
                made.rmdir()
            except OSError:
                break
