"""Scoring images against profiles: every face (and, for cat and dog profiles, every cat and dog), whom it was
assigned to, how alike it is to each candidate, and the nearest other known profile with the margin to it.
People are found by face and pets by the animal detector; each kind is assigned one-to-one among the profiles of
that kind, told apart from the cohort (every other profile of that kind and engine in the store; `matching`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .faces import FaceEngine
from .faces.align import CROP_SIZE
from .faces.engine import DETECT_SIZE, FACE_MEASURES
from .images import ImageSource, load_image, load_reduced
from .matching import Candidate, against, allowed, assign, candidate, known, others, rivals, similarities
from .pets.animal import KINDS
from .profile import Profile, ProfileStore

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
    focus: str | None = None  # the assigned profile, else the closest candidate: whom `nearest` is next to
    # the nearest other known profile to `focus`: id, name, similarity
    nearest: tuple[str, str, float] | None = None
    margin: float | None = None  # the lead of that profile's similarity over `nearest`'s
    refused: str | None = None  # why a face that cleared a threshold was not given to that profile

    def as_dict(self) -> dict:
        entry = {
            "kind": self.kind,
            "measures": self.measures,
            "bbox": [round(float(v), 1) for v in self.bbox],
            "profile_id": self.profile_id,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "next": None,
            "margin": None if self.margin is None else round(self.margin, 4),
        }
        if self.nearest is not None:
            entry["next"] = {
                "profile_id": self.nearest[0],
                "name": self.nearest[1],
                "similarity": round(self.nearest[2], 4),
            }
        if self.refused is not None:
            entry["refused"] = self.refused
        return entry

    def label(self, names: dict[str, str]) -> str:
        """The face in a few words, as an annotated image shows it: who (or the closest candidate) and the score,
        then `aside()`; e.g. 'Barack Obama 0.83; next: Joe Biden 0.19'."""
        if self.profile_id is not None:
            return f"{names.get(self.profile_id, self.profile_id)} {self.similarity:.2f}{self.aside()}"
        best = max(self.scores.items(), key=lambda kv: kv[1], default=None)
        unknown = "unknown" if self.kind == "person" else f"unknown {self.kind}"
        return (unknown if best is None else f"{unknown} ({names.get(best[0], best[0])} {best[1]:.2f})") + self.aside()

    def aside(self) -> str:
        """The nearest other known person and a look-alike refusal, after a face's name and score."""
        text = "" if self.nearest is None else f"; next: {self.nearest[1]} {self.nearest[2]:.2f}"
        return text + ("; refused: a look-alike" if self.refused is not None else "")


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


def batch_report(
    results: list[ImageScore], profiles: list[Profile], order: list[int], left_out: list[str] | None = None
) -> dict:
    """JSON-ready: per image its score, per-subject scores, faces and a note when someone is missing; `left_out`
    (`Scorer.left_out`): the known profiles that faces could not be told apart from, each in a sentence."""
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
        "left_out": list(left_out or []),
    }


def badges(
    scores: list[tuple[float, dict[str, float]]], names: dict[str, str], results: list[ImageScore] | None = None
) -> list[dict]:
    """Per image, what a node shows over it (web/js): its score and each person's, by name; `scores` holds
    (image score, {profile id: score}) in image order. With the images' `results`, each person's face also says
    the nearest other known person and why a face was refused ({name: 'next: Joe Biden 0.19'})."""
    shown = []
    for index, (score, subjects) in enumerate(scores):
        entry = {"index": index, "score": score, "subjects": {names[k]: v for k, v in subjects.items()}}
        if results is not None:
            entry["next"] = {names[k]: v for k, v in nearest_people(results[index]).items() if k in names}
        shown.append(entry)
    return shown


def nearest_people(result: ImageScore) -> dict[str, str]:
    """Per requested profile id, in words: the nearest other known person to its face ('next: Joe Biden 0.19'),
    or why its closest face was refused (a look-alike)."""
    found = {}
    for face in result.faces:
        if face.nearest is None or (face.profile_id is None and face.refused is None):
            continue
        words = face.refused if face.profile_id is None else f"next: {face.nearest[1]} {face.nearest[2]:.2f}"
        found.setdefault(face.focus, words)
    return found


class Scorer:
    """The candidates of a scoring run, per kind: people by face; when a pet profile is asked for, every cat and
    dog by the pet engine, each species assigned among the profiles of its kind. Made once, it scores any number
    of batches (a batch-score worker keeps one)."""

    def __init__(
        self,
        profiles: list[Profile],
        engine: FaceEngine,
        pet_engine: Callable | None,
        cohort: ProfileStore | None = None,
    ):
        """`cohort`: the store whose other profiles (`matching.known`) each face must be told apart from; None
        turns the look-alike rule off (a single-profile check: each profile's own threshold alone). `left_out`
        says which of them could not be compared."""
        people = [p for p in profiles if p.kind == "person"]
        animals = [p for p in profiles if p.kind != "person"]
        self.engine, self.pets = engine, None
        asked = {p.id for p in profiles}
        self.faces_needed = bool(people) or not animals
        if animals:
            if pet_engine is None:
                from .pets.engine import load_pet_engine as pet_engine  # torch loads only when a pet is asked for
            self.pets = pet_engine()
        self.per_kind: dict[str, list[Candidate]] = {"person": [candidate(p, engine) for p in people]}
        if self.pets is not None:
            self.per_kind |= {kind: [candidate(p, self.pets) for p in animals if p.kind == kind] for kind in KINDS}
        self.cohort = cohort is not None
        #: per kind, the other known profiles in the same engine's space: whom a face must be farther from
        self.known: dict[str, list[Candidate]] = {}
        self.different: dict[str, np.ndarray] = {}  # per kind, `matching.others`
        self.left_out: list[str] = []
        for kind in self.per_kind:
            space = engine if kind == "person" else self.pets
            self.known[kind] = []
            if cohort is not None and self.per_kind[kind]:
                self.known[kind], left_out = known(cohort, kind, space, asked)
                self.left_out += left_out
                self.per_kind[kind] = against(
                    self.per_kind[kind], self.known[kind], space.info.match_threshold, cohort.calibrated
                )
            self.different[kind] = others(self.per_kind[kind], self.known[kind], space.info.match_threshold)
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
            result.faces += _assigned(
                items, candidates, self.known[kind], self.different[kind], kind, self.measures[kind], self.cohort
            )
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
    cohort: ProfileStore | None = None,
) -> list[ImageScore]:
    """Faces of each image (and its cats and dogs when a pet profile is asked for), sorted left to right and
    assigned to the given profiles: one face or animal per profile per image, and only one nearer to that profile
    than to any other profile in the `cohort` store by its margin (see `Scorer`). `pet_engine()` gives the pet engine, called only
    when a pet profile needs it (default: the one installed in the models folder).

    Images are analysed SCORE_BATCH at a time; before each batch `check()` may raise to stop, and after it
    `progress(done, total)` is told how far it got."""
    return Scorer(profiles, engine, pet_engine, cohort).score(images, check, progress)


def score_files(
    sources: list[tuple[str, ImageSource]],
    profiles: list[Profile],
    engine: FaceEngine,
    *,
    pet_engine: Callable | None = None,
    cohort: ProfileStore | None = None,
) -> list[ImageScore]:
    """`score_images` for image files, each decoded at the scale detection needs (`images.load_reduced`) and again
    at full size only when one of its faces is too small there for a full-quality aligned crop, or when pets are
    asked for (the pet engine reads the full image). Coordinates are the full image's."""
    return Scorer(profiles, engine, pet_engine, cohort).score_files(sources)


def _rescaled(face, factor: float):
    """The face in full-image coordinates, keeping the crop and embedding made from the reduced pixels."""
    moved = face.scaled(factor)
    moved.crop, moved.embedding = face.crop, face.embedding
    return moved


def _assigned(
    found: list,
    people: list[Candidate],
    known: list[Candidate],
    different: np.ndarray,
    kind: str,
    measures: str,
    cohort: bool,
) -> list[FaceScore]:
    """Faces (or animals of one species) assigned one-to-one to candidates of that kind; with `cohort`, only to a
    candidate they are nearer to than to every other known person (`known` and the other candidates, as
    `different` tells them apart)."""
    everyone = people + known
    thresholds = np.array([c.threshold for c in people], np.float32)
    margins = np.array([c.margin or 0.0 for c in people], np.float32)
    full = similarities(np.stack([f.embedding for f in found]) if found else np.zeros((0, 1)), everyone)
    matrix = full[:, : len(people)]
    column, rival = rivals(full, different)
    enforced = (margins, rival) if cohort else (None, None)
    clears = allowed(matrix, thresholds, None, None)
    picks = assign(matrix, thresholds, *enforced)
    scored = []
    for row, (item, pick) in enumerate(zip(found, picks)):
        focus = pick if pick is not None else (int(matrix[row].argmax()) if people else None)
        nearest = margin = refused = None
        if focus is not None and column[row, focus] >= 0:
            other = everyone[column[row, focus]]
            nearest = (other.profile_id, other.name, float(rival[row, focus]))
            margin = float(matrix[row, focus] - rival[row, focus])
            if pick is None and cohort and clears[row, focus] and margin < margins[focus]:
                refused = _refusal(people[focus], float(matrix[row, focus]), other.name, margin, float(margins[focus]))
        scored.append(
            FaceScore(
                bbox=tuple(float(v) for v in item.bbox),
                profile_id=None if pick is None else people[pick].profile_id,
                similarity=None if pick is None else float(matrix[row, pick]),
                scores={c.profile_id: float(s) for c, s in zip(people, matrix[row])},
                landmarks=item.landmarks if kind == "person" else None,
                kind=kind,
                measures=measures,
                focus=None if focus is None else people[focus].profile_id,
                nearest=nearest,
                margin=margin,
                refused=refused,
            )
        )
    return scored


def _refusal(profile: Candidate, similarity: float, other: str, margin: float, needed: float) -> str:
    """Why a face that cleared a profile's threshold was not taken as that profile: someone else known is as near."""
    if margin < 0:
        return f"refused as {profile.name} ({similarity:.2f}): nearer to {other} (a look-alike of {other})"
    return (
        f"refused as {profile.name} ({similarity:.2f}): a look-alike, only {margin:.2f} nearer than to {other} "
        f"({needed:.2f} needed)"
    )


# ----- annotated previews --------------------------------------------------------------------------------

_KNOWN = (46, 204, 113)  # green: a profile's person
_UNKNOWN = (231, 76, 60)  # red: nobody asked for


def annotate(image: np.ndarray, result: ImageScore, names: dict[str, str]) -> np.ndarray:
    """The image with each face boxed and labelled (`FaceScore.label`): the person's name and score, or 'unknown'
    and the best guess, with the next known person and any look-alike refusal."""
    canvas = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    side = max(canvas.size)
    line = max(2, side // 300)
    font = _font(max(12, side // 45))
    for face in result.faces:
        x1, y1, x2, y2 = face.bbox
        colour, text = _KNOWN if face.profile_id is not None else _UNKNOWN, face.label(names)
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
