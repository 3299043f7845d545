"""Verification of every output: are the requested people (and pets) there, and do they look like themselves?

Faces in the output are matched to the subjects one-to-one (the same assignment as ArcFace Score) and each
subject must clear its own profile's threshold, nearer to it than to every other known profile (the cohort) by its
margin: a look-alike of someone else in the store does not pass. Outputs rank by their weakest subject, so an image where one
person is perfect and another is a stranger ranks low. A cat or dog is checked for what can be measured: that an
animal of its species is there, and how alike it looks (appearance, not identity, unless a re-identification
model is installed); `Check.checked` says so per subject.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..faces import FaceEngine
from ..faces.quality import pose
from ..profile import Profile, ProfileStore
from ..scoring import nearest_people, score_images, weakest


@dataclass
class Check:
    scores: dict[str, float]  # subject id -> similarity of the face (or animal) assigned to them (0 when absent)
    faces: int
    checked: dict[str, str] = field(default_factory=dict)  # subject id -> what was checked, in words
    nearest: dict[str, str] = field(default_factory=dict)  # subject id -> the next known person, or a refusal

    @property
    def weakest(self) -> float:
        return weakest(self.scores)

    @property
    def passed(self) -> bool:
        """Every subject was assigned a face, which happens only above that profile's own threshold."""
        return all(score > 0.0 for score in self.scores.values())


def check_outputs(
    images: list[np.ndarray],
    subjects: list[Profile],
    engine: FaceEngine,
    pet_engine: Callable | None = None,
    cohort: ProfileStore | None = None,
) -> list[Check]:
    """`cohort`: the store whose other profiles each subject is told apart from (`matching.known`); None checks
    each subject's threshold alone."""
    if not subjects:
        return [Check({}, 0) for _ in images]
    results = score_images(
        [(f"output {i + 1}", image) for i, image in enumerate(images)],
        subjects,
        engine,
        pet_engine=pet_engine,
        cohort=cohort,
    )
    ids = [p.id for p in subjects]
    return [
        Check(
            result.subject_scores(ids),
            len(result.faces),
            {p.id: _checked(p, result) for p in subjects},
            nearest_people(result),
        )
        for result in results
    ]


def _checked(subject: Profile, result) -> str:
    measures = result.measures[subject.kind]
    if subject.kind == "person":
        return measures
    present = any(f.kind == subject.kind for f in result.faces)
    return f"{subject.kind} present: {'yes' if present else 'no'} (animal detector); {measures}"


def input_poses(image: np.ndarray, subjects: list[Profile], engine: FaceEngine) -> dict[str, np.ndarray]:
    """Per subject found in an input image, the (yaw, pitch, roll) of their face there."""
    people = [s for s in subjects if s.kind == "person"]  # animals have no pose to match
    if not people:
        return {}
    result = score_images([("input", image)], people, engine)[0]
    return {face.profile_id: np.array(pose(face.landmarks)) for face in result.faces if face.profile_id is not None}
