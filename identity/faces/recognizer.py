"""One ONNX embedding class for every engine: crops in, raw vectors out, in batches (face recognizers, and a
pet re-identification model in `models/pet_reid/`)."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import onnx

from .runtime import batchable, create_session, without_denormal_weights

log = logging.getLogger(__name__)


class OnnxRecognizer:
    """Runs an embedding network that takes `[N, 3, H, W]` RGB, `(pixel - mean) / std` (scalars, or one per
    channel): ArcFace-style recognizers on 112×112 face crops, re-identification models at their own size.

    The network is made batch-capable when its file fixes batch 1 (what an export does unless told otherwise);
    the rewrite is trusted only after a two-crop batch reproduces two single-crop runs, otherwise crops run one
    at a time. Its subnormal weights are zeroed first (`without_denormal_weights`: same outputs; ~3x faster
    on CPUs that are slow with subnormals).
    """

    def __init__(self, model: onnx.ModelProto, providers: list[str], mean, std):
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        model = without_denormal_weights(model)  # the caller's copy: each one loads the file for us alone
        self.session = create_session(batchable(model), providers)
        self.input_name = self.session.get_inputs()[0].name
        height, width = (int(side) for side in self.session.get_inputs()[0].shape[2:])
        self.input_size = (width, height)
        self.batched = self._batch_reproduces_singles()
        if not self.batched:
            log.info("recognizer %s cannot run batches; crops will run one at a time", model.graph.name)
            self.session = create_session(model.SerializeToString(), providers)
        self.dim = int(self._run(np.zeros((1, height, width, 3), np.uint8)).shape[-1])

    def _blob(self, crops: np.ndarray) -> np.ndarray:
        blob = (crops.astype(np.float32) - self.mean) / self.std
        return np.ascontiguousarray(blob.transpose(0, 3, 1, 2))

    def _run(self, crops: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: self._blob(crops)})[0].reshape(len(crops), -1)

    def _batch_reproduces_singles(self) -> bool:
        rng = np.random.default_rng(0)
        crops = rng.integers(0, 256, (2, self.input_size[1], self.input_size[0], 3), dtype=np.uint8)
        try:
            batch = self._run(crops)
        except Exception:  # onnxruntime rejects the rewritten graph at run time: keep batch 1
            return False
        singles = np.concatenate([self._run(crops[i : i + 1]) for i in range(2)])
        return batch.shape == singles.shape and np.allclose(batch, singles, rtol=1e-3, atol=1e-3)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """Raw (not normalised) vectors for `N×H×W×3` uint8 RGB crops (resized to the network's size if needed)."""
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        if crops.shape[1:3] != self.input_size[::-1]:
            crops = np.stack(
                [cv2.resize(np.ascontiguousarray(c), self.input_size, interpolation=cv2.INTER_AREA) for c in crops]
            )
        if self.batched:
            return self._run(crops).astype(np.float32)
        return np.concatenate([self._run(crops[i : i + 1]) for i in range(len(crops))]).astype(np.float32)
