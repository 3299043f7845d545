"""Training a cat or dog profile: the animal that appears in most photos, with a verdict for every photo.

The same steps as for a person, on the pet engine's animals instead of faces: main-subject discovery, outlier
rejection, diverse references and calibration are shared code. What differs is what makes a photo unusable (no
animal, the other species, too small, not the main subject, blurry) and that animals have no pose landmarks:
references are chosen by appearance alone.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import numpy as np

from ..errors import TrainingError
from ..images import load_image
from ..pets.animal import APPEARANCE, IDENTITY, KINDS, exposure, portrait
from ..profile import Profile, calibrate, centroid
from ..profile.calibration import CONFIDENT_PHOTOS
from .references import choose_references, photo_quality
from .subject import find_subject
from .verdicts import MIN_SHARPNESS, PhotoVerdict, drop_outliers, nothing_accepted

PET = "pet"  # the kind to ask for when the species should be detected
MIN_ANIMAL = 64  # px, shorter side of the animal's box in the photo
_ADVICE = f"use clear, well-lit photos where the animal is at least {MIN_ANIMAL} px and the main subject"


def species_of(animals: dict[int, list]) -> str | None:
    """The species of the largest animal in most photos (ties go to the first one seen)."""
    votes = Counter(max(found, key=lambda a: a.size).kind for found in animals.values() if found)
    return votes.most_common(1)[0][0] if votes else None


def build(job, photos, verdicts: list[PhotoVerdict], animals: dict[int, list], engine, check, kind: str) -> Profile:
    """The profile of the main animal of `kind` ("cat", "dog", or "pet" to detect the species)."""
    if kind == PET:
        kind = species_of(animals) or KINDS[0]
    threshold = engine.info.match_threshold
    order = sorted(animals)
    candidates = {i: [a for a in animals[i] if a.kind == kind] for i in order}
    subject = find_subject(
        [
            np.stack([a.embedding for a in candidates[i]])
            if candidates[i]
            else np.zeros((0, engine.info.dim), np.float32)
            for i in order
        ],
        [np.array([a.size for a in candidates[i]]) for i in order],
        threshold,
    )
    animal_quality = {}  # photo index -> exposure of its picked animal (sharpness first)
    for index, pick in zip(order, subject):
        verdict, found = verdicts[index], candidates[index]
        if not animals[index]:
            verdict.reject("no_animal", "no cat or dog found")
        elif not found:
            other = animals[index][0].kind
            verdict.reject("wrong_species", f"wrong species (a {other}, and this profile is of a {kind})")
        elif pick is None:
            verdict.reject("not_main_subject", f"not the main subject (the {kind} in most of the photos is not here)")
        else:
            animal = found[pick]
            animal_quality[index] = exposure(animal.crop)
            sharp = float(animal_quality[index][0])
            if animal.size < MIN_ANIMAL:
                verdict.reject("too_small", f"{kind} too small ({animal.size:.0f} px; needs at least {MIN_ANIMAL} px)")
            elif sharp < MIN_SHARPNESS:
                verdict.reject("too_blurry", f"too blurry (sharpness {sharp:.0f}; needs at least {MIN_SHARPNESS:.0f})")
            else:
                verdict.face = animal
                verdict.accept(f"good photo of the {kind}")
    drop_outliers([v for v in verdicts if v.accepted], threshold)
    kept = [i for i, v in enumerate(verdicts) if v.accepted]
    accepted = [verdicts[i].face for i in kept]
    if not accepted:
        raise TrainingError(nothing_accepted(verdicts, _ADVICE))
    check()

    embeddings = np.stack([a.embedding for a in accepted])
    quality = np.stack([animal_quality[i] for i in kept])
    weights = photo_quality(np.array([a.size for a in accepted]), np.array([a.score for a in accepted]), quality[:, 0])
    poses = np.zeros((len(accepted), 3), np.float32)  # animals have no pose landmarks: appearance alone decides
    references = choose_references(embeddings, poses, weights)
    portraits = []
    for position in references:
        check()
        portraits.append(portrait(load_image(photos[kept[position]].source), accepted[position]))

    warnings = [f"{engine.measures}: {_MEANING[engine.measures]}"]
    if len(accepted) < CONFIDENT_PHOTOS:
        warnings.append(
            f"low confidence: only {len(accepted)} photo(s) accepted; add photos (ideally 5-20) of the {kind}"
        )
    job.warnings = warnings
    job.photos = [v.as_dict() for v in verdicts]
    return Profile(
        id=job.profile_id,
        name=job.name,
        kind=kind,
        engine=engine.info,
        embeddings=embeddings,
        centroid=centroid(embeddings),
        crops=np.stack([a.crop for a in accepted]),
        quality=quality,
        portraits=np.stack(portraits),
        reference_photos=np.array(references, np.int32),
        calibration=calibrate(embeddings, threshold),
        report={"photos": job.photos, "warnings": warnings, "engine": engine.name, "measures": engine.measures},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


_MEANING = {
    APPEARANCE: "scores say how alike the animal looks (species, coat, colours); two animals of the "
    "same breed can score as high as one animal. Add a re-identification model to "
    "models/pet_reid/ to tell individuals apart",
    IDENTITY: "scores come from the re-identification model in models/pet_reid/",
}
