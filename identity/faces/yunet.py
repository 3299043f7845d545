"""The YuNet detector (OpenCV Zoo, 2023mar) run through onnxruntime.

The network takes a 640×640 BGR image with raw 0..255 values and returns, per stride 8/16/32, a class
score, an objectness score, a box (centre offset in cells, log size) and five landmarks per grid cell.
"""

from __future__ import annotations

import cv2
import numpy as np

from .face import Face
from .runtime import create_session

STRIDES = (8, 16, 32)


class YuNetDetector:
    def __init__(self, model: bytes, providers: list[str], score_threshold: float = 0.6, nms_threshold: float = 0.3):
        self.session = create_session(model, providers)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.input_height, self.input_width = (int(d) for d in model_input.shape[2:4])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self._grids = {s: _grid(self.input_width // s, self.input_height // s) for s in STRIDES}

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB image no larger than the network input (the engine bounds it)."""
        height, width = image.shape[:2]
        scale = min(self.input_width / width, self.input_height / height, 1.0)
        resized = (
            image
            if scale == 1.0
            else cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        )
        canvas = np.zeros((self.input_height, self.input_width, 3), np.float32)
        canvas[: resized.shape[0], : resized.shape[1]] = resized[:, :, ::-1]
        outputs = dict(
            zip(self.output_names, self.session.run(None, {self.input_name: canvas.transpose(2, 0, 1)[None]}))
        )
        boxes, landmarks, scores = [], [], []
        for stride in STRIDES:
            cells = self._grids[stride]
            cls = outputs[f"cls_{stride}"][0, :, 0]
            obj = outputs[f"obj_{stride}"][0, :, 0]
            score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
            keep = score >= self.score_threshold
            if not keep.any():
                continue
            cell = cells[keep]
            bbox = outputs[f"bbox_{stride}"][0][keep]
            kps = outputs[f"kps_{stride}"][0][keep].reshape(-1, 5, 2)
            centre = (cell + bbox[:, :2]) * stride
            size = np.exp(bbox[:, 2:4]) * stride
            boxes.append(np.hstack([centre - size / 2, centre + size / 2]))
            landmarks.append((kps + cell[:, None, :]) * stride)
            scores.append(score[keep])
        if not boxes:
            return []
        boxes_all = np.concatenate(boxes)
        landmarks_all = np.concatenate(landmarks)
        scores_all = np.concatenate(scores)
        xywh = np.hstack([boxes_all[:, :2], boxes_all[:, 2:] - boxes_all[:, :2]])
        kept = cv2.dnn.NMSBoxes(xywh.tolist(), scores_all.tolist(), self.score_threshold, self.nms_threshold)
        kept = np.asarray(kept, dtype=int).reshape(-1)
        return [
            Face(
                (boxes_all[i] / scale).astype(np.float32),
                (landmarks_all[i] / scale).astype(np.float32),
                float(scores_all[i]),
            )
            for i in kept
        ]


def _grid(columns: int, rows: int) -> np.ndarray:
    ys, xs = np.mgrid[:rows, :columns]
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
