"""Which face is whom: one-to-one assignment of faces to the candidate profiles, among everyone the store knows.

The candidates are the profiles asked for; the cohort is every other profile of the same kind and engine in the
store (the people a user knows, whom a face must be told apart from). Each face-profile pair is scored by cosine
similarity to the profile's centroid. A face may go to a candidate only when it clears the candidate's threshold
and is closer to it than to every other known profile (candidate or cohort) by the candidate's margin: a
look-alike of someone else is refused, not given to the nearest profile asked for. Among the allowed pairs the
assignment maximises total similarity (Hungarian algorithm). Faces left over are unknown.

Thresholds and margins are recalibrated against the profiles known at scoring time (`against`), so a profile
trained before another person joined the store is told apart from them without retraining. A verification reads
the cohort from each file's header and embeddings alone, once per file version (`known`: the store's `cohort`
cache), and a calibration is made once per candidate and cohort (the store's `calibrated` cache); a profile of
another engine is re-embedded from its crops, once per version (the engine's `reembedded` cache). A known profile whose
centroid is as near as `SAME_PERSON` is another profile of the same person (retrained under another name, or from
other years), not a rival: it is left out of both.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace

import numpy as np

from .cache import BoundedCache
from .errors import IdentityError
from .faces import FaceEngine
from .profile import Profile, ProfileStore, calibrate, centroid
from .profile.profile import Vectors

log = logging.getLogger(__name__)

#: How far from the engine's same-person threshold towards 1 two profiles' centroids must be alike to be one person
#: (or pet): 0.68 for SFace, 0.85 for the pets' appearance. Held-out photos of the fixtures' people score 0.63 to
#: 0.94 on their own profile, two photos of different people at most 0.28 (embedded engine).
SAME_PERSON = 0.5


@dataclass(frozen=True)
class Candidate:
    """A profile as one engine sees it: its centroid, threshold and margin in that engine's embedding space."""

    profile_id: str
    name: str
    centroid: np.ndarray
    threshold: float
    reembedded: bool  # True when the profile was trained with another engine and its crops were re-embedded
    margin: float | None = None  # lead needed over every other known profile; None: compared with nobody
    embeddings: np.ndarray | None = field(default=None, repr=False, compare=False)
    impostors: np.ndarray | None = field(default=None, repr=False, compare=False)  # others in its photos
    calibration: dict = field(default_factory=dict, repr=False, compare=False)
    version: str = field(default="", repr=False, compare=False)  # digest of what calibrating it reads (`against`)


def candidate(profile: Profile | Vectors, engine: FaceEngine) -> Candidate:
    """The profile in the engine's space; a profile from another engine is re-embedded from its stored crops
    (once per profile version: the engine keeps the result)."""
    if profile.engine.key == engine.info.key:
        return Candidate(
            profile.id,
            profile.name,
            profile.centroid,
            profile.threshold,
            False,
            embeddings=profile.embeddings,
            impostors=profile.impostors,
            calibration=profile.calibration,
            version=_digest(profile.centroid, profile.embeddings, profile.impostors),
        )

    def reembed() -> Candidate:
        embeddings = engine.embed(profile.crops)
        calibration = calibrate(embeddings, engine.info.match_threshold)
        threshold = float(calibration["threshold"])
        mean = centroid(embeddings)
        return Candidate(
            profile.id,
            profile.name,
            mean,
            threshold,
            True,
            embeddings=embeddings,
            calibration=calibration,
            version=_digest(mean, embeddings, None),
        )

    return engine.reembedded.get_or_make((profile.id, profile.created, profile.engine.key), reembed)


def _digest(*arrays: np.ndarray | None) -> str:
    """What a calibration of (or against) a candidate depends on, in a few bytes: a cache key part."""
    hashed = hashlib.blake2b(digest_size=16)
    for array in arrays:
        hashed.update(b"-" if array is None else repr(array.shape).encode() + np.ascontiguousarray(array).tobytes())
    return hashed.hexdigest()


def cohort(store: ProfileStore, profiles: list[Profile]) -> list[dict]:
    """The summaries of the other profiles in the store of the kinds asked for: the people (and pets) a face must
    be told apart from (a batch-score folder records them, and its workers are sent their files)."""
    asked = {p.id for p in profiles}
    kinds = {p.kind for p in profiles}
    return [s for s in store.summaries() if s["id"] not in asked and s["kind"] in kinds]


def known(store: ProfileStore, kind: str, engine: FaceEngine, asked: set[str]) -> tuple[list[Candidate], list[str]]:
    """The store's profiles of this kind other than those `asked` for, as candidates in the engine's space, and a
    sentence for each one left out. Each file's header and embeddings are read once per file version (its crops
    too when it comes from another engine and is re-embedded), never its portraits."""
    found, left_out = [], []
    for profile_id in store.ids():
        stamp = store.stamp(profile_id)
        if profile_id in asked or stamp is None:
            continue
        member, note = store.cohort.get_or_make(
            (profile_id, stamp, engine.info.key, kind), lambda: _member(store, profile_id, kind, engine)
        )
        if member is not None:
            found.append(member)
        elif note is not None:
            left_out.append(note)
    return found, left_out


def _member(store: ProfileStore, profile_id: str, kind: str, engine: FaceEngine) -> tuple:
    """(candidate, None) for a profile of this kind, (None, why it is left out) for one that cannot be compared,
    (None, None) for one of another kind."""
    try:
        vectors = store.vectors(profile_id)
    except IdentityError as exc:
        log.warning("left %s out of the look-alike cohort: %s", profile_id, exc)
        return None, f"{profile_id} is left out of the people compared: {exc}"
    if vectors.kind != kind:
        return None, None
    if vectors.engine.key == engine.info.key:
        return candidate(vectors, engine), None
    try:
        return candidate(store.vectors(profile_id, crops=True), engine), None
    except Exception as exc:  # a damaged crops tensor, or crops this engine cannot embed
        log.warning("left %s out of the look-alike cohort: %s", profile_id, exc)
        return None, (
            f"{vectors.name} ({profile_id}), trained with {vectors.engine.name}, is left out of the people compared: "
            f"its crops could not be re-embedded with {engine.info.name} ({exc})"
        )


def others(candidates: list[Candidate], known: list[Candidate], engine_threshold: float) -> np.ndarray:
    """`[candidates, candidates + known]`: True where a known profile is someone else than the candidate (not
    itself, nor another profile of the same person: `SAME_PERSON`)."""
    everyone = candidates + known
    if not candidates or not everyone:
        return np.zeros((len(candidates), len(everyone)), bool)
    alike = np.stack([c.centroid for c in candidates]) @ np.stack([c.centroid for c in everyone]).T
    different = alike < engine_threshold + SAME_PERSON * (1.0 - engine_threshold)
    different[np.arange(len(candidates)), np.arange(len(candidates))] = False
    return different


def against(
    candidates: list[Candidate], known: list[Candidate], engine_threshold: float, cache: BoundedCache | None = None
) -> list[Candidate]:
    """Each candidate recalibrated against every other known person (the other candidates and `known`, `others`):
    their embeddings are impostors of it, their centroids the people it must lead. Alone, a candidate is
    unchanged. `cache` (a store's `calibrated`) keeps each calibration per candidate and rivals' versions."""
    everyone = candidates + known
    different = others(candidates, known, engine_threshold)
    result = []
    for index, mine in enumerate(candidates):
        rivals = [other for position, other in enumerate(everyone) if different[index, position]]
        if not rivals:
            result.append(mine)
            continue

        def calibrated(mine=mine, rivals=rivals) -> dict:
            impostors = [other.embeddings for other in rivals]
            if mine.impostors is not None and not mine.reembedded:
                impostors.append(mine.impostors)
            return calibrate(
                mine.embeddings, engine_threshold, np.concatenate(impostors), np.stack([o.centroid for o in rivals])
            )

        key = (engine_threshold, mine.version, mine.reembedded, tuple(other.version for other in rivals))
        calibration = calibrated() if cache is None or not mine.version else cache.get_or_make(key, calibrated)
        result.append(
            replace(
                mine,
                threshold=float(calibration["threshold"]),
                margin=float(calibration["margin"]),
                calibration=calibration,
            )
        )
    return result


def similarities(embeddings: np.ndarray, candidates: list[Candidate]) -> np.ndarray:
    """`[faces, candidates]` cosine similarities."""
    if len(embeddings) == 0 or not candidates:
        return np.zeros((len(embeddings), len(candidates)), np.float32)
    return np.asarray(embeddings, np.float32) @ np.stack([c.centroid for c in candidates]).T


def rivals(similarity: np.ndarray, different: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For `[faces, known]` similarities whose first columns are the candidates, and `others`' mask: per face and
    candidate, the column of the nearest other known person and its similarity (-1 and -inf where none is)."""
    faces, count = similarity.shape[0], len(different)
    column = np.full((faces, count), -1, np.int64)
    best = np.full((faces, count), -np.inf, np.float32)
    for index in range(count):
        if faces == 0 or not different[index].any():
            continue
        masked = np.where(different[index][None, :], similarity, -np.inf)
        column[:, index] = masked.argmax(axis=1)
        best[:, index] = masked.max(axis=1)
    return column, best


def allowed(similarity: np.ndarray, thresholds: np.ndarray, margins: np.ndarray | None, rival: np.ndarray | None):
    """Which face-candidate pairs may be assigned: above the candidate's threshold and, when the margins are
    given, ahead of the nearest other known profile (`rival`) by the candidate's margin."""
    ok = similarity >= thresholds[None, :]
    if margins is not None and rival is not None:
        ok &= similarity - rival >= margins[None, :]
    return ok


def assign(
    similarity: np.ndarray,
    thresholds: np.ndarray,
    margins: np.ndarray | None = None,
    rival: np.ndarray | None = None,
) -> list[int | None]:
    """Per face, the index of its candidate or None; one face per candidate, each above its threshold (and, with
    `margins` and `rival`, closer to it than to any other known profile by its margin)."""
    faces, count = similarity.shape
    result: list[int | None] = [None] * faces
    if faces == 0 or count == 0:
        return result
    from scipy.optimize import linear_sum_assignment  # here: scipy.optimize takes a second to import

    permitted = allowed(similarity, thresholds, margins, rival)
    # Allowed pairs weigh their similarity (> 0: thresholds are positive); others weigh nothing, so the solver
    # never prefers a forbidden pair over an allowed one, and forbidden pairs it is forced into are dropped.
    weight = np.where(permitted, np.maximum(similarity, 1e-6), 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    for row, col in zip(rows, cols):
        if permitted[row, col]:
            result[row] = int(col)
    return result
