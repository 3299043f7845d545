"""Which face is whom: one-to-one assignment of faces to the candidate profiles.

Only the profiles passed in are candidates. Each face-profile pair is scored by cosine similarity to the
profile's centroid; the assignment maximises total similarity over pairs that clear the profile's own
threshold (Hungarian algorithm, so two people who look alike are not both given to the better match).
Faces left over are unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .faces import FaceEngine
from .profile import Profile, calibrate, centroid


@dataclass(frozen=True)
class Candidate:
    """A profile as one engine sees it: its centroid and threshold in that engine's embedding space."""

    profile_id: str
    name: str
    centroid: np.ndarray
    threshold: float
    reembedded: bool  # True when the profile was trained with another engine and its crops were re-embedded


def candidate(profile: Profile, engine: FaceEngine) -> Candidate:
    """The profile in the engine's space; a profile from another engine is re-embedded from its stored crops
    (once per profile version: the engine keeps the result)."""
    if profile.engine.key == engine.info.key:
        return Candidate(profile.id, profile.name, profile.centroid, profile.threshold, False)

    def reembed() -> Candidate:
        embeddings = engine.embed(profile.crops)
        calibration = calibrate(embeddings, engine.info.match_threshold)
        return Candidate(profile.id, profile.name, centroid(embeddings), float(calibration["threshold"]), True)

    return engine.reembedded.get_or_make((profile.id, profile.created, profile.engine.key), reembed)


def similarities(embeddings: np.ndarray, candidates: list[Candidate]) -> np.ndarray:
    """`[faces, candidates]` cosine similarities."""
    if len(embeddings) == 0 or not candidates:
        return np.zeros((len(embeddings), len(candidates)), np.float32)
    return np.asarray(embeddings, np.float32) @ np.stack([c.centroid for c in candidates]).T


def assign(similarity: np.ndarray, thresholds: np.ndarray) -> list[int | None]:
    """Per face, the index of its candidate or None; one face per candidate, each above its threshold."""
    faces, count = similarity.shape
    result: list[int | None] = [None] * faces
    if faces == 0 or count == 0:
        return result
    from scipy.optimize import linear_sum_assignment  # here: scipy.optimize takes a second to import

    allowed = similarity >= thresholds[None, :]
    # Allowed pairs weigh their similarity (> 0: thresholds are positive); others weigh nothing, so the solver
    # never prefers a forbidden pair over an allowed one, and forbidden pairs it is forced into are dropped.
    weight = np.where(allowed, np.maximum(similarity, 1e-6), 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    for row, col in zip(rows, cols):
        if allowed[row, col]:
            result[row] = int(col)
    return result
