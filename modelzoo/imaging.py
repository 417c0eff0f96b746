"""Reading, preprocessing and writing images.

Inputs of any common kind become RGB uint8: grayscale and palette images are expanded to RGB, the alpha
channel of RGBA is dropped, 16-bit images are scaled to 8 bits, and EXIF orientation is applied. Headers are
checked against a pixel limit before anything is decoded (decompression bombs).

Photos (`read_photo` / `write_photo`, used by `modelzoo run`; `decode_photo` / `encode_photo`, the same from and
to bytes, used by `modelzoo serve`) keep what a photo carries besides its pixels:
the format, EXIF (orientation reset to 1 once the pixels are upright), an RGB ICC profile, the alpha
channel, 16-bit depth (the pixels stay float, so nothing is rounded to 8 bits on the way) and a JPEG's
chroma subsampling and progressive mode.
"""
import contextlib
import io
import logging
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from modelzoo.errors import ZooError

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif")
HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif")
DEFAULT_MAX_PIXELS = 120_000_000  # about 11000 x 11000; override with --max-pixels or MODELZOO_MAX_PIXELS
Image.MAX_IMAGE_PIXELS = None  # our own limit below replaces Pillow's warning
log = logging.getLogger(__name__)


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


def has_images(folder):
    return any(p.is_file() and p.suffix.lower() in SUFFIXES for p in Path(folder).iterdir())


def read_rgb(path, limit=None):
    """Decode an image file to RGB uint8 HxWx3, or raise ZooError with the file and the cause."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return read_npz_input(path)
    with opened(path, limit) as image:
        image.load()
        image = ImageOps.exif_transpose(image)
        return to_rgb(image)


@contextlib.contextmanager
def opened(source, limit=None, label=None):
    """The Pillow image of `source` (a path, or the bytes of an image file) with only its header read (checked
    against the pixel limit); every decoding problem inside the block becomes a one-line ZooError naming
    `label` (default: the path)."""
    limit = limit or max_pixels()
    label = source if label is None else label
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            width, height = image.size
            if width * height > limit:
                raise ZooError(f"{label}: {width}x{height} is {width * height:,} pixels, above the limit of "
                               f"{limit:,} (raise it with --max-pixels or MODELZOO_MAX_PIXELS)")
            yield image
    except FileNotFoundError:
        raise ZooError(f"{label}: no such file") from None
    except PermissionError:
        raise ZooError(f"{label}: permission denied") from None
    except UnidentifiedImageError:
        raise ZooError(f"{label}: {undecodable(source)}") from None
    except ZooError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, cv2.error) as exc:
        raise ZooError(f"{label}: cannot decode ({one_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - damaged files make Pillow raise TypeError, IndexError, struct.error...
        raise ZooError(f"{label}: cannot decode ({type(exc).__name__}: {one_line(exc)})") from None


def undecodable(source):
    """Why Pillow could not identify a file (a path or its bytes): empty, HEIC (no decoder here), or not an image."""
    try:
        if isinstance(source, bytes):
            head = source[:12]
        else:
            with open(source, "rb") as handle:
                head = handle.read(12)
    except OSError:
        head = b""
    if not head:
        return "empty file"
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return ("HEIC/HEIF is not supported (no decoder is installed); convert it to JPEG first, e.g. "
                "`heif-convert IN.heic OUT.jpg` or the phone's 'most compatible' camera setting")
    return "not an image Pillow can decode"


@dataclass
class Photo:
    """An input image and what its output should keep.

    pixels: RGB HxWx3, uint8, or float32 on the 0..255 scale for a 16-bit source (model.preprocess takes
    either). alpha: HxW in the source's depth, or None. format: Pillow's name (JPEG, PNG, WEBP, TIFF, BMP).
    exif: raw EXIF with orientation 1. icc: the ICC profile when it describes RGB. jpeg: save options that
    follow a JPEG source (subsampling, progressive).
    """

    pixels: np.ndarray | None
    format: str = "PNG"
    bits: int = 8
    alpha: np.ndarray | None = None
    exif: bytes | None = None
    icc: bytes | None = None
    jpeg: dict | None = None

    @property
    def size(self):
        return self.pixels.shape[:2]


def read_photo(path, limit=None):
    """Decode an image file with what `write_photo` needs to keep; ZooError with the file and the cause."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return Photo(read_npz_input(path))
    return decode_photo(path, limit)


def decode_photo(source, limit=None, label=None):
    """`read_photo` for a path or the bytes of an image file (e.g. an HTTP request body, named `label` in
    errors): the same pixels and metadata, so both give the same output bytes."""
    with opened(source, limit, label) as image:
        rawmode = image.tile[0][3] if image.tile else ""
        rawmode = rawmode[0] if isinstance(rawmode, tuple) else rawmode
        deep = ";16" in str(rawmode) or image.mode.startswith("I;16")
        photo = Photo(None, "JPEG" if image.format == "MPO" else image.format or "PNG", 16 if deep else 8)
        photo.exif = upright_exif(image.info.get("exif"))
        icc = image.info.get("icc_profile")
        if image.format in ("JPEG", "MPO"):
            from PIL import JpegImagePlugin

            photo.jpeg = {"subsampling": JpegImagePlugin.get_sampling(image),
                          "progressive": bool(image.info.get("progressive"))}
        orientation = image.getexif().get(0x0112, 1)
        if deep:
            photo.pixels, photo.alpha = decode_16bit(source, orientation, label)
        else:
            image.load()
            if image.mode == "CMYK":
                image, icc = cmyk_to_rgb(image, icc), None
            image = ImageOps.exif_transpose(image)
            photo.pixels = to_rgb(image)
            if "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info):
                photo.alpha = np.asarray(image.convert("RGBA"))[:, :, 3].copy()
        photo.icc = icc if icc and icc[16:20] == b"RGB " else None
        return photo


def decode_16bit(source, orientation, label=None):
    """16-bit PNG or TIFF (Pillow would cut it to 8 bits): RGB float32 on the 0..255 scale and uint16 alpha."""
    encoded = np.frombuffer(source, np.uint8) if isinstance(source, bytes) else np.fromfile(source, np.uint8)
    array = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ZooError(f"{source if label is None else label}: cannot decode this 16-bit image")
    array = oriented(array, orientation)
    if array.ndim == 2:
        array = array[:, :, None]
    channels = array.shape[2]
    colour = np.repeat(array[:, :, :1], 3, axis=2) if channels < 3 else array[:, :, 2::-1]
    alpha = array[:, :, -1].copy() if channels in (2, 4) else None
    return np.ascontiguousarray(colour, dtype=np.float32) / np.float32(257.0), alpha


def oriented(array, orientation):
    """Apply EXIF orientation 2..8 to an HxW(xC) array (what ImageOps.exif_transpose does to an image)."""
    steps = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 1)[::-1],
             8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(steps[orientation](array)) if orientation in steps else array


def cmyk_to_rgb(image, icc):
    """CMYK (print JPEGs) to RGB through the embedded profile when there is one, else Pillow's formula."""
    if icc:
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImportError, OSError, ImageCms.PyCMSError) as exc:
            log.warning("CMYK profile not usable (%s); converting without it", one_line(exc))
    return image.convert("RGB")


def upright_exif(exif):
    """Raw EXIF bytes with the orientation tag set to 1 (the pixels are made upright when read).

    Patched in place rather than re-serialised, so maker notes and their offsets stay valid.
    """
    if not exif:
        return None
    data = bytearray(exif)
    start = 6 if data[:6] == b"Exif\x00\x00" else 0
    order = {b"II": "<", b"MM": ">"}.get(bytes(data[start:start + 2]))
    try:
        if order:
            ifd = start + struct.unpack_from(order + "I", data, start + 4)[0]
            for index in range(struct.unpack_from(order + "H", data, ifd)[0]):
                entry = ifd + 2 + 12 * index
                if struct.unpack_from(order + "H", data, entry)[0] == 0x0112:
                    struct.pack_into(order + "H", data, entry + 8, 1)
                    break
    except struct.error:
        pass  # damaged EXIF: kept as it was
    return bytes(data)


OUTPUT_SUFFIXES = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tif"}
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
           ".bmp": "BMP"}


def output_suffix(source, fmt=None):
    """The output file's suffix: --format's, else the input's own (inputs without an image format: .png)."""
    if fmt:
        return OUTPUT_SUFFIXES[fmt]
    suffix = Path(source).suffix.lower()
    return suffix if suffix in FORMATS else ".png"


def output_format(photo, fmt=None):
    """Pillow's name of the format an output is encoded in: --format's (png, jpg, webp, tiff), else the
    photo's own, else PNG; for an input read from a file, `output_suffix` decides by the file's suffix."""
    if fmt:
        return FORMATS[OUTPUT_SUFFIXES[fmt]]
    return photo.format if photo.format in FORMATS.values() else "PNG"


def write_photo(path, image, photo=None, quality=95):
    """Write float RGB in [0, 1] atomically in the format of `path`'s suffix, keeping what `photo` carries:
    EXIF, ICC profile, alpha, 16-bit depth (PNG, TIFF) and a JPEG's subsampling and progressive mode."""
    path = Path(path)
    atomic_write(path, encode_photo(image, photo, FORMATS.get(path.suffix.lower(), "PNG"), quality, label=path))


def encode_photo(image, photo=None, fmt="PNG", quality=95, label="output"):
    """The bytes `write_photo` writes: float RGB in [0, 1] encoded as `fmt` (Pillow's name) with what `photo`
    carries; a one-line ZooError naming `label` when the encoder refuses."""
    photo = photo or Photo(None)
    try:
        if photo.bits == 16 and fmt in ("PNG", "TIFF"):
            return encode_16bit(image, photo, fmt)
        return encode_8bit(image, photo, fmt, quality)
    except (OSError, ValueError) as exc:
        raise ZooError(f"{label}: cannot encode as {fmt} ({one_line(exc)})") from None


def encode_8bit(image, photo, fmt, quality):
    pixels = quantize(image, "round")
    alpha = photo.alpha
    if alpha is not None and fmt in ("JPEG", "BMP"):
        log.warning("%s cannot hold an alpha channel: it is dropped", fmt)
        alpha = None
    if alpha is not None:
        if alpha.dtype != np.uint8:
            alpha = np.floor(alpha / 257.0 + 0.5).astype(np.uint8)
        pixels = np.dstack([pixels, alpha])
    options = {"exif": photo.exif, "icc_profile": photo.icc}
    if fmt == "JPEG":
        options.update(quality=quality, **(photo.jpeg or {}))
    elif fmt == "WEBP":
        options.update(quality=quality)
    elif fmt == "PNG":
        options.update(compress_level=3)  # 6 (Pillow's default) takes twice as long for 2% smaller files
    elif fmt == "TIFF":
        options.update(compression="tiff_adobe_deflate")
    else:
        options = {}
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **{k: v for k, v in options.items() if v is not None})
    return buffer.getvalue()


def encode_16bit(image, photo, fmt):
    pixels = np.floor(np.clip(image, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    if photo.alpha is not None:
        alpha = photo.alpha if photo.alpha.dtype == np.uint16 else photo.alpha.astype(np.uint16) * 257
        pixels = np.dstack([pixels, alpha])
    if fmt == "TIFF":
        import tifffile

        buffer = io.BytesIO()
        tifffile.imwrite(buffer, pixels, photometric="rgb", compression="zlib", iccprofile=photo.icc,
                         extrasamples=[2] if photo.alpha is not None else None)
        return buffer.getvalue()
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels[:, :, [2, 1, 0, 3][:pixels.shape[2]]]))
    if not ok:
        raise ValueError("OpenCV could not encode a 16-bit PNG")
    return png_with_chunks(encoded.tobytes(), photo)


def png_with_chunks(png, photo):
    """Insert iCCP and eXIf chunks after IHDR (OpenCV writes 16-bit PNGs but no metadata)."""
    chunks = b""
    if photo.icc:
        chunks += png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(photo.icc))
    if photo.exif:
        chunks += png_chunk(b"eXIf", photo.exif[6:] if photo.exif.startswith(b"Exif\x00\x00") else photo.exif)
    end_of_ihdr = 8 + 8 + 13 + 4
    return png[:end_of_ihdr] + chunks + png[end_of_ihdr:]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


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
    # Converted straight into a preallocated NCHW buffer (the transpose is read once, as the cast goes), then
    # normalised in place: ~5x faster than astype-then-transpose at 720p, the same values (a division, as
    # before: x * (1 / 255) would round differently).
    height, width = image.shape[:2]
    x = np.empty((1, image.shape[2], height, width), dtype=np.float32)
    x[0] = image.transpose(2, 0, 1)
    norm = config["NormaType"]
    if norm == "DIV255":
        np.divide(x, np.float32(255.0), out=x)
    elif norm == "MINUSMEAN_DIVSTD":
        np.subtract(x, np.float32(config["Mean"])[:, None, None], out=x)
        np.divide(x, np.float32(config["Std"])[:, None, None], out=x)
    return x


def quantize(image, mode="round"):
    """Float RGB in [0, 1] -> pixels: 'clip' keeps float x 255 in [0, 255]; 'floor' and 'round' give uint8.

    Always a new C-contiguous HxWxC array, computed in float32 in one buffer: x * 255, clipped to [0, 255],
    + 0.5 for 'round', then cast, which truncates: the floor of a value >= 0, so the same pixels as np.floor
    would give. A channel-planar input (a network's 1x3xHxW output transposed, as Model.enhance returns it) is
    worked on plane by plane and interleaved last, by cv2.merge on the uint8 planes: 3-4x faster than the chain
    of temporaries this replaced at 720p, bit for bit the same.
    """
    image = np.asarray(image)
    planes = image.transpose(2, 0, 1) if image.ndim == 3 and 1 < image.shape[2] <= 4 else None
    planar = planes is not None and planes.flags.c_contiguous and not image.flags.c_contiguous
    source = planes if planar else image
    scaled = np.empty(source.shape, dtype=np.float32)
    np.multiply(source, np.float32(255.0), out=scaled, dtype=np.float32, casting="unsafe")  # float64: cast first
    np.clip(scaled, 0, 255, out=scaled)
    if mode != "clip":
        if mode != "floor":
            np.add(scaled, np.float32(0.5), out=scaled)
        scaled = scaled.astype(np.uint8)
    return cv2.merge(list(scaled)) if planar else scaled


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
