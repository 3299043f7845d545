"""Photo-quality measurements of one face: pose from its landmarks; sharpness and exposure of its aligned crop.
An animal's quality (`pets.engine`) has the same exposure measures and no pose.

Cheap, engine-independent signals that say *why* a photo makes a poor reference, so that a rejected photo
comes with a reason the user can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: The centre of the aligned crop (eyes to chin, cheek to cheek), which the warp never fills with border.
_INNER = (slice(28, 104), slice(24, 88))

#: Depth of the nose tip in front of the eyes, as a fraction of the distance between the eyes.
_NOSE_DEPTH = 0.45


@dataclass(frozen=True)
class Quality:
    yaw: float | None  # degrees, 0 = facing the camera; None (as pitch and roll) for an animal: no landmarks
    pitch: float | None  # degrees, 0 = level
    roll: float | None  # degrees, in-plane tilt
    sharpness: float  # variance of the Laplacian of the aligned crop
    brightness: float  # mean luminance of the inner face, 0..255
    highlights: float  # fraction of inner-face pixels blown out to white

    @property
    def pose(self) -> np.ndarray | None:
        return None if self.yaw is None else np.array([self.yaw, self.pitch, self.roll], np.float32)

    @property
    def exposure(self) -> np.ndarray:
        return np.array([self.sharpness, self.brightness, self.highlights], np.float32)


def pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees, estimated from the five landmarks alone."""
    left_eye, right_eye, nose, left_mouth, right_mouth = np.asarray(landmarks, dtype=np.float64)
    eye_axis = right_eye - left_eye
    eye_span = max(float(np.linalg.norm(eye_axis)), 1e-6)
    roll = float(np.degrees(np.arctan2(eye_axis[1], eye_axis[0])))
    along = float(np.dot(nose - left_eye, eye_axis)) / eye_span**2  # 0.5 when the nose sits between the eyes
    yaw = float(np.degrees(np.arctan((along - 0.5) / _NOSE_DEPTH)))
    normal = np.array([-eye_axis[1], eye_axis[0]]) / eye_span
    eyes_mid = (left_eye + right_eye) / 2
    mouth_mid = (left_mouth + right_mouth) / 2
    mouth_drop = max(float(np.dot(mouth_mid - eyes_mid, normal)), 1e-6)
    nose_drop = float(np.dot(nose - eyes_mid, normal)) / mouth_drop  # about 0.55 for a level face
    pitch = float(np.degrees(np.arctan((nose_drop - 0.55) / _NOSE_DEPTH)))
    return yaw, pitch, roll


def measure(crop: np.ndarray, landmarks: np.ndarray) -> Quality:
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    inner = grey[_INNER]
    sharpness = float(cv2.Laplacian(inner, cv2.CV_64F).var())
    highlights = float(np.mean(inner >= 250))
    return Quality(*pose(landmarks), sharpness, float(inner.mean()), highlights)
