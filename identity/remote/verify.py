"""Verification of every output: are the requested people there, and do they look like themselves?

Faces in the output are matched to the subjects one-to-one (the same assignment as ArcFace Score) and each
subject must clear its own profile's threshold. Outputs rank by their weakest subject, so an image where one
person is perfect and another is a stranger ranks low.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..faces import FaceEngine
from ..faces.quality import pose
from ..profile import Profile
from ..scoring import score_images, weakest


@dataclass
class Check:
    scores: dict[str, float]  # subject id -> similarity of the face assigned to them (0 when absent)
    faces: int

    @property
    def weakest(self) -> float:
        return weakest(self.scores)

    @property
    def passed(self) -> bool:
        """Every subject was assigned a face, which happens only above that profile's own threshold."""
        return all(score > 0.0 for score in self.scores.values())


def check_outputs(images: list[np.ndarray], subjects: list[Profile], engine: FaceEngine) -> list[Check]:
    if not subjects:
        return [Check({}, 0) for _ in images]
    results = score_images([(f"output {i + 1}", image) for i, image in enumerate(images)], subjects, engine)
    ids = [p.id for p in subjects]
    return [Check(result.subject_scores(ids), len(result.faces)) for result in results]


def input_poses(image: np.ndarray, subjects: list[Profile], engine: FaceEngine) -> dict[str, np.ndarray]:
    """Per subject found in an input image, the (yaw, pitch, roll) of their face there."""
    result = score_images([("input", image)], subjects, engine)[0]
    return {face.profile_id: np.array(pose(face.landmarks)) for face in result.faces if face.profile_id is not None}
