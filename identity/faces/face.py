"""What a face engine returns for one face."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class Boxed:
    """What faces and animals share, the subjects engines find: a box (`bbox`, x1, y1, x2, y2) and what it says
    about the subject, the detector's confidence, and the crop the engine embedded with its unit embedding."""

    bbox: np.ndarray
    score: float
    crop: np.ndarray | None
    embedding: np.ndarray | None

    @property
    def size(self) -> float:
        """Shorter side of the box in pixels: what decides whether the subject carries enough detail."""
        return float(min(self.bbox[2] - self.bbox[0], self.bbox[3] - self.bbox[1]))


@dataclass
class Face(Boxed):
    """One detected face, in the coordinates of the image it was found in.

    `landmarks` are the five points of the ArcFace convention: left eye, right eye, nose tip, left and right
    mouth corner (left/right as seen in the image). `crop` is the 112×112 aligned RGB face and `embedding`
    the engine's L2-normalised identity vector; both are filled by `FaceEngine.analyze`.
    """

    bbox: np.ndarray  # (4,) float32: x1, y1, x2, y2
    landmarks: np.ndarray  # (5, 2) float32
    score: float
    crop: np.ndarray | None = field(default=None, repr=False)
    embedding: np.ndarray | None = field(default=None, repr=False)

    def scaled(self, factor: float) -> Face:
        return Face(self.bbox * factor, self.landmarks * factor, self.score)
