"""Face alignment: the five landmarks onto the ArcFace 112×112 template, FFHQ faces, head-and-shoulders portraits.

Both recognizers (insightface ArcFace and OpenCV SFace) were trained on this template, so one aligned crop
serves every engine; that is what lets a profile be re-embedded later from its stored crops. PuLID's ID encoder
reads a 512 px face in FFHQ geometry instead, aligned as facexlib aligns it (`ffhq_face`).
"""

from __future__ import annotations

import cv2
import numpy as np

CROP_SIZE = 112
PORTRAIT_SIZE = 384

#: The ArcFace reference points for a 112×112 crop (insightface's `arcface_dst`, a published constant).
TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


#: facexlib's five-point FFHQ template for 512×512 faces (`FaceRestoreHelper.face_template`), PuLID's alignment.
FFHQ_TEMPLATE = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ]
)
FFHQ_SIZE = 512
#: facexlib fills outside the photo with grey (135, 133, 132) in BGR.
FFHQ_BORDER = (132, 133, 135)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping `src` onto `dst` (Umeyama, 1991)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1.0
    rotation = u @ d @ vt
    var_src = (src_c**2).sum() / len(src)
    scale = float(np.trace(np.diag(s) @ d) / var_src) if var_src > 0 else 1.0
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The aligned `size`×`size` crop (RGB uint8) for one face."""
    matrix = similarity_transform(landmarks, TEMPLATE * (size / CROP_SIZE))
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def ffhq_face(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ-aligned 512×512 face (RGB uint8) as facexlib makes it: a least-median-of-squares similarity fit
    of the five landmarks (OpenCV's, as facexlib calls it), bilinear, grey outside the photo."""
    matrix = cv2.estimateAffinePartial2D(np.asarray(landmarks, np.float64), FFHQ_TEMPLATE, method=cv2.LMEDS)[0]
    return cv2.warpAffine(
        image, matrix, (FFHQ_SIZE, FFHQ_SIZE), borderMode=cv2.BORDER_CONSTANT, borderValue=FFHQ_BORDER
    )


def portrait_box(landmarks: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """A square head-and-shoulders box around a face, kept inside the image (shifted, then shrunk)."""
    eyes = landmarks[:2].mean(axis=0)
    mouth = landmarks[3:].mean(axis=0)
    face_scale = max(float(np.linalg.norm(mouth - eyes)), 1.0)
    side = min(7.0 * face_scale, width, height)
    cx = (eyes[0] + mouth[0]) / 2.0
    cy = eyes[1] + 1.3 * face_scale
    x1 = int(round(min(max(cx - side / 2, 0), width - side)))
    y1 = int(round(min(max(cy - side / 2, 0), height - side)))
    side = int(side)
    return x1, y1, x1 + side, y1 + side


def portrait(image: np.ndarray, landmarks: np.ndarray, size: int | None = PORTRAIT_SIZE) -> np.ndarray:
    """The head-and-shoulders portrait (RGB uint8, `size`×`size`, or at the photo's own resolution with None)
    used as a reference and thumbnail."""
    x1, y1, x2, y2 = portrait_box(landmarks, image.shape[1], image.shape[0])
    region = image[y1:y2, x1:x2]
    if size is None:
        return np.ascontiguousarray(region)
    interpolation = cv2.INTER_AREA if region.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(region, (size, size), interpolation=interpolation)
