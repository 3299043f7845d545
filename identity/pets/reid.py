"""The pet re-identification slot: a user-supplied ONNX embedding model in `models/pet_reid/`.

Real pet re-identification models (PetFace baselines, MiewID, MegaDescriptor) are published on model hubs
only, under their own licences; this pack ships none and downloads none. Export one to ONNX and put the file
in the folder: it must take `[N, 3, H, W]` float RGB normalised with the ImageNet mean and standard deviation
(what those models were trained with) and return `[N, D]` embeddings. H and W are read from the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from ..digests import sha256
from ..errors import IdentityError, ModelFilesMissing
from ..faces.recognizer import OnnxRecognizer
from ..paths import models_dir

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
    """An ONNX embedding model on animal crops, run by the recognizer class the face engines use (batches, a
    batch-1 export made batch-capable, the process's thread budget); `embed` returns raw `[N, D]`."""

    def __init__(self, path: Path, providers: list[str] | None = None):
        try:
            model = onnx.load(str(path))
        except Exception as exc:
            raise _unloadable(path, exc) from None
        dims = (
            [
                d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                for d in model.graph.input[0].type.tensor_type.shape.dim
            ]
            if model.graph.input
            else []
        )
        if len(dims) != 4 or not all(isinstance(v, int) for v in dims[2:]):
            raise ModelFilesMissing(
                f"{path.name} must take [N, 3, H, W] images with a fixed H and W (it takes {dims}); "
                "export it with a fixed input size"
            )
        try:
            self.recognizer = OnnxRecognizer(model, providers or ["CPUExecutionProvider"], _MEAN, _STD)
        except IdentityError:
            raise
        except Exception as exc:
            raise _unloadable(path, exc) from None
        self.name = path.name
        self.sha256 = sha256(path)
        self.dim = self.recognizer.dim

    def embed(self, crops: np.ndarray) -> np.ndarray:
        return self.recognizer.embed(crops)


def _unloadable(path: Path, exc: Exception) -> ModelFilesMissing:
    return ModelFilesMissing(
        f"{path.name} in {path.parent} is not a loadable ONNX model "
        f"({(str(exc).strip().splitlines() or [type(exc).__name__])[-1][:160]}); "
        "replace it with an exported re-identification model or remove it"
    )
