"""insightface model packs: a folder holding a detector ONNX (SCRFD/RetinaFace) and an ArcFace recognizer ONNX.

`antelopev2`, `buffalo_l` and folders of the same form. Only detection and recognition run: the pack's
landmark, gender/age and swapper models are never loaded. The detector runs through `insightface.model_zoo`;
the recognizer through our batch-capable session, with insightface's rule for its input normalisation.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx

from ..errors import ModelFilesMissing
from .engine import Models
from .face import Face
from .recognizer import OnnxRecognizer
from .runtime import check_provider, session_options

#: Cosine similarity above which two ArcFace embeddings are taken for one person.
MATCH_THRESHOLD = 0.35

#: Files in insightface packs that are neither detectors nor recognizers.
_EXTRAS = ("1k3d68", "2d106det", "genderage", "inswapper", "landmark", "attribute")


class SCRFDDetector:
    """insightface's SCRFD/RetinaFace network on a canvas padded to multiples of 32, with no resize of its own.

    The engine already bounded the image; `detect()` in insightface would resize it once more into a fixed
    canvas. `forward()` (the raw network pass, in insightface 0.7 and 2.x alike) plus its NMS skip that.
    """

    def __init__(self, model, score_threshold: float = 0.5):
        self.model = model
        self.model.prepare(0, input_size=(640, 640), det_thresh=score_threshold)
        self.score_threshold = score_threshold
        if not getattr(model, "use_kps", False):
            raise ModelFilesMissing(f"{model.model_file} gives no facial landmarks; use a detector with 5 keypoints (SCRFD *_kps)")

    def detect(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        canvas = np.zeros((-(-height // 32) * 32, -(-width // 32) * 32, 3), np.uint8)
        canvas[:height, :width] = image[:, :, ::-1]  # insightface networks take BGR
        scores, boxes, landmarks = self.model.forward(canvas, self.score_threshold)
        scores = np.vstack(scores).ravel()
        if scores.size == 0:
            return []
        order = np.argsort(-scores, kind="stable")
        detections = np.hstack([np.vstack(boxes), scores[:, None]]).astype(np.float32)[order]
        landmarks = np.vstack(landmarks)[order]
        keep = self.model.nms(detections)
        return [Face(detections[i, :4].copy(), landmarks[i].astype(np.float32), float(detections[i, 4])) for i in keep]


def is_pack(folder: Path) -> bool:
    try:
        pack_files(folder)
        return True
    except ModelFilesMissing:
        return False


def pack_files(folder: Path) -> tuple[Path, Path]:
    """(detector, recognizer) files of a pack, by name first; model_zoo confirms the tasks on load."""
    if not folder.is_dir():
        raise ModelFilesMissing(f"insightface pack folder {folder} does not exist")
    files = sorted(p for p in folder.glob("*.onnx") if not any(extra in p.stem for extra in _EXTRAS))
    detectors = [p for p in files if any(tag in p.stem for tag in ("det", "scrfd", "retinaface"))]
    recognizers = [p for p in files if p not in detectors]
    if len(detectors) != 1 or len(recognizers) != 1:
        raise ModelFilesMissing(
            f"{folder} is not a usable insightface pack: it needs exactly one detector ONNX (det_*/scrfd_*) and "
            f"one recognizer ONNX (e.g. w600k_r50.onnx, glintr100.onnx); found {[p.name for p in files] or 'none'}. "
            "Put antelopev2 or buffalo_l in models/insightface/models/<pack>/"
        )
    return detectors[0], recognizers[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _arcface_normalization(model: onnx.ModelProto) -> tuple[float, float]:
    """(mean, std) of an ArcFace export: MXNet exports subtract and scale inside the graph, others expect ours."""
    names = [node.name for node in model.graph.node[:8]]
    inside = any(n.startswith(("Sub", "_minus")) for n in names) and any(n.startswith(("Mul", "_mul")) for n in names)
    return (0.0, 1.0) if inside else (127.5, 127.5)


def load(folder: Path, providers: list[str]):
    """The detector and recognizer of a pack folder."""
    from insightface import model_zoo  # imported here: only pack users pay for it

    detector_path, recognizer_path = pack_files(folder)
    detector_model = model_zoo.get_model(str(detector_path), providers=providers, sess_options=session_options())
    if getattr(detector_model, "taskname", None) != "detection":
        raise ModelFilesMissing(f"{detector_path} is not a face detector; put an SCRFD/RetinaFace ONNX in {folder}")
    check_provider(detector_model.session, providers)
    if getattr(detector_model, "static_shape_sessions", False):
        # insightface 2.x builds one more session per input size; images of many sizes would pile them up.
        detector_model.static_shape_sessions = False
        detector_model._reset_resolution_session_pool()
    recognizer_onnx = onnx.load(str(recognizer_path))
    mean, std = _arcface_normalization(recognizer_onnx)
    recognizer = OnnxRecognizer(recognizer_onnx, providers, mean, std)
    digests = {detector_path.name: _sha256(detector_path), recognizer_path.name: _sha256(recognizer_path)}
    return Models(SCRFDDetector(detector_model), recognizer, digests, recognizer_path.name, MATCH_THRESHOLD)
