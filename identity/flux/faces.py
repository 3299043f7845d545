"""What PuLID's ID encoder sees of a face, made from a profile's stored aligned crops.

PuLID aligns each photo to the FFHQ 512 template, blanks everything a face-parsing network calls background
(white), turns the rest grey, and resizes it for EVA-CLIP. Profiles keep ArcFace-aligned 112×112 crops rather than
photos, and this pack ships no face-parsing model, so here the crop is warped into the same FFHQ geometry at the
tower's input size and everything outside an ellipse over the face (brows to chin, cheek to cheek; derived
from the template landmarks) is blanked white instead of parsed. Hair and the parts of the head the ArcFace
crop cuts off are therefore blank; the features come from a 112-px face.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..faces.align import CROP_SIZE, TEMPLATE, similarity_transform

#: The five landmarks in FFHQ-aligned 512×512 faces (facexlib's template, which PuLID aligns to).
FFHQ_512 = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                     [201.26117, 371.41043], [313.08905, 371.15118]])
#: The face ellipse, in units of the eye distance (across) and of the eyes-to-mouth distance (down).
ELLIPSE_HALF_WIDTH = 1.1
ELLIPSE_HALF_HEIGHT = 1.45
ELLIPSE_RAISE = 0.15  # the centre sits this far above the midpoint of eyes and mouth
WHITE = 255


def face_ellipse(size: int) -> np.ndarray:
    """`[size, size]` bool: the face region in FFHQ-aligned coordinates."""
    points = FFHQ_512 * (size / 512.0)
    eyes, mouth = points[:2].mean(axis=0), points[3:].mean(axis=0)
    across = float(np.linalg.norm(points[1] - points[0]))
    down = float(mouth[1] - eyes[1])
    centre_x, centre_y = eyes[0], (eyes[1] + mouth[1]) / 2 - ELLIPSE_RAISE * down
    y, x = np.mgrid[0:size, 0:size] + 0.5
    return ((x - centre_x) / (ELLIPSE_HALF_WIDTH * across)) ** 2 + ((y - centre_y) / (ELLIPSE_HALF_HEIGHT * down)) ** 2 <= 1.0


def encoder_faces(crops: np.ndarray, size: int) -> np.ndarray:
    """ArcFace-aligned RGB uint8 crops `[N, 112, 112, 3]` → grey, background-white faces `[N, size, size, 3]`."""
    matrix = similarity_transform(TEMPLATE * (crops.shape[1] / CROP_SIZE), FFHQ_512 * (size / 512.0))
    inside = face_ellipse(size)
    faces = []
    for crop in crops:
        warped = cv2.warpAffine(np.ascontiguousarray(crop), matrix, (size, size), flags=cv2.INTER_CUBIC,
                                borderValue=(WHITE, WHITE, WHITE))
        grey = cv2.cvtColor(cv2.cvtColor(warped, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        faces.append(np.where(inside[..., None], grey, WHITE).astype(np.uint8))
    return np.stack(faces)


def to_pixels(faces: np.ndarray) -> torch.Tensor:
    """`[N, S, S, 3]` uint8 → `[N, 3, S, S]` float in 0..1."""
    return torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255.0
