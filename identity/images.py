"""Photos in, RGB uint8 arrays out: the one place where files and arrays become pixels.

Everything downstream works on `H×W×3 uint8` RGB. Alpha is flattened onto white (a transparent
background is not a face), grey is expanded, EXIF orientation is honoured (phone photos), and files that
would not fit in memory are refused before they are decoded.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

#: Largest image decoded, in pixels: a 12000×8000 photo is fine, a decompression bomb is not.
MAX_PIXELS = 100_000_000
#: Pixels decoded at once when many photos are analysed (300 MB as RGB): eight 12-MP phone photos, or one of MAX_PIXELS.
DECODE_BUDGET = MAX_PIXELS
#: Largest image file read: no image within MAX_PIXELS needs more than 8 bytes a pixel (RGBA at 16 bits a
#: channel, uncompressed), so a larger file is padding, or sparse, and would only fill memory.
MAX_FILE_BYTES = MAX_PIXELS * 8

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

ImageSource = str | Path | bytes | np.ndarray | Image.Image


def load_image(source: ImageSource) -> np.ndarray:
    """Decode a path, encoded bytes, a PIL image or an array into RGB uint8 `H×W×3`."""
    if isinstance(source, np.ndarray):
        return as_rgb(source)
    if isinstance(source, Image.Image):
        return _pil_to_rgb(source, "image")
    with _opened(source) as (image, label):
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"truncated or corrupt image data ({exc})", label) from None
        return _pil_to_rgb(image, label)


@dataclass(frozen=True)
class Reduced:
    """An image decoded at a reduced scale: its pixels, the factor from their coordinates to the full image's,
    and the full image's (width, height), upright."""

    pixels: np.ndarray
    factor: float
    size: tuple[int, int]


def load_reduced(source: ImageSource, longest: int) -> Reduced:
    """The image at the smallest scale whose longest side still reaches `longest` px.

    A JPEG is decoded scaled in its DCT (1/2, 1/4 or 1/8: a fraction of the full decode's time and memory);
    any other source is decoded at full size (factor 1). Detection at `longest` px loses nothing to this."""
    if isinstance(source, (np.ndarray, Image.Image)):
        pixels = load_image(source)
        return Reduced(pixels, 1.0, (pixels.shape[1], pixels.shape[0]))
    with _opened(source) as (image, label):
        width, height = image.size
        if image.format == "JPEG" and max(width, height) > longest:
            scale = longest / max(width, height)
            image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"truncated or corrupt image data ({exc})", label) from None
        factor, decoded = width / image.size[0], image.size
        pixels = _pil_to_rgb(image, label)
        upright = (width, height) if (pixels.shape[1], pixels.shape[0]) == decoded else (height, width)
        return Reduced(pixels, factor, upright)


def probe_image(source: ImageSource) -> tuple[int, int]:
    """(width, height) from the header alone: a cheap check that a source is an image of a usable size."""
    if isinstance(source, np.ndarray):
        return _array_size(source)
    if isinstance(source, Image.Image):
        return source.size
    with _opened(source) as (image, _):
        return image.size


def open_image_file(path: str | Path):
    """A binary handle on an image file: a regular file of at most MAX_FILE_BYTES, else an `ImageError`. Opened
    without blocking, so a FIFO (which would wait for a writer for ever) or a device (`/dev/zero` never ends) is
    refused before anything is read."""
    label = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ImageError("no such file", label) from None
    except OSError as exc:
        raise ImageError(f"cannot be opened ({exc.strerror or exc})", label) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO, device or socket"
            raise ImageError(f"not a regular file ({kind}); give image files only", label)
        if info.st_size > MAX_FILE_BYTES:
            raise ImageError(
                f"file too large ({info.st_size / 1e9:.1f} GB; an image file is at most "
                f"{MAX_FILE_BYTES / 1e9:.1f} GB); downscale it first",
                label,
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_image_file(path: str | Path) -> bytes:
    """The bytes of an image file, within the limits of `open_image_file` (a file that grows while it is read
    is refused too)."""
    with open_image_file(path) as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"file too large (over {MAX_FILE_BYTES / 1e9:.1f} GB); downscale it first", str(path))
    return data


@contextlib.contextmanager
def _opened(source):
    """A lazily opened PIL image with its label, refused early when it is not an image or far too large."""
    if isinstance(source, (bytes, bytearray)):
        handle, label = io.BytesIO(source), "uploaded image"
    else:
        handle, label = open_image_file(source), str(source)
    with handle:
        try:
            image = Image.open(handle)
        except UnidentifiedImageError:
            raise ImageError("not an image (unrecognised file format)", label) from None
        except Image.DecompressionBombError:
            raise ImageError(
                f"image too large (over {MAX_PIXELS // 1_000_000} MP); downscale it first", label
            ) from None
        except (OSError, SyntaxError, ValueError) as exc:  # Pillow's ValueError: e.g. a text-chunk bomb in a PNG
            raise ImageError(f"unreadable ({exc})", label) from None
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageError(
                f"image too large ({width}×{height} px, limit {MAX_PIXELS // 1_000_000} MP); downscale it first", label
            )
        yield image, label


def _sixteen_to_eight(array: np.ndarray) -> np.ndarray:
    """16-bit (or 32-bit integer) grey as 8-bit, a band of rows at a time: the whole image in float64 cost
    2.9 GB for a 100-MP PNG of 194 KB."""
    peak = 65535.0 if array.max(initial=0) > 255 else 255.0
    grey = np.empty(array.shape, np.uint8)
    for start in range(0, array.shape[0], 512):
        band = array[start : start + 512].astype(np.float32) * np.float32(255.0 / peak)
        grey[start : start + 512] = np.clip(np.rint(band), 0, 255)
    return grey


def _pil_to_rgb(image: Image.Image, label: str) -> np.ndarray:
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not lose an otherwise good photo
        pass
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return as_rgb(_sixteen_to_eight(np.asarray(image)))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode != "RGB":
        try:
            image = image.convert("RGB")
        except (OSError, ValueError) as exc:
            raise ImageError(f"unsupported colour mode {image.mode} ({exc})", label) from None
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def as_rgb(array: np.ndarray) -> np.ndarray:
    """Normalise an array (grey, RGB, RGBA; uint8 or float 0..1) to RGB uint8 `H×W×3`."""
    array = np.asarray(array)
    _array_size(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype != np.uint8:
        values = array.astype(np.float32)
        if values.size and float(np.nanmax(values)) <= 1.0 + 1e-6:
            values = values * 255.0
        array = np.clip(np.nan_to_num(values), 0, 255).round().astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        alpha = array[:, :, 3:4].astype(np.float32) / 255.0
        array = (array[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(array)


def _array_size(array: np.ndarray) -> tuple[int, int]:
    shape = np.shape(array)
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3, 4)) or min(shape[:2]) < 1:
        raise ImageError(f"expected an H×W, H×W×3 or H×W×4 image, got an array of shape {tuple(shape)}")
    return int(shape[1]), int(shape[0])


def pixel_batches(sizes: dict[int, tuple[int, int]], most: int) -> list[list[int]]:
    """The keys of `sizes` (width, height) in order, in groups of at most `most` whose images hold at most
    DECODE_BUDGET pixels together (a larger image goes alone): decoding memory is bounded by pixels, not by
    photo count."""
    batches: list[list[int]] = [[]]
    total = 0
    for key, (width, height) in sizes.items():
        pixels = width * height
        if batches[-1] and (total + pixels > DECODE_BUDGET or len(batches[-1]) >= most):
            batches.append([])
            total = 0
        batches[-1].append(key)
        total += pixels
    return [batch for batch in batches if batch]


def collect_photos(paths, recursive: bool = False) -> list[Path]:
    """Expand folders into their image files (sorted; with `recursive`, sub-folders too), keep files as given."""
    photos: list[Path] = []
    for entry in paths:
        entry = Path(entry)
        if entry.is_dir():
            found = entry.rglob("*") if recursive else entry.iterdir()
            photos.extend(sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            photos.append(entry)
    return photos


def encode_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(as_rgb(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """Compact enough for a web gallery: a 384 px portrait is ~25 kB as JPEG against ~250 kB as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(as_rgb(image)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
