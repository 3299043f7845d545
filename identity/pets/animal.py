"""One cat or dog found in a photo, and the crops made from it: what training and scoring handle for pets.

Kept apart from the networks (`engine`) so that code which only handles animals does not load torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..faces.face import Boxed

KINDS = ("cat", "dog")
APPEARANCE = "appearance similarity (not identity)"
IDENTITY = "re-identification similarity"
CROP_MARGIN = 0.10  # of the box, added on every side of an animal crop
_PORTRAIT_MARGIN = 0.35
PORTRAIT_SIZE = 384
SIZE = 224  # the crop side the embedding networks read


@dataclass
class Animal(Boxed):
    kind: str  # "cat" | "dog"
    bbox: np.ndarray  # (4,) x1, y1, x2, y2
    score: float
    crop: np.ndarray | None = field(default=None, repr=False)  # SIZE×SIZE RGB
    embedding: np.ndarray | None = field(default=None, repr=False)


def square(image: np.ndarray, bbox, margin: float, size: int | None) -> np.ndarray:
    """A square around the box (grown by `margin`), kept inside the image (shifted, then shrunk), as a person's
    portrait is: padding would smear edge pixels into references that closed models copy. `size` None keeps
    the photo's own resolution."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    height, width = image.shape[:2]
    side = int(min(max(x2 - x1, y2 - y1) * (1 + 2 * margin), width, height))
    left = int(round(min(max((x1 + x2 - side) / 2, 0), width - side)))
    top = int(round(min(max((y1 + y2 - side) / 2, 0), height - side)))
    region = image[top : top + side, left : left + side]
    if size is None:
        return np.ascontiguousarray(region)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(region), (size, size), interpolation=interpolation)


def portrait(image: np.ndarray, animal: Animal, size: int | None = PORTRAIT_SIZE) -> np.ndarray:
    """The reference portrait: the animal with some surroundings, like a person's head-and-shoulders."""
    return square(image, animal.bbox, _PORTRAIT_MARGIN, size)


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the crop's centre (the animal, not the padding)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    quarter = grey.shape[0] // 4
    return float(cv2.Laplacian(grey[quarter:-quarter, quarter:-quarter], cv2.CV_64F).var())


def exposure(crop: np.ndarray) -> np.ndarray:
    """(sharpness, brightness, highlights) as a profile stores them for faces."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return np.array([sharpness(crop), grey.mean(), np.mean(grey >= 250)], np.float32)
