"""insightface model packs: a folder holding a detector ONNX (SCRFD/RetinaFace) and an ArcFace recognizer ONNX.

`antelopev2`, `buffalo_l` and folders of the same form. Only detection and recognition run: the pack's
landmark, gender/age and swapper models are never loaded. The detector runs through `insightface.model_zoo`;
the recognizer through our batch-capable session, with insightface's rule for its input normalisation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from ..cache import BoundedCache
from ..digests import sha256
from ..errors import ModelFilesMissing
from .engine import Models
from .face import Face
from .onnx_signature import signature
from .recognizer import OnnxRecognizer
from .runtime import check_provider, session_options

#: Cosine similarity above which two ArcFace embeddings are taken for one person. Not a published figure:
#: set between the strangers' and the held-out photos' similarities on the fixtures (tests/test_matching.py
#: fails if either side crosses it); each profile's calibration may raise it (`profile.calibration`).
#: Operating point: insightface publishes accuracies, not thresholds. Its model zoo (deepinsight/insightface,
#: model_zoo/README.md) gives buffalo_l's recognizer (ResNet50@WebFace600K) a true-accept rate of 97.25 % at a
#: false-accept rate of 1e-4 on IJB-C ("IJB-C(E4)") and 91.25 % at 1e-6 on its multi-racial set (MR-ALL), each
#: at whatever threshold reaches that rate on that set, which it does not state. No source gives the false-accept
#: rate of 0.35 itself, for buffalo_l or for any other pack (the tests' small pack is not buffalo_l). Look-alikes
#: among the people a user knows are refused by the margin rule (`identity.matching`; bench/bench_lookalikes.py).
MATCH_THRESHOLD = 0.35

#: SCRFD's score threshold, insightface's own default for `FaceAnalysis.prepare(det_thresh=0.5)`.
DETECT_THRESHOLD = 0.5

#: Outputs of a detector graph: SCRFD/RetinaFace give scores, boxes (and keypoints) per stride, so at least 5
#: (insightface's model router: `len(outputs) >= 5`; SCRFD *_kps has 9).
DETECTOR_OUTPUTS = 5

#: Square inputs that insightface's router gives to other tasks: 192 px the landmark models (2d106det,
#: 1k3d68), 96 px the gender/age model; a 128 px input with two inputs is inswapper.
LANDMARK_SIDE, ATTRIBUTE_SIDE, SWAPPER_SIDE = 192, 96, 128

#: ArcFace recognizers take square crops of at least 112 px in multiples of 16 (the router's rule).
RECOGNIZER_MIN_SIDE, RECOGNIZER_SIDE_MULTIPLE = 112, 16


class SCRFDDetector:
    """insightface's SCRFD/RetinaFace network on a canvas padded to multiples of 32, with no resize of its own.

    The engine already bounded the image; `detect()` in insightface would resize it once more into a fixed
    canvas. `forward()` (the raw network pass, in insightface 0.7 and 2.x alike) plus its NMS skip that.
    """

    def __init__(self, model, score_threshold: float = DETECT_THRESHOLD):
        self.model = model
        self.model.prepare(0, input_size=(640, 640), det_thresh=score_threshold)
        self.score_threshold = score_threshold
        if not getattr(model, "use_kps", False):
            raise ModelFilesMissing(
                f"{model.model_file} gives no facial landmarks; use a detector with 5 keypoints (SCRFD *_kps)"
            )

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


#: Each ONNX file's role by (path, size, mtime): telling it parses the graph, and every engine look-up asks.
ROLES: BoundedCache[tuple[str | None]] = BoundedCache(256)


def role(path: Path) -> str | None:
    """ "detector", "recognizer", another insightface task ("landmark", "attribute", "swapper"), or None when
    the file is no model: told from its graph as insightface's model router tells it, whatever its name."""
    info = Path(path).stat()
    return ROLES.get_or_make((str(path), info.st_size, info.st_mtime_ns), lambda: (_role(path),))[0]


def _role(path: Path) -> str | None:
    found = signature(path)
    if found is None:
        return None
    shape = found.inputs[0]
    if len(found.outputs) >= DETECTOR_OUTPUTS:
        return "detector"
    if len(shape) != 4 or shape[2] is None or shape[2] != shape[3]:
        return None
    side = shape[2]
    if side == LANDMARK_SIDE:
        return "landmark"
    if side == ATTRIBUTE_SIDE:
        return "attribute"
    if len(found.inputs) == 2 and side == SWAPPER_SIDE:
        return "swapper"
    if side >= RECOGNIZER_MIN_SIDE and side % RECOGNIZER_SIDE_MULTIPLE == 0:
        return "recognizer"
    return None


def is_pack(folder: Path) -> bool:
    try:
        pack_files(folder)
        return True
    except ModelFilesMissing:
        return False


def pack_files(folder: Path) -> tuple[Path, Path]:
    """(detector, recognizer) files of a pack, each recognised by its graph; other models in it are left alone."""
    if not folder.is_dir():
        raise ModelFilesMissing(f"insightface pack folder {folder} does not exist")
    roles = {path: role(path) for path in sorted(folder.glob("*.onnx"))}
    detectors = [p for p, r in roles.items() if r == "detector"]
    recognizers = [p for p, r in roles.items() if r == "recognizer"]
    if len(detectors) != 1 or len(recognizers) != 1:
        found = ", ".join(f"{p.name} ({r or 'not a model'})" for p, r in roles.items()) or "no ONNX file"
        raise ModelFilesMissing(
            f"{folder} is not a usable insightface pack: it needs exactly one face detector ONNX (SCRFD/RetinaFace) "
            f"and one ArcFace recognizer ONNX (e.g. w600k_r50.onnx, glintr100.onnx); found {found}. "
            "Put antelopev2 or buffalo_l in models/insightface/models/<pack>/"
        )
    return detectors[0], recognizers[0]


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
    digests = {detector_path.name: sha256(detector_path), recognizer_path.name: sha256(recognizer_path)}
    return Models(SCRFDDetector(detector_model), recognizer, digests, recognizer_path.name, MATCH_THRESHOLD)
