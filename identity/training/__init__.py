"""Training: photos of a person (or a cat or dog) in, a profile out, with a verdict and a reason for every photo.

`train()` runs a job to the end in the calling thread (CLI, ComfyUI node); `start_training()` runs it in the
background and returns the job at once (web routes poll it). Photos are decoded a few at a time and let go
after analysis, so fifty 24-megapixel photos never sit in memory together (`images.DECODE_BUDGET`). One pipeline
trains every kind: the engine (a face engine for a person, the pet engine for a cat or dog) finds, embeds and
measures the subjects, and the kind's rules (`training.kinds`) judge them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np

from ..errors import IdentityError, ImageError, ProfileExists, TrainingError
from ..faces.align import ffhq_face
from ..faces.engine import Engine
from ..images import ImageSource, collect_photos, load_image, pixel_batches, probe_image
from ..matching import against, candidate, known
from ..profile import Profile, ProfileStore, calibrate, centroid, clean_name, new_id, validate_id
from ..text import printable
from .jobs import JOBS, JobRegistry, Status, TrainingJob
from .kinds import KINDS, Rules, family, rules_for
from .references import choose_references, large_portraits, photo_quality
from .subject import find_subject
from .verdicts import MIN_IMAGE_SIDE, PhotoVerdict, drop_outliers, nothing_accepted

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
MAX_PHOTOS = 50
#: Photos decoded and analysed together (also bounded by `images.DECODE_BUDGET` pixels).
PHOTOS_PER_BATCH = 8


@dataclass
class Photo:
    label: str  # what reports call it: a path, or "image 3"
    source: ImageSource


def photos_from_paths(paths) -> list[Photo]:
    return [Photo(printable(str(path)), path) for path in collect_photos(paths)]


def train(
    photos: list[Photo],
    name: str,
    engine: Engine,
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

    `engine` is a face engine for a person and the pet engine (`pets.engine.load_pet_engine`) for a cat or dog."""
    job = _new_job(photos, name, store, profile_id, overwrite, on_update, registry, kind)
    _run(job, photos, engine, store, overwrite, check, kind)
    return job


def unsaved_profile(images: list[np.ndarray], engine: Engine, name: str = "photos") -> Profile:
    """A profile made in memory from photos of one person, for a node that uses them directly: nothing is
    written and no job is listed; a photo without a usable face fails as in training, with each photo's reason."""
    photos = [Photo(f"photo {number}", image) for number, image in enumerate(images, 1)]
    return train(photos, name, engine, registry=JobRegistry()).profile


def start_training(
    photos: list[Photo],
    name: str,
    engine: Engine,
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
    engine: Engine,
    store: ProfileStore | None,
    overwrite: bool,
    check: Callable[[], None] | None,
    kind: str,
) -> None:
    check = check or (lambda: None)
    verdicts = [PhotoVerdict(photo.label) for photo in photos]
    try:
        job.update(Status.VALIDATING, f"checking {len(photos)} photos")
        sizes = _validate(job, photos, verdicts, check, family(kind).advice)
        job.update(Status.QUEUING, family(kind).waiting, done=0)
        with engine.training:
            job.update(Status.IN_PROGRESS, family(kind).finding)
            found = _analyse(job, photos, verdicts, sizes, engine, check)
            job.update(message="choosing the subject and the references")
            profile = _build(job, photos, verdicts, found, engine, rules_for(kind, found), check)
            if store is not None:
                profile = _told_apart(profile, store, engine)
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


def _validate(job, photos, verdicts, check, advice: str) -> dict[int, tuple[int, int]]:
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
        raise TrainingError(nothing_accepted(verdicts, advice))
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


def _build(job, photos, verdicts, found, engine: Engine, rules: Rules, check) -> Profile:
    """The profile from the analysed photos: subject, verdicts, outliers, references, portraits, report."""
    _judge(verdicts, found, engine, rules)
    drop_outliers([v for v in verdicts if v.accepted], engine.info.match_threshold)
    kept = [i for i, v in enumerate(verdicts) if v.accepted]
    accepted = [verdicts[i] for i in kept]
    if not accepted:
        raise TrainingError(nothing_accepted(verdicts, rules.advice))
    check()
    references = _references(accepted)
    faces_512, portraits, large = _from_photos(photos, kept, accepted, references, engine, rules.faces, check)
    job.warnings = rules.warnings(engine, len(accepted))
    job.photos = [v.as_dict() for v in verdicts]
    embeddings = np.stack([v.face.embedding for v in accepted])
    impostors = _impostors(found, kept, accepted, rules)
    return Profile(
        id=job.profile_id,
        name=job.name,
        kind=rules.kind,
        engine=engine.info,
        embeddings=embeddings,
        centroid=centroid(embeddings),
        crops=np.stack([v.face.crop for v in accepted]),
        landmarks=np.stack([v.face.landmarks for v in accepted]) if rules.faces else None,
        pose=np.stack([v.quality.pose for v in accepted]) if rules.faces else None,
        quality=np.stack([v.quality.exposure for v in accepted]),
        portraits=portraits,
        large_portraits=None if large is None else large[0],
        large_references=None if large is None else large[1],
        faces_512=faces_512,
        reference_photos=np.array(references, np.int32),
        impostors=impostors,
        calibration=calibrate(embeddings, engine.info.match_threshold, impostors),
        report={"photos": job.photos, "warnings": job.warnings, "engine": engine.name, **rules.report(engine)},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _told_apart(profile: Profile, store: ProfileStore, engine: Engine) -> Profile:
    """The profile calibrated against the others of its kind and engine in the store too (`matching.against`):
    their embeddings are impostors, their centroids the people a face must be nearer to this one than to."""
    others, _ = known(store, profile.kind, engine, {profile.id})
    if not others:
        return profile
    [mine] = against([candidate(profile, engine)], others, engine.info.match_threshold)
    return replace(profile, calibration=mine.calibration)


def _impostors(found: dict[int, list], kept: list[int], accepted: list[PhotoVerdict], rules: Rules):
    """The others in the accepted photos (a group shot's other people): faces known not to be the subject, which
    calibrate the profile from the impostor side. None when every photo held the subject alone."""
    others = [
        item.embedding
        for index, verdict in zip(kept, accepted)
        for item in rules.candidates(found[index])
        if item is not verdict.face and item.embedding is not None
    ]
    return np.stack(others).astype(np.float32) if others else None


def _judge(verdicts: list[PhotoVerdict], found: dict[int, list], engine: Engine, rules: Rules) -> None:
    """Find the subject (the one in most photos) and give each analysed photo its verdict."""
    order = sorted(found)
    candidates = {i: rules.candidates(found[i]) for i in order}
    empty = np.zeros((0, engine.info.dim), np.float32)
    subject = find_subject(
        [np.stack([s.embedding for s in candidates[i]]) if candidates[i] else empty for i in order],
        [np.array([s.size for s in candidates[i]]) for i in order],
        engine.info.match_threshold,
    )
    for index, pick in zip(order, subject):
        verdict = verdicts[index]
        if pick is None:
            verdict.reject(*rules.missing(found[index], candidates[index]))
            continue
        chosen = candidates[index][pick]
        quality = engine.quality(chosen)
        problem = rules.problem(chosen, quality)
        if problem:
            verdict.reject(*problem)
        else:
            verdict.face, verdict.quality = chosen, quality
            verdict.accept(rules.accepted)


def _references(accepted: list[PhotoVerdict]) -> list[int]:
    """Positions (among the accepted) of the reference photos: good ones, varied in pose and look (by look alone
    where the subjects have no pose: animals)."""
    weights = photo_quality(
        np.array([v.face.size for v in accepted]),
        np.array([v.face.score for v in accepted]),
        np.array([v.quality.exposure[0] for v in accepted]),
    )
    poses = [v.quality.pose for v in accepted]
    return choose_references(
        np.stack([v.face.embedding for v in accepted]),
        np.zeros((len(accepted), 3), np.float32) if poses[0] is None else np.stack(poses),
        weights,
    )


def _from_photos(photos, kept, accepted, references, engine: Engine, faces: bool, check):
    """The reference portraits (384 px, and large where the photos allow) and, for faces, each accepted photo's
    FFHQ-aligned 512 px face (PuLID-Flux's encoder input), decoding the photos they come from once more, one at
    a time."""
    aligned, portraits, regions = [], {}, {}
    for position in range(len(kept)) if faces else references:
        check()
        image = load_image(photos[kept[position]].source)
        if faces:
            aligned.append(ffhq_face(image, accepted[position].face.landmarks))
        if position in references:
            portraits[position] = engine.portrait(image, accepted[position].face)
            regions[position] = engine.portrait(image, accepted[position].face, size=None)
    large = large_portraits([regions[r] for r in references])
    return np.stack(aligned) if faces else None, np.stack([portraits[r] for r in references]), large
