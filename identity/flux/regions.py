"""Where each subject is in the image: one region per profile, from masks or from the faces of an image to edit."""

from __future__ import annotations

import numpy as np

from ..errors import IdentityError
from ..profile import Profile
from ..scoring import ImageScore

#: A face box is grown this much about its centre to cover the head and hair the identity shapes.
HEAD_SCALE = 2.0


def head_box(bbox, width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = bbox
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, HEAD_SCALE * max(x2 - x1, y2 - y1) / 2
    return (
        max(0, int(cx - half)),
        max(0, int(cy - half)),
        min(width, int(np.ceil(cx + half))),
        min(height, int(np.ceil(cy + half))),
    )


def face_regions(scored: ImageScore, profiles: list[Profile]) -> list[np.ndarray]:
    """Per profile, a `[H, W]` float mask over its head in the scored image; an error names anyone not found."""
    found = {face.profile_id: face for face in scored.faces if face.profile_id is not None}
    missing = [p.name for p in profiles if p.id not in found]
    if missing:
        raise IdentityError(
            f"not found in the image: {', '.join(missing)} ({len(scored.faces)} faces detected); "
            "connect masks instead, one per profile"
        )
    regions = []
    for profile in profiles:
        x1, y1, x2, y2 = head_box(found[profile.id].bbox, scored.width, scored.height)
        region = np.zeros((scored.height, scored.width), np.float32)
        region[y1:y2, x1:x2] = 1.0
        regions.append(region)
    return regions


def subject_regions(
    profiles: list[Profile], masks: list[np.ndarray] | None = None, scored: ImageScore | None = None
) -> list[np.ndarray | None]:
    """Per profile, where it acts: its mask, or its head in a scored image, or (one profile alone) everywhere."""
    if masks is not None and scored is not None:
        raise IdentityError("connect either masks or an image to place the people, not both")
    if masks is not None:
        if len(masks) != len(profiles):
            raise IdentityError(
                f"{len(profiles)} profiles need {len(profiles)} masks (one each, in the profiles' "
                f"order); got {len(masks)}"
            )
        return list(masks)
    if scored is not None:
        return face_regions(scored, profiles)
    if len(profiles) > 1:
        raise IdentityError(
            f"{len(profiles)} profiles need a place each, or their identities mix: connect masks "
            "(one per profile, in order) or the image whose faces show where each person is"
        )
    return [None]
