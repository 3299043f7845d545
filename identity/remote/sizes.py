"""Sizes that each provider accepts: the output size it is asked for, and the input images it is sent.

Output: a resolution is an area (1K ≈ 1 MP), an aspect ratio is a shape; the size is that shape at that area,
then pushed inside the model's documented bounds (pixel count, edge multiple, longest and shortest edge, ratio).
`auto` with an input photo means the photo's shape, not a square.

Inputs: photos and references are downscaled and re-encoded to fit the provider's byte and pixel limits (PNG
while it fits, else JPEG), never below what face verification needs, so a 40 MP phone photo still goes out.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..errors import InvalidRequest
from ..images import encode_jpeg, encode_png

AREA = {"1K": 1024 * 1024, "2K": 2048 * 2048, "4K": 3840 * 2160}
MAX_RATIO = 16  # longest side over shortest: wider than any panorama a face is verified in
MIN_FACE_SIDE = 512  # an input is never shrunk below this: faces in it must stay large enough to verify
_JPEG_QUALITIES = (95, 90, 85)


def ratio_of(aspect_ratio: str, inputs: list[np.ndarray]) -> float | None:
    """Width / height asked for; for `auto`, the first input's shape, or None (the model decides)."""
    if aspect_ratio != "auto":
        w, h = (int(v) for v in aspect_ratio.split(":"))
        return w / h
    if inputs:
        height, width = inputs[0].shape[:2]
        return width / height
    return None


def dimensions(resolution: str, ratio: float, rules: dict) -> tuple[int, int]:
    """(width, height) of `ratio` at the resolution's area, within `rules` (see models.json `pixels`)."""
    limit = rules.get("max_ratio")
    if limit:
        ratio = min(max(ratio, 1 / limit), limit)
    area = min(AREA[resolution], rules.get("max_pixels", math.inf))
    width, height = math.sqrt(area * ratio), math.sqrt(area / ratio)
    long_cap, short_cap = rules.get("max_long_side", math.inf), rules.get("max_short_side", math.inf)
    shrink = min(1.0, long_cap / max(width, height), short_cap / min(width, height))
    width, height = width * shrink, height * shrink
    grow = max(
        1.0, math.sqrt(rules.get("min_pixels", 0) / (width * height)), rules.get("min_side", 0) / min(width, height)
    )
    width, height = width * grow, height * grow
    step = rules.get("multiple", 1)
    w, h = int(width // step * step), int(height // step * step)
    if w * h < rules.get("min_pixels", 0) or min(w, h) < rules.get("min_side", 0):
        w, h = int(math.ceil(width / step) * step), int(math.ceil(height / step) * step)
    return w, h


def check_shape(width: int, height: int, limits: dict) -> None:
    """Refuse, from the size alone, a shape the provider's sides cannot hold: fitting it would mean enlarging the
    short side to `min_side` past `max_side` (a 60000×1 image became 23 million px wide for DashScope)."""
    low, high = limits.get("min_side"), limits.get("max_side")
    longest, shortest = max(width, height), max(1, min(width, height))
    allowed = min(MAX_RATIO, high / low) if low and high else MAX_RATIO
    if longest / shortest > allowed:
        raise InvalidRequest(
            f"an image of {width}x{height} is too narrow to send (its sides may differ at most {allowed:g}:1 here); "
            "crop it to a photo's shape"
        )


def fit(image: np.ndarray, limits: dict, byte_budget: float = math.inf, lossless: bool = True) -> bytes:
    """The image encoded within the provider's input limits: PNG if it fits (`lossless`), else JPEG, downscaled
    if needed. References pass `lossless=False`: as JPEG they are a fifth of the upload, with no visible loss."""
    height, width = image.shape[:2]
    check_shape(width, height, limits)
    scale = min(
        1.0,
        limits.get("max_side", math.inf) / max(width, height),
        math.sqrt(limits.get("max_pixels", math.inf) / (width * height)),
    )
    if limits.get("min_side") and min(width, height) * scale < limits["min_side"]:
        scale = limits["min_side"] / min(
            width, height
        )  # too small for the provider: enlarge (check_shape: not past max_side)
    budget = min(limits.get("max_image_bytes", math.inf), byte_budget)
    while True:
        resized = _resized(image, scale)
        encodings = ([lambda: encode_png(resized)] if lossless else []) + [
            lambda q=q: encode_jpeg(resized, q) for q in _JPEG_QUALITIES
        ]
        for encode in encodings:
            encoded = encode()
            if len(encoded) <= budget:
                return encoded
        if min(resized.shape[:2]) * 0.8 < min(MIN_FACE_SIDE, min(height, width)):
            raise InvalidRequest(
                f"an image of {width}x{height} cannot be made smaller than {budget / 1e6:.1f} MB "
                "without making its faces too small to verify; send a smaller photo"
            )
        scale *= 0.8


def _resized(image: np.ndarray, scale: float) -> np.ndarray:
    if abs(scale - 1.0) < 1e-6:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(image[..., :3])).resize(size, Image.LANCZOS))
