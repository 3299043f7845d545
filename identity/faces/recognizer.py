"""One ONNX recognizer class for every engine: aligned crops in, raw identity vectors out, in batches."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import onnx

from .runtime import batchable, create_session

log = logging.getLogger(__name__)


class OnnxRecognizer:
    """Runs an ArcFace-style network on 112×112 RGB crops, `(pixel - mean) / std`.

    The network is made batch-capable when its file fixes batch 1; the rewrite is trusted only after a
    two-face batch reproduces two single-face runs, otherwise faces run one at a time.
    """

    def __init__(self, model: onnx.ModelProto, providers: list[str], mean: float, std: float):
        self.mean = float(mean)
        self.std = float(std)
        self.session = create_session(batchable(model), providers)
        self.input_name = self.session.get_inputs()[0].name
        self.input_size = int(self.session.get_inputs()[0].shape[-1])
        self.batched = self._batch_reproduces_singles()
        if not self.batched:
            log.info("recognizer %s cannot run batches; faces will run one at a time", model.graph.name)
            self.session = create_session(model.SerializeToString(), providers)
        self.dim = int(self._run(np.zeros((1, self.input_size, self.input_size, 3), np.uint8)).shape[-1])

    def _blob(self, crops: np.ndarray) -> np.ndarray:
        blob = (crops.astype(np.float32) - self.mean) / self.std
        return np.ascontiguousarray(blob.transpose(0, 3, 1, 2))

    def _run(self, crops: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: self._blob(crops)})[0].reshape(len(crops), -1)

    def _batch_reproduces_singles(self) -> bool:
        rng = np.random.default_rng(0)
        crops = rng.integers(0, 256, (2, self.input_size, self.input_size, 3), dtype=np.uint8)
        try:
            batch = self._run(crops)
        except Exception:  # onnxruntime rejects the rewritten graph at run time: keep batch 1
            return False
        singles = np.concatenate([self._run(crops[i : i + 1]) for i in range(2)])
        return batch.shape == singles.shape and np.allclose(batch, singles, rtol=1e-3, atol=1e-3)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """Raw (not normalised) vectors for `N×S×S×3` uint8 RGB crops."""
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        if crops.shape[1] != self.input_size:
            crops = np.stack([cv2.resize(c, (self.input_size, self.input_size)) for c in crops])
        if self.batched:
            return self._run(crops).astype(np.float32)
        return np.concatenate([self._run(crops[i : i + 1]) for i in range(len(crops))]).astype(np.float32)
