"""Scoring images against profiles: every face (and, for cat and dog profiles, every cat and dog), whom it was
assigned to, and how alike it is to each candidate. People are found by face and pets by the animal detector;
each kind is assigned one-to-one among the profiles of that kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .faces import FaceEngine
from .faces.align import CROP_SIZE
from .faces.engine import DETECT_SIZE, FACE_MEASURES
from .images import ImageSource, load_image, load_reduced
from .matching import Candidate, assign, candidate, similarities
from .pets.animal import KINDS
from .profile import Profile

#: Images analysed together: one detection thread-pool map and one recognizer batch each, with a
#: cancellation check and a progress report between batches.
SCORE_BATCH = 16


@dataclass
class FaceScore:
    bbox: tuple[float, float, float, float]
    profile_id: str | None  # the assigned profile, None for unknown
    similarity: float | None  # to the assigned profile
    scores: dict[str, float]  # similarity to every candidate
    landmarks: np.ndarray | None = field(default=None, repr=False)
    kind: str = "person"  # "cat" and "dog" entries are animals, not faces
    measures: str = FACE_MEASURES

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "measures": self.measures,
            "bbox": [round(float(v), 1) for v in self.bbox],
            "profile_id": self.profile_id,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
        }


def weakest(subject_scores: dict[str, float]) -> float:
    """An image's score: its weakest requested subject, so every person must look right (0 if one is absent)."""
    return min(subject_scores.values(), default=0.0)


@dataclass
class ImageScore:
    label: str
    width: int
    height: int
    faces: list[FaceScore] = field(default_factory=list)
    measures: dict[str, str] = field(default_factory=dict)  # per kind scored: what its similarities measure

    def subject_scores(self, profile_ids: list[str]) -> dict[str, float]:
        """Per requested profile, the similarity of the face assigned to it (0 when absent)."""
        found = {f.profile_id: f.similarity for f in self.faces if f.profile_id is not None}
        return {pid: float(found.get(pid, 0.0)) for pid in profile_ids}

    def weakest(self, profile_ids: list[str]) -> float:
        return weakest(self.subject_scores(profile_ids))

    def as_dict(self) -> dict:
        return {"path": self.label, "faces": [f.as_dict() for f in self.faces]}


def rank(results: list[ImageScore], profile_ids: list[str], min_similarity: float = 0.0, top_k: int = 0) -> list[int]:
    """Indices of the images, best first by weakest subject; those below `min_similarity` are dropped."""
    scored = [(r.weakest(profile_ids), i) for i, r in enumerate(results)]
    kept = sorted(((s, i) for s, i in scored if s >= min_similarity), key=lambda si: (-si[0], si[1]))
    return [i for _, i in (kept[:top_k] if top_k > 0 else kept)]


def batch_report(results: list[ImageScore], profiles: list[Profile], order: list[int]) -> dict:
    """JSON-ready: per image its score, per-subject scores, faces and a note when someone is missing."""
    ids = [p.id for p in profiles]
    images = []
    for index, result in enumerate(results):
        subjects = result.subject_scores(ids)
        entry = {
            "index": index,
            "image": result.label,
            "score": round(result.weakest(ids), 4),
            "subjects": {k: round(v, 4) for k, v in subjects.items()},
            "faces": [f.as_dict() for f in result.faces],
        }
        missing = [p.name for p in profiles if subjects[p.id] == 0.0]
        if not result.faces:
            entry["note"] = "no face found" if all(p.kind == "person" for p in profiles) else "no face or animal found"
        elif missing:
            entry["note"] = "not found: " + ", ".join(missing)
        images.append(entry)
    return {
        "profiles": {p.id: p.name for p in profiles},
        "kinds": {p.id: p.kind for p in profiles},
        "ranking": order,
        "images": images,
    }


def badges(scores: list[tuple[float, dict[str, float]]], names: dict[str, str]) -> list[dict]:
    """Per image, what a node shows over it (web/js): its score and each person's, by name; `scores` holds
    (image score, {profile id: score}) in image order."""
    return [
        {"index": index, "score": score, "subjects": {names[k]: v for k, v in subjects.items()}}
        for index, (score, subjects) in enumerate(scores)
    ]


class Scorer:
    """The candidates of a scoring run, per kind: people by face; when a pet profile is asked for, every cat and
    dog by the pet engine, each species assigned among the profiles of its kind. Made once, it scores any number
    of batches (a batch-score worker keeps one)."""

    def __init__(self, profiles: list[Profile], engine: FaceEngine, pet_engine: Callable | None):
        people = [p for p in profiles if p.kind == "person"]
        animals = [p for p in profiles if p.kind != "person"]
        self.engine, self.pets = engine, None
        self.faces_needed = bool(people) or not animals
        if animals:
            if pet_engine is None:
                from .pets.engine import load_pet_engine as pet_engine  # torch loads only when a pet is asked for
            self.pets = pet_engine()
        self.per_kind: dict[str, list[Candidate]] = {"person": [candidate(p, engine) for p in people]}
        if self.pets is not None:
            self.per_kind |= {kind: [candidate(p, self.pets) for p in animals if p.kind == kind] for kind in KINDS}
        self.measures = {
            kind: self.engine.measures if kind == "person" else self.pets.measures for kind in self.per_kind
        }

    def faces(self, arrays: list[np.ndarray]) -> list[list]:
        return self.engine.analyze(arrays) if self.faces_needed else [[] for _ in arrays]

    def animals(self, arrays: list[np.ndarray]) -> list[list]:
        return self.pets.analyze(arrays) if self.pets is not None else [[] for _ in arrays]

    def score(
        self,
        images: list[tuple[str, np.ndarray]],
        check: Callable[[], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[ImageScore]:
        """See `score_images`."""
        results = []
        for start in range(0, len(images), SCORE_BATCH):
            if check is not None:
                check()
            batch = images[start : start + SCORE_BATCH]
            arrays = [image for _, image in batch]
            for (label, image), faces, animals in zip(batch, self.faces(arrays), self.animals(arrays)):
                results.append(self.scored(label, (image.shape[1], image.shape[0]), faces, animals))
            if progress is not None:
                progress(len(results), len(images))
        return results

    def score_files(self, sources: list[tuple[str, ImageSource]]) -> list[ImageScore]:
        """See `score_files`."""
        results = []
        for start in range(0, len(sources), SCORE_BATCH):
            batch = sources[start : start + SCORE_BATCH]
            reduced = [load_reduced(source, DETECT_SIZE) for _, source in batch]
            full = [load_image(source) for _, source in batch] if self.pets is not None else None
            animals = self.animals(full) if full is not None else [[] for _ in batch]
            found = self.engine.find([r.pixels for r in reduced]) if self.faces_needed else [[] for _ in batch]
            # Each face is aligned and embedded once, in one recognizer batch: from the decoded pixels, or, where a
            # face in a DCT-reduced JPEG is smaller than the crop, from the full image (in its coordinates).
            pixels = []
            for index, ((_, source), image) in enumerate(zip(batch, reduced)):
                if image.factor > 1.0 and any(f.size < CROP_SIZE for f in found[index]):
                    pixels.append(full[index] if full is not None else load_image(source))
                    found[index] = [f.scaled(image.factor) for f in found[index]]
                else:
                    pixels.append(image.pixels)
            self.engine.describe(pixels, found)
            for (label, _), image, picture, faces, pets in zip(batch, reduced, pixels, found, animals):
                if picture is image.pixels and image.factor > 1.0:
                    faces = [_rescaled(f, image.factor) for f in faces]
                results.append(self.scored(label, image.size, faces, pets))
        return results

    def scored(self, label: str, size: tuple[int, int], faces: list, animals: list) -> ImageScore:
        result = ImageScore(label, int(size[0]), int(size[1]), measures=self.measures)
        for kind, candidates in self.per_kind.items():
            items = faces if kind == "person" else [a for a in animals if a.kind == kind]
            result.faces += _assigned(items, candidates, kind, self.measures[kind])
        result.faces.sort(key=lambda f: (f.bbox[0] + f.bbox[2]) / 2)
        return result


def score_images(
    images: list[tuple[str, np.ndarray]],
    profiles: list[Profile],
    engine: FaceEngine,
    *,
    pet_engine: Callable | None = None,
    check: Callable[[], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ImageScore]:
    """Faces of each image (and its cats and dogs when a pet profile is asked for), sorted left to right and
    assigned to the given profiles: one face or animal per profile per image. `pet_engine()` gives the pet
    engine, called only when a pet profile needs it (default: the one installed in the models folder).

    Images are analysed SCORE_BATCH at a time; before each batch `check()` may raise to stop, and after it
    `progress(done, total)` is told how far it got."""
    return Scorer(profiles, engine, pet_engine).score(images, check, progress)


def score_files(
    sources: list[tuple[str, ImageSource]],
    profiles: list[Profile],
    engine: FaceEngine,
    *,
    pet_engine: Callable | None = None,
) -> list[ImageScore]:
    """`score_images` for image files, each decoded at the scale detection needs (`images.load_reduced`) and again
    at full size only when one of its faces is too small there for a full-quality aligned crop, or when pets are
    asked for (the pet engine reads the full image). Coordinates are the full image's."""
    return Scorer(profiles, engine, pet_engine).score_files(sources)


def _rescaled(face, factor: float):
    """The face in full-image coordinates, keeping the crop and embedding made from the reduced pixels."""
    moved = face.scaled(factor)
    moved.crop, moved.embedding = face.crop, face.embedding
    return moved


def _assigned(found: list, people: list[Candidate], kind: str, measures: str) -> list[FaceScore]:
    """Faces (or animals of one species) assigned one-to-one to candidates of that kind."""
    thresholds = np.array([c.threshold for c in people], np.float32)
    matrix = similarities(np.stack([f.embedding for f in found]) if found else np.zeros((0, 1)), people)
    return [
        FaceScore(
            bbox=tuple(float(v) for v in item.bbox),
            profile_id=None if pick is None else people[pick].profile_id,
            similarity=None if pick is None else float(row[pick]),
            scores={c.profile_id: float(s) for c, s in zip(people, row)},
            landmarks=item.landmarks if kind == "person" else None,
            kind=kind,
            measures=measures,
        )
        for item, row, pick in zip(found, matrix, assign(matrix, thresholds))
    ]


# ----- annotated previews --------------------------------------------------------------------------------

_KNOWN = (46, 204, 113)  # green: a profile's person
_UNKNOWN = (231, 76, 60)  # red: nobody asked for


def annotate(image: np.ndarray, result: ImageScore, names: dict[str, str]) -> np.ndarray:
    """The image with each face boxed and labelled: the person's name and score, or 'unknown' and the best guess."""
    canvas = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    side = max(canvas.size)
    line = max(2, side // 300)
    font = _font(max(12, side // 45))
    for face in result.faces:
        x1, y1, x2, y2 = face.bbox
        if face.profile_id is not None:
            colour, text = _KNOWN, f"{names.get(face.profile_id, face.profile_id)} {face.similarity:.2f}"
        else:
            best = max(face.scores.items(), key=lambda kv: kv[1], default=None)
            colour = _UNKNOWN
            unknown = "unknown" if face.kind == "person" else f"unknown {face.kind}"
            text = unknown if best is None else f"{unknown} ({names.get(best[0], best[0])} {best[1]:.2f})"
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=line)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        width, height = right - left + 2 * line, bottom - top + 2 * line
        label_x = max(0, min(x1, canvas.width - width))
        label_y = y1 - height if y1 - height >= 0 else y2
        draw.rectangle([label_x, label_y, label_x + width, label_y + height], fill=colour)
        draw.text((label_x + line - left, label_y + line - top), text, fill=(255, 255, 255), font=font)
    return np.asarray(canvas)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()
