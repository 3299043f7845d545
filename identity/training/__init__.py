"""Training: photos of a person (or a cat or dog) in, a profile out, with a verdict and a reason for every photo.

`train()` runs a job to the end in the calling thread (CLI, ComfyUI node); `start_training()` runs it in the
background and returns the job at once (web routes poll it). Photos are decoded a few at a time and let go
after analysis, so fifty 24-megapixel photos never sit in memory together (`images.DECODE_BUDGET`). The
profile's `kind` picks the engine's subject and the build: faces here, animals in `training.pets`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from ..errors import IdentityError, ImageError, ProfileExists, TrainingError
from ..faces import FaceEngine
from ..faces.align import ffhq_face, portrait
from ..faces.quality import measure
from ..images import ImageSource, collect_photos, load_image, pixel_batches, probe_image
from ..profile import Profile, ProfileStore, calibrate, centroid, clean_name, new_id, validate_id
from ..profile.calibration import CONFIDENT_PHOTOS
from ..text import printable
from . import pets
from .jobs import JOBS, JobRegistry, Status, TrainingJob
from .references import choose_references, photo_quality
from .subject import find_subject
from .verdicts import MIN_FACE, MIN_IMAGE_SIDE, PhotoVerdict, drop_outliers, nothing_accepted, quality_problem

__all__ = [
    "JOBS",
    "KINDS",
    "Photo",
    "Status",
    "check_kind",
    "TrainingJob",
    "photos_from_paths",
    "start_training",
    "train",
]

log = logging.getLogger(__name__)

#: Photos in one training: 5-20 varied ones make a calibrated profile; 50 bounds a job's time and memory.
#: What a profile can be of; "pet" trains a cat or dog profile with the species detected.
KINDS = ("person", "cat", "dog", pets.PET)
MAX_PHOTOS = 50
#: Photos decoded and analysed together (also bounded by `images.DECODE_BUDGET` pixels).
PHOTOS_PER_BATCH = 8
MIN_CANDIDATE = 20  # px: smaller detections are noise for subject discovery
_ADVICE = f"use clear, well-lit photos where the person's face is at least {MIN_FACE} px"


@dataclass
class Photo:
    label: str  # what reports call it: a path, or "image 3"
    source: ImageSource


def photos_from_paths(paths) -> list[Photo]:
    return [Photo(printable(str(path)), path) for path in collect_photos(paths)]


def train(
    photos: list[Photo],
    name: str,
    engine: FaceEngine,
    store: ProfileStore | None = None,
    *,
    profile_id: str | None = None,
    overwrite: bool = False,
    on_update: Callable[[TrainingJob], None] | None = None,
    check: Callable[[], None] | None = None,
    registry: JobRegistry | None = None,
    kind: str = "person",
) -> TrainingJob:
    """Train to the end; returns the READY job (its `.profile` saved in `store` if given) or raises.

    `engine` is a face engine for a person and the pet engine (`pets.load_pet_engine`) for a cat or dog."""
    job = _new_job(photos, name, store, profile_id, overwrite, on_update, registry, kind)
    _run(job, photos, engine, store, overwrite, check, kind)
    return job


def start_training(
    photos: list[Photo],
    name: str,
    engine: FaceEngine,
    store: ProfileStore | None = None,
    *,
    profile_id: str | None = None,
    overwrite: bool = False,
    on_update: Callable[[TrainingJob], None] | None = None,
    check: Callable[[], None] | None = None,
    registry: JobRegistry | None = None,
    kind: str = "person",
) -> TrainingJob:
    """Start training in a background thread; the returned job reports its progress and outcome."""
    job = _new_job(photos, name, store, profile_id, overwrite, on_update, registry, kind)

    def work():
        try:
            _run(job, photos, engine, store, overwrite, check, kind)
        except IdentityError:
            pass  # recorded on the job
        except BaseException:  # a bug (or Ctrl-C): recorded on the job too; logged, as no caller sees it
            log.exception("training job %s stopped", job.job_id)

    threading.Thread(target=work, name=f"train-{job.profile_id}", daemon=True).start()
    return job


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise TrainingError(f"unknown profile kind {str(kind)[:40]!r}; use one of: {', '.join(KINDS)}")
    return kind


def _new_job(photos, name, store, profile_id, overwrite, on_update, registry, kind) -> TrainingJob:
    name = clean_name(name)
    check_kind(kind)
    if not photos:
        raise TrainingError("no photos given: pass 1 to 50 photos of the person")
    if len(photos) > MAX_PHOTOS:
        raise TrainingError(f"{len(photos)} photos given; a profile takes at most {MAX_PHOTOS}")
    if profile_id is None:
        same_name = store.named(name) if store else None  # checked again, under the store's lock, when saved
        if same_name and not overwrite:
            raise ProfileExists(f"a profile named {name!r} already exists ({same_name})")
        profile_id = same_name or new_id(name)
    validate_id(profile_id)
    if store is not None and store.exists(profile_id) and not overwrite:
        raise ProfileExists(f"profile {profile_id!r} already exists")
    job = TrainingJob(profile_id, name, len(photos), on_update)
    (JOBS if registry is None else registry).register(job)
    return job


def _run(
    job: TrainingJob,
    photos: list[Photo],
    engine,
    store: ProfileStore | None,
    overwrite: bool,
    check: Callable[[], None] | None,
    kind: str,
) -> None:
    check = check or (lambda: None)
    verdicts = [PhotoVerdict(photo.label) for photo in photos]
    try:
        job.update(Status.VALIDATING, f"checking {len(photos)} photos")
        sizes = _validate(job, photos, verdicts, check)
        job.update(Status.QUEUING, "waiting for the face engine", done=0)
        with engine.training:
            job.update(Status.IN_PROGRESS, "finding faces" if kind == "person" else "finding cats and dogs")
            found = _analyse(job, photos, verdicts, sizes, engine, check)
            job.update(message="choosing the subject and the references")
            if kind == "person":
                profile = _build(job, photos, verdicts, found, engine, check)
            else:
                profile = pets.build(job, photos, verdicts, found, engine, check, kind)
            if store is not None:
                store.save(profile, overwrite=overwrite)
        job.profile = profile
        job.update(Status.READY, f"{len(profile.embeddings)} of {len(photos)} photos accepted", done=len(photos))
    except IdentityError as exc:
        job.update(Status.ERROR, str(exc))
        raise
    except BaseException as exc:  # the host's interrupt (raised by `check` or `on_update`; ComfyUI's derives
        # from BaseException since v0.20), Ctrl-C, or a bug: recorded, so that no job is left running, then passed on
        job.update(Status.ERROR, f"stopped: {exc}" if str(exc) else f"stopped ({type(exc).__name__})")
        raise


def _publish(job: TrainingJob, verdicts: list[PhotoVerdict], done: int) -> None:
    job.photos = [v.as_dict() for v in verdicts]
    job.update(done=done)


def _validate(job, photos, verdicts, check) -> dict[int, tuple[int, int]]:
    """Header checks only: not an image, unreadable, far too large, or too small to hold a face. Returns the
    (width, height) of each photo that passed."""
    sizes = {}
    for index, (photo, verdict) in enumerate(zip(photos, verdicts)):
        check()
        try:
            width, height = probe_image(photo.source)
            if min(width, height) < MIN_IMAGE_SIDE:
                verdict.reject("face_too_small", f"image too small ({width}×{height} px) to hold a usable face")
            else:
                sizes[index] = (width, height)
        except ImageError as exc:
            verdict.reject("unreadable", exc.reason)
        _publish(job, verdicts, index + 1)
    if all(v.code for v in verdicts):
        raise TrainingError(nothing_accepted(verdicts, _ADVICE))
    return sizes


def _analyse(job, photos, verdicts, sizes, engine, check) -> dict[int, list]:
    """Faces (or animals) per usable photo, decoded and analysed a few at a time: at most PHOTOS_PER_BATCH photos and DECODE_BUDGET
    pixels together (`sizes`: the headers' (width, height) of the photos that passed), so eight 100-MP photos are
    never decoded at once."""
    faces: dict[int, list] = {}
    done = 0
    for batch in pixel_batches(sizes, PHOTOS_PER_BATCH):
        check()
        decoded = []
        for index in batch:
            try:
                decoded.append((index, load_image(photos[index].source)))
            except ImageError as exc:
                verdicts[index].reject("unreadable", exc.reason)
        for (index, _), found in zip(decoded, engine.analyze([image for _, image in decoded])):
            faces[index] = found
        done += len(batch)
        _publish(job, verdicts, done)
    return faces


def _build(job, photos, verdicts, faces, engine, check) -> Profile:
    """The profile from the analysed photos: subject, verdicts, outliers, references, portraits, report."""
    _judge(verdicts, faces, engine)
    drop_outliers([v for v in verdicts if v.accepted], engine.info.match_threshold)
    kept = [i for i, v in enumerate(verdicts) if v.accepted]
    accepted = [verdicts[i] for i in kept]
    if not accepted:
        raise TrainingError(nothing_accepted(verdicts, _ADVICE))
    check()
    references = _references(accepted)
    faces_512, portraits = _from_photos(photos, kept, accepted, references, check)
    job.warnings = _warnings(accepted)
    job.photos = [v.as_dict() for v in verdicts]
    embeddings = np.stack([v.face.embedding for v in accepted])
    return Profile(
        id=job.profile_id,
        name=job.name,
        engine=engine.info,
        embeddings=embeddings,
        centroid=centroid(embeddings),
        crops=np.stack([v.face.crop for v in accepted]),
        landmarks=np.stack([v.face.landmarks for v in accepted]),
        pose=np.stack([v.quality.pose for v in accepted]),
        quality=np.stack([v.quality.exposure for v in accepted]),
        portraits=portraits,
        faces_512=faces_512,
        reference_photos=np.array(references, np.int32),
        calibration=calibrate(embeddings, engine.info.match_threshold),
        report={"photos": job.photos, "warnings": job.warnings, "engine": engine.name},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _judge(verdicts: list[PhotoVerdict], faces: dict[int, list], engine: FaceEngine) -> None:
    """Find the subject (the person in most photos) and give each analysed photo its verdict."""
    order = sorted(faces)
    candidates = {i: [f for f in faces[i] if f.size >= MIN_CANDIDATE] for i in order}
    empty = np.zeros((0, engine.info.dim), np.float32)
    subject = find_subject(
        [np.stack([f.embedding for f in candidates[i]]) if candidates[i] else empty for i in order],
        [np.array([f.size for f in candidates[i]]) for i in order],
        engine.info.match_threshold,
    )
    for index, pick in zip(order, subject):
        verdict = verdicts[index]
        if not faces[index]:
            verdict.reject("no_face", "no face found")
        elif pick is None:
            largest = max(f.size for f in faces[index])
            if largest < MIN_FACE:
                verdict.reject("face_too_small", f"face too small ({largest:.0f} px; needs at least {MIN_FACE} px)")
            else:
                verdict.reject(
                    "not_main_subject", "not the main subject (the person in most of the photos is not here)"
                )
        else:
            face = candidates[index][pick]
            quality = measure(face.crop, face.landmarks)
            problem = quality_problem(face, quality)
            if problem:
                verdict.reject(*problem)
            else:
                verdict.face, verdict.quality = face, quality
                verdict.accept()


def _references(accepted: list[PhotoVerdict]) -> list[int]:
    """Positions (among the accepted) of the reference photos: good ones, varied in pose and look."""
    weights = photo_quality(
        np.array([v.face.size for v in accepted]),
        np.array([v.face.score for v in accepted]),
        np.array([v.quality.exposure[0] for v in accepted]),
    )
    return choose_references(
        np.stack([v.face.embedding for v in accepted]), np.stack([v.quality.pose for v in accepted]), weights
    )


def _warnings(accepted: list[PhotoVerdict]) -> list[str]:
    if len(accepted) >= CONFIDENT_PHOTOS:
        return []
    return [
        f"low confidence: only {len(accepted)} photo(s) accepted; the profile uses the engine's default "
        "threshold. Add photos (ideally 5-20, varied poses) for a calibrated profile"
    ]


def _from_photos(photos, kept, accepted, references, check) -> tuple[np.ndarray, np.ndarray]:
    """Each accepted photo's FFHQ-aligned 512 face (PuLID-Flux's encoder input) and the reference portraits,
    decoding each accepted photo once more, one at a time."""
    faces, portraits = [], {}
    for position, (index, verdict) in enumerate(zip(kept, accepted)):
        check()
        image = load_image(photos[index].source)
        faces.append(ffhq_face(image, verdict.face.landmarks))
        if position in references:
            portraits[position] = portrait(image, verdict.face.landmarks)
    return np.stack(faces), np.stack([portraits[r] for r in references])
