"""The pet re-identification slot: a user-supplied ONNX embedding model in `models/pet_reid/`.

Real pet re-identification models (PetFace baselines, MiewID, MegaDescriptor) are published on model hubs
only, under their own licences; this pack ships none and downloads none. Export one to ONNX and put the file
in the folder: it must take `[N, 3, H, W]` float RGB normalised with the ImageNet mean and standard deviation
(what those models were trained with) and return `[N, D]` embeddings. H and W are read from the model.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime

from ..errors import ModelFilesMissing
from ..paths import models_dir
from ..weights import sha256

_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def reid_dir() -> Path:
    return models_dir() / "pet_reid"


def find_reid(folder: Path | None = None) -> Path | None:
    """The ONNX file in the slot (the first by name), or None when the user has put none there."""
    folder = folder or reid_dir()
    files = sorted(folder.glob("*.onnx")) if folder.is_dir() else []
    return files[0] if files else None


class ReidModel:
    """An ONNX embedding model on animal crops; `embed` returns raw `[N, D]`."""

    def __init__(self, path: Path, providers: list[str] | None = None):
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelFilesMissing(f"{path.name} in {path.parent} is not a loadable ONNX model ({str(exc).strip().splitlines()[-1][:160]}); "
                                    "replace it with an exported re-identification model or remove it") from None
        shape = self.session.get_inputs()[0].shape
        if len(shape) != 4 or not all(isinstance(v, int) for v in shape[2:]):
            raise ModelFilesMissing(f"{path.name} must take [N, 3, H, W] images with a fixed H and W (it takes {shape}); "
                                    "export it with a fixed input size")
        self.size = (int(shape[3]), int(shape[2]))
        self.name = path.name
        self.sha256 = sha256(path)
        self.dim = int(self.embed(np.zeros((1, 8, 8, 3), np.uint8)).shape[1])

    def embed(self, crops: np.ndarray) -> np.ndarray:
        pixels = np.stack([cv2.resize(np.ascontiguousarray(c), self.size, interpolation=cv2.INTER_AREA) for c in crops])
        batch = ((pixels.astype(np.float32) - _MEAN) / _STD).transpose(0, 3, 1, 2)
        output = self.session.run(None, {self.session.get_inputs()[0].name: batch})[0]
        return np.asarray(output, np.float32).reshape(len(crops), -1)
