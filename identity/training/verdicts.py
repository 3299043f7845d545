"""Each training photo's verdict, and the quality rules behind "rejected".

Thresholds were set on real photos (the fixture set and insightface's samples): every real photo there
passes, while a strong blur, a face under 48 px, a face turned beyond profile or a near-black exposure fail.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..faces import Face
from ..faces.face import Boxed
from ..faces.quality import Quality
from ..profile.calibration import leave_one_out

MIN_IMAGE_SIDE = 32  # px: below this no face can carry identity
MIN_FACE = 48  # px, shorter side of the face box in the original photo (the aligned crop is 112: ~2x upscaled)
MIN_SHARPNESS = 50.0  # variance of the Laplacian of the aligned crop
MIN_BRIGHTNESS = 45.0  # mean luma of the inner face, 0..255
MAX_BRIGHTNESS = 215.0
MAX_HIGHLIGHTS = 0.30  # fraction of the inner face blown out to white
MAX_YAW = 50.0  # degrees: beyond, one eye is hidden and the 5-point alignment fails
MAX_PITCH = 40.0  # degrees, likewise up or down
#: An outlier's leave-one-out score is this many robust deviations (1.4826 × MAD: the MAD scaled to a normal
#: distribution's standard deviation) below the median: the usual 3-sigma rule, made robust.
_OUTLIER_MADS = 3.0
_OUTLIER_GAP = 0.2  # an outlier also sits this far below the typical photo: tight sets must not shed good photos

ACCEPTED = "accepted"
REJECTED = "rejected"
PENDING = "pending"


@dataclass
class PhotoVerdict:
    """What happened to one training photo; `code` is stable for programs, `reason` is for people."""

    path: str
    verdict: str = REJECTED
    code: str = ""
    reason: str = ""
    face: Boxed | None = field(default=None, repr=False)  # the subject found: a face, or a cat or dog
    quality: Quality | None = field(default=None, repr=False)

    def reject(self, code: str, reason: str) -> None:
        self.verdict, self.code, self.reason = REJECTED, code, reason

    def accept(self, reason: str = "good photo of the subject") -> None:
        self.verdict, self.code, self.reason = ACCEPTED, ACCEPTED, reason

    @property
    def accepted(self) -> bool:
        return self.verdict == ACCEPTED

    def as_dict(self) -> dict:
        """While a job runs, photos not judged yet say "pending" rather than a premature "rejected"."""
        verdict = self.verdict if self.code else PENDING
        return {"path": self.path, "verdict": verdict, "code": self.code, "reason": self.reason}


def quality_problem(face: Face, quality: Quality) -> tuple[str, str] | None:
    """(code, reason) for the first thing that makes this face a poor reference, or None.

    Exposure is judged before sharpness: a dark face also has little contrast, and "too dark" is the fix.
    """
    if face.size < MIN_FACE:
        return "face_too_small", f"face too small ({face.size:.0f} px; needs at least {MIN_FACE} px)"
    if abs(quality.yaw) > MAX_YAW or abs(quality.pitch) > MAX_PITCH:
        return "extreme_pose", (
            f"extreme pose (turned {abs(quality.yaw):.0f}°, tilted {abs(quality.pitch):.0f}°; "
            f"needs within {MAX_YAW:.0f}° / {MAX_PITCH:.0f}°)"
        )
    if quality.brightness < MIN_BRIGHTNESS:
        return "too_dark", f"too dark (face brightness {quality.brightness:.0f} of 255)"
    if quality.brightness > MAX_BRIGHTNESS or quality.highlights > MAX_HIGHLIGHTS:
        return "over_exposed", (
            f"over-exposed (face brightness {quality.brightness:.0f} of 255, {quality.highlights:.0%} blown out)"
        )
    if quality.sharpness < MIN_SHARPNESS:
        return "too_blurry", f"too blurry (sharpness {quality.sharpness:.0f}; needs at least {MIN_SHARPNESS:.0f})"
    return None


def drop_outliers(accepted: list[PhotoVerdict], threshold: float) -> None:
    """Reject accepted photos that look unlike the rest: below the engine's threshold, or far below the others."""
    if len(accepted) < 3:
        return
    loo = leave_one_out(np.stack([v.face.embedding for v in accepted]))
    median = float(np.median(loo))
    spread = 1.4826 * float(np.median(np.abs(loo - median)))
    floor = max(threshold, median - max(_OUTLIER_MADS * spread, _OUTLIER_GAP)) if len(accepted) >= 5 else threshold
    for verdict, score in zip(accepted, loo):
        if score < floor:
            verdict.reject(
                "outlier", f"looks unlike the other photos of the subject (similarity {score:.2f} to the rest)"
            )


def nothing_accepted(verdicts: list[PhotoVerdict], advice: str) -> str:
    reasons = Counter(v.reason.split(" (")[0] for v in verdicts if not v.accepted)
    summary = ", ".join(f"{count} × {reason}" for reason, count in reasons.most_common())
    return f"no photo accepted ({summary}); {advice}"
