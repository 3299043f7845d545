"""The engines' interface (`Engine`: faces and pets alike) and the face engine: detect, align and embed, with one
interface whatever the backend."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from ..cache import BoundedCache
from .align import align_face, portrait
from .face import Boxed, Face
from .quality import Quality, measure
from .runtime import thread_budget

#: Longest side an image is detected at; larger images are shrunk for detection only, and the faces are
#: mapped back and aligned from the full-resolution pixels.
DETECT_SIZE = 640

#: Faces embedded per recognizer call; bounds memory for very large batches.
EMBED_CHUNK = 64

#: Images detected concurrently: onnxruntime releases the GIL, and two small detector runs side by side use
#: the cores better than one run split across them (measured: detection 21% faster on 2 cores).
DETECT_WORKERS = max(1, min(4, thread_budget() or os.cpu_count() or 1))

#: Profiles from another engine kept re-embedded in this engine's space; each retrain is a new entry, so the
#: oldest go (re-embedding one costs one recognizer batch of at most 50 crops).
REEMBEDDED_PROFILES = 64


@dataclass(frozen=True)
class EngineInfo:
    """What a profile records about the engine that embedded it."""

    name: str  # "embedded" or "insightface:<pack>"
    backend: str  # "embedded" | "insightface"
    files: dict  # file name -> sha256
    dim: int
    match_threshold: float
    recognizer_sha256: str

    @property
    def key(self) -> str:
        """Embeddings are comparable exactly when this matches: the recognizer decides the space."""
        return f"{self.backend}:{self.recognizer_sha256[:16]}"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "backend": self.backend,
            "files": dict(self.files),
            "dim": self.dim,
            "match_threshold": self.match_threshold,
            "recognizer_sha256": self.recognizer_sha256,
        }

    @classmethod
    def from_dict(cls, data: dict) -> EngineInfo:
        return cls(
            data["name"],
            data["backend"],
            dict(data["files"]),
            int(data["dim"]),
            float(data["match_threshold"]),
            data["recognizer_sha256"],
        )


class Engine(Protocol):
    """What training, scoring and re-embedding use of an engine, whatever its subjects are: `FaceEngine` finds
    faces, `pets.engine.PetEngine` cats and dogs. What differs by kind in a profile (detection, embedding, a
    subject's quality, its portrait) comes from here; the training pipeline is one for every kind."""

    info: EngineInfo
    training: threading.Lock  # trainings share the engine: one analyses, the others wait (QUEUING)
    reembedded: BoundedCache  # profiles from another engine, re-embedded in this one's space

    @property
    def name(self) -> str: ...

    @property
    def measures(self) -> str:
        """What a similarity from this engine means, in the words reports use."""
        ...

    def detect(self, image: np.ndarray) -> list[Boxed]:
        """The subjects in an RGB uint8 image, in its coordinates, without crops or embeddings yet."""
        ...

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """Unit embeddings `[N, D]` for crops as this engine makes them."""
        ...

    def analyze(self, images: list[np.ndarray]) -> list[list[Boxed]]:
        """Every subject in every image, each with its crop and embedding."""
        ...

    def quality(self, subject: Boxed) -> Quality:
        """How usable an analysed subject's crop is as a reference (the pose only where there are landmarks)."""
        ...

    def portrait(self, image: np.ndarray, subject: Boxed) -> np.ndarray:
        """The reference portrait closed models are given: the subject with some surroundings."""
        ...


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB image, at the size given."""
        ...


class Recognizer(Protocol):
    @property
    def dim(self) -> int: ...

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """Raw vectors `[N, dim]` for N×112×112×3 aligned crops."""
        ...


#: What a face engine's similarities mean (scores and reports say it).
FACE_MEASURES = "face identity similarity (ArcFace)"


@dataclass
class Models:
    """What a backend loads: its two networks, their files' digests, and its same-person threshold."""

    detector: Detector
    recognizer: Recognizer
    digests: dict  # file name -> sha256
    recognizer_file: str
    match_threshold: float


class FaceEngine(Engine):
    """A detector and a recognizer loaded once; callers get faces with aligned crops and unit embeddings.

    It owns what lives as long as it does: the detection thread pool, the lock that lets one training analyse
    at a time, and the profiles from other engines re-embedded in its space. `close()` lets them go (a closed
    engine still works: it starts a new pool when next used).
    """

    def __init__(self, name: str, backend: str, models: Models):
        self.info = EngineInfo(
            name,
            backend,
            dict(models.digests),
            int(models.recognizer.dim),
            float(models.match_threshold),
            models.digests[models.recognizer_file],
        )
        self.detector = models.detector
        self.recognizer = models.recognizer
        self.training = threading.Lock()  # trainings share the engine: one analyses, the others wait (QUEUING)
        self.reembedded = BoundedCache(REEMBEDDED_PROFILES)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def close(self) -> None:
        """Stop the detection threads and forget re-embedded profiles."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
        self.reembedded.clear()

    def _detect_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(DETECT_WORKERS, thread_name_prefix="face-detect")
            return self._pool

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def measures(self) -> str:
        return FACE_MEASURES

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image, in its own coordinates, found at a bounded resolution."""
        height, width = image.shape[:2]
        scale = min(1.0, DETECT_SIZE / max(height, width))
        if scale == 1.0:
            return self.detector.detect(image)
        return [face.scaled(1.0 / scale) for face in self.detector.detect(shrink(image, scale))]

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """L2-normalised embeddings `[N, D]` for aligned 112×112 RGB crops, in batches."""
        crops = np.asarray(crops, dtype=np.uint8)
        if len(crops) == 0:
            return np.zeros((0, self.info.dim), np.float32)
        vectors = np.concatenate(
            [self.recognizer.embed(crops[i : i + EMBED_CHUNK]) for i in range(0, len(crops), EMBED_CHUNK)]
        )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)

    def find(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Every face in every image, detected side by side; not yet aligned or embedded (see `describe`)."""
        return list(self._detect_pool().map(self.detect, images))

    def analyze(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Detect every face in every image, align each, and embed them all in one batch."""
        detections = self.find(images)
        self.describe(images, detections)
        return detections

    def describe(self, images: list[np.ndarray], detections: list[list[Face]]) -> None:
        """Fill in each face's aligned crop (from its image's pixels) and its embedding, in one recognizer batch."""
        faces = [face for found in detections for face in found]
        for image, found in zip(images, detections):
            for face in found:
                face.crop = align_face(image, face.landmarks)
        if faces:
            for face, vector in zip(faces, self.embed(np.stack([f.crop for f in faces]))):
                face.embedding = vector

    def quality(self, subject: Face) -> Quality:
        return measure(subject.crop, subject.landmarks)

    def portrait(self, image: np.ndarray, subject: Face) -> np.ndarray:
        return portrait(image, subject.landmarks)


def shrink(image: np.ndarray, scale: float) -> np.ndarray:
    """Downscale for detection: halving with a Gaussian (cheap, alias-free), then one linear resize."""
    target = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    while image.shape[1] >= 2 * target[0] and image.shape[0] >= 2 * target[1]:
        image = cv2.pyrDown(image)
    return cv2.resize(image, target, interpolation=cv2.INTER_LINEAR)
