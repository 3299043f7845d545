"""The profile's reference photos: few, good, and as different from each other as the photos allow.

Closed models get a handful of portraits per person; several copies of the same frontal smile teach them
less than one frontal, one three-quarter and one laughing photo. The first reference is the best frontal
photo (it is also the thumbnail); each next one is the photo farthest from those already chosen in pose and
appearance (embedding distance carries expression and lighting), weighted by its quality.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..faces.align import PORTRAIT_SIZE

#: Large portraits (`Profile.large_portraits`): references at up to this side where their photos have the pixels
#: (about 1 megapixel, what ComfyUI's edit models scale a reference to), in steps of 16 px.
LARGE_SIDE, LARGE_STEP = 1024, 16
#: Reference portraits kept: more than Identity Condition (Reference) uses (4), so that a gallery can show more.
MAX_REFERENCES = 8
_POSE_SCALE = 30.0  # degrees that count as much as a clearly different expression
_DUPLICATE = 0.05  # below this distance two photos are the same shot (e.g. a resized copy)


def photo_quality(sizes: np.ndarray, scores: np.ndarray, sharpness: np.ndarray) -> np.ndarray:
    """0..1 per photo: detector confidence × enough pixels × enough detail."""
    return scores * np.clip(sizes / 160.0, 0.2, 1.0) * np.sqrt(np.clip(sharpness / 400.0, 0.05, 1.0))


def choose_references(
    embeddings: np.ndarray, poses: np.ndarray, quality: np.ndarray, limit: int = MAX_REFERENCES
) -> list[int]:
    """Indices of the chosen photos, best frontal first."""
    count = len(embeddings)
    if count == 0:
        return []
    frontal = np.cos(np.radians(np.clip(poses[:, 0], -89, 89))) * np.cos(np.radians(np.clip(poses[:, 1], -89, 89)))
    chosen = [int(np.argmax(quality * frontal**2))]
    pose_distance = np.linalg.norm(poses[:, None, :2] - poses[None, :, :2], axis=2) / _POSE_SCALE
    look_distance = 2.0 * (1.0 - embeddings @ embeddings.T)
    distance = pose_distance + look_distance
    while len(chosen) < min(limit, count):
        nearest = distance[:, chosen].min(axis=1)
        gain = np.where(nearest > _DUPLICATE, nearest * np.sqrt(quality), -1.0)
        gain[chosen] = -1.0
        best = int(np.argmax(gain))
        if gain[best] <= 0:
            break
        chosen.append(best)
    return chosen


def large_portraits(regions: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """The reference portraits larger than the 384 px ones, from square crops at the photos' own resolution:
    one common side (the median crop's, at most LARGE_SIDE), taken by the references whose photos reach it
    (never upscaled), and their indices among the references; None when that side is no larger than 384 px."""
    sides = np.array([len(region) for region in regions])
    side = int(min(LARGE_SIDE, np.median(sides))) // LARGE_STEP * LARGE_STEP
    if side <= PORTRAIT_SIZE:
        return None
    chosen = np.flatnonzero(sides >= side).astype(np.int32)
    images = [cv2.resize(regions[i], (side, side), interpolation=cv2.INTER_AREA) for i in chosen]
    return np.stack(images), chosen
