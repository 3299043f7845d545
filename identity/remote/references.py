"""Which reference portraits go with a request: per subject, within the model's input-image limit.

The limit is shared: input images first, then the references, split evenly among the subjects (at most
`PER_SUBJECT` each). A profile's portraits are stored best-frontal first and then most-different-next, so the
first few already cover its range of poses and expressions. For an edit, the portraits whose pose is closest
to the subject's face in the input image go first: the model then sees the person as they must appear.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidRequest
from ..profile import Profile

PER_SUBJECT = 4


def shares(subjects: int, budget: int, model_name: str, max_images: int, inputs: int) -> list[int]:
    if subjects and budget < subjects:
        raise InvalidRequest(
            f"{model_name} takes at most {max_images} images per request; {inputs} input image(s) leave {max(budget, 0)} "
            f"for the references of {subjects} people (each needs at least 1): use fewer people or input images"
        )
    if not subjects:
        return []
    base, extra = divmod(budget, subjects)
    return [min(PER_SUBJECT, base + (1 if i < extra else 0)) for i in range(subjects)]


def choose(profile: Profile, count: int, target_pose: np.ndarray | None = None) -> list[int]:
    """Indices into `profile.portraits`."""
    order = list(range(len(profile.portraits)))
    if target_pose is not None:
        poses = profile.pose[profile.reference_photos][:, :2]
        order.sort(key=lambda k: float(np.linalg.norm(poses[k] - target_pose[:2])))
    return order[:count]
