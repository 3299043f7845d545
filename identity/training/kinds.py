"""What a profile's kind decides in training: which subjects found in a photo can be the one, why a photo has none,
what makes a subject's photo unusable, and what the profile's report adds.

The pipeline (`training`) is one for every kind, and the engine (`faces.engine.Engine`) finds, embeds and measures
the subjects; these rules only judge. A person is judged by face (size, pose, exposure, sharpness); a cat or dog by
species, size and sharpness, and its references are chosen by appearance alone (an animal has no landmarks).
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from ..faces.engine import Engine
from ..faces.face import Boxed
from ..faces.quality import Quality
from ..pets.animal import APPEARANCE, IDENTITY
from ..pets.animal import KINDS as ANIMALS
from ..profile import PERSON
from ..profile.calibration import CONFIDENT_PHOTOS
from .verdicts import MIN_FACE, MIN_SHARPNESS, quality_problem

PET = "pet"  # the kind to ask for when the species should be detected
#: What a profile can be of; "pet" trains a cat or dog profile with the species detected.
KINDS = (PERSON, *ANIMALS, PET)
MIN_CANDIDATE = 20  # px: smaller face detections are noise for subject discovery
MIN_ANIMAL = 64  # px, shorter side of the animal's box in the photo


class Rules(Protocol):
    kind: str  # the profile's kind: "person", "cat" or "dog"
    waiting: str  # what the job says while another training holds the engine
    finding: str  # what the job says while the engine analyses the photos
    advice: str  # how to get photos accepted, ending "no photo accepted (…)"
    accepted: str  # the reason an accepted photo gives
    faces: bool  # the subject is a face: the profile keeps its landmarks, pose and FFHQ-aligned 512 px face

    def candidates(self, found: list[Boxed]) -> list[Boxed]:
        """The subjects of one photo that can be the profile's."""
        ...

    def missing(self, found: list[Boxed], candidates: list[Boxed]) -> tuple[str, str]:
        """(code, reason) of a photo in which the profile's subject was not found."""
        ...

    def problem(self, subject: Boxed, quality: Quality) -> tuple[str, str] | None:
        """(code, reason) for what makes the subject's photo a poor reference, or None."""
        ...

    def warnings(self, engine: Engine, accepted: int) -> list[str]: ...

    def report(self, engine: Engine) -> dict:
        """What the training report holds beyond the photos, the warnings and the engine's name."""
        ...


class People:
    kind = PERSON
    waiting = "waiting for the face engine"
    finding = "finding faces"
    advice = f"use clear, well-lit photos where the person's face is at least {MIN_FACE} px"
    accepted = "good photo of the subject"
    faces = True

    def candidates(self, found: list[Boxed]) -> list[Boxed]:
        return [face for face in found if face.size >= MIN_CANDIDATE]

    def missing(self, found: list[Boxed], candidates: list[Boxed]) -> tuple[str, str]:
        if not found:
            return "no_face", "no face found"
        largest = max(face.size for face in found)
        if largest < MIN_FACE:
            return "face_too_small", f"face too small ({largest:.0f} px; needs at least {MIN_FACE} px)"
        return "not_main_subject", "not the main subject (the person in most of the photos is not here)"

    def problem(self, subject: Boxed, quality: Quality) -> tuple[str, str] | None:
        return quality_problem(subject, quality)

    def warnings(self, engine: Engine, accepted: int) -> list[str]:
        if accepted >= CONFIDENT_PHOTOS:
            return []
        return [
            f"low confidence: only {accepted} photo(s) accepted; the profile uses the engine's default "
            "threshold. Add photos (ideally 5-20, varied poses) for a calibrated profile"
        ]

    def report(self, engine: Engine) -> dict:
        return {}


class Animals:
    waiting = "waiting for the pet engine"
    finding = "finding cats and dogs"
    advice = f"use clear, well-lit photos where the animal is at least {MIN_ANIMAL} px and the main subject"
    faces = False

    def __init__(self, kind: str):
        self.kind = kind  # "cat" | "dog"
        self.accepted = f"good photo of the {kind}"

    def candidates(self, found: list[Boxed]) -> list[Boxed]:
        return [animal for animal in found if animal.kind == self.kind]

    def missing(self, found: list[Boxed], candidates: list[Boxed]) -> tuple[str, str]:
        if not found:
            return "no_animal", "no cat or dog found"
        if not candidates:
            return "wrong_species", f"wrong species (a {found[0].kind}, and this profile is of a {self.kind})"
        return "not_main_subject", f"not the main subject (the {self.kind} in most of the photos is not here)"

    def problem(self, subject: Boxed, quality: Quality) -> tuple[str, str] | None:
        if subject.size < MIN_ANIMAL:
            return "too_small", f"{self.kind} too small ({subject.size:.0f} px; needs at least {MIN_ANIMAL} px)"
        if quality.sharpness < MIN_SHARPNESS:
            return "too_blurry", (f"too blurry (sharpness {quality.sharpness:.0f}; needs at least {MIN_SHARPNESS:.0f})")
        return None

    def warnings(self, engine: Engine, accepted: int) -> list[str]:
        warnings = [f"{engine.measures}: {_MEANING[engine.measures]}"]
        if accepted < CONFIDENT_PHOTOS:
            warnings.append(
                f"low confidence: only {accepted} photo(s) accepted; add photos (ideally 5-20) of the {self.kind}"
            )
        return warnings

    def report(self, engine: Engine) -> dict:
        return {"measures": engine.measures}


def family(kind: str) -> type[People] | type[Animals]:
    """The rules' class of a kind, for what it says before the photos are analysed (a "pet" is no species yet)."""
    return People if kind == PERSON else Animals


def rules_for(kind: str, found: dict[int, list[Boxed]]) -> Rules:
    """The rules for a kind, given what the engine found in the photos: "pet" becomes the species of the largest
    animal in most photos (ties go to the first one seen)."""
    if kind == PERSON:
        return People()
    if kind == PET:
        votes = Counter(max(animals, key=lambda a: a.size).kind for animals in found.values() if animals)
        kind = votes.most_common(1)[0][0] if votes else ANIMALS[0]
    return Animals(kind)


_MEANING = {
    APPEARANCE: "scores say how alike the animal looks (species, coat, colours); two animals of the "
    "same breed can score as high as one animal. Add a re-identification model to "
    "models/pet_reid/ to tell individuals apart",
    IDENTITY: "scores come from the re-identification model in models/pet_reid/",
}
