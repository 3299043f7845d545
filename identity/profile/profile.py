"""A trained identity: what a profile holds, and its `.safetensors` form.

Tensors of every profile, per accepted photo: `embeddings [N,D]` (unit), `crops [N,S,S,3]` (for re-embedding
with another engine), `quality [N,3]` (sharpness, brightness, highlights); `centroid [D]`; `portraits [K,P,P,3]`
head-and-shoulders references and `reference_photos [K]` (which accepted photo each came from); optionally
`large_portraits [M,L,L,3]`, references at up to 1024 px where their photos have the pixels (what
reference-image models are given), with `large_references [M]` (which portrait each one is); older profiles and
low-resolution photos lack them. A person's also
hold what a face has and an animal has not: `landmarks [N,5,2]` and `pose [N,3]` (yaw, pitch, roll) of each
aligned 112 px crop, and optionally `faces_512 [N,512,512,3]`, each accepted photo's face aligned in FFHQ geometry
(what PuLID-Flux's encoder reads; older profiles lack it). Optionally `impostors [M,D]`: the other faces (or
animals) in the accepted photos, a group shot's other people, which calibrate the profile from the impostor side
(a file without them still loads, and an older pack ignores them). A cat or dog profile (`kind`) holds square 224 px crops
of the animal and 384 px portraits; its engine is the pet engine. Header metadata, as JSON strings: the format
marker and version, id, name, kind, created, engine, calibration and the training report.

Format versions: 1 stored zero landmarks and poses in cat and dog profiles (the person schema was the only one);
2 leaves them out. A file says the oldest version that holds it, so a person's profile is still version 1 (an
older pack reads it) and an animal's is 2; both versions load.

The file is written here, deterministically (sorted header, fixed layout), so that saving a loaded profile
reproduces its bytes; it is read with the `safetensors` library. Nothing else is ever deserialised.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import safe_open

from ..errors import IdentityError, ProfileFormatError
from ..faces.engine import EngineInfo
from .ids import clean_name, validate_id

FORMAT = "identity-layer.profile"
FORMAT_VERSION = 2  # 2: cat and dog profiles hold no landmarks and poses (1 stored zeros)
PERSON = "person"

_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.uint8): "U8", np.dtype(np.int32): "I32"}
_TENSORS = ("embeddings", "centroid", "crops", "quality", "portraits", "reference_photos")
_FACE_TENSORS = ("landmarks", "pose")  # a person's profile only: an animal has no facial landmarks to pose
_OPTIONAL = ("impostors", "large_portraits", "large_references")  # any kind
_FACE_OPTIONAL = ("faces_512",)
_OPTIONAL_DTYPES = {"landmarks": np.float32, "pose": np.float32, "impostors": np.float32, "large_references": np.int32}


@dataclass
class Profile:
    id: str
    name: str
    engine: EngineInfo
    embeddings: np.ndarray
    centroid: np.ndarray
    crops: np.ndarray
    quality: np.ndarray
    portraits: np.ndarray
    reference_photos: np.ndarray
    calibration: dict
    report: dict = field(default_factory=dict)
    created: str = ""
    kind: str = PERSON
    landmarks: np.ndarray | None = None  # a person's only, as `pose`
    pose: np.ndarray | None = None
    faces_512: np.ndarray | None = None
    impostors: np.ndarray | None = None  # [M, D] unit embeddings; None when the photos held nobody else
    large_portraits: np.ndarray | None = None
    large_references: np.ndarray | None = None
    #: Names the profile had before a rename (the store's rename record, not the file): `[[former-name]]` in a
    #: prompt written before the rename still finds it.
    former_names: tuple[str, ...] = ()

    @property
    def threshold(self) -> float:
        return float(self.calibration["threshold"])

    def summary(self) -> dict:
        return summarize(self.metadata(), len(self.embeddings), len(self.portraits))

    def details(self) -> dict:
        """Everything a profile page shows, JSON-ready: the summary, engine, calibration, training report, and
        which accepted photo each reference portrait was taken from."""
        accepted = [p.get("path") for p in self.report.get("photos", []) if p.get("verdict") == "accepted"]
        portraits = [
            {"index": index, "photo": accepted[photo] if photo < len(accepted) else None}
            for index, photo in enumerate(np.asarray(self.reference_photos).tolist())
        ]
        return {
            **self.summary(),
            "engine_info": self.engine.as_dict(),
            "calibration": self.calibration,
            "report": self.report,
            "portraits": portraits,
        }

    # ----- file form -------------------------------------------------------------------------------------

    def metadata(self) -> dict[str, str]:
        def dumps(value):
            return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

        return {
            "format": FORMAT,
            "format_version": str(1 if self.kind == PERSON else FORMAT_VERSION),
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "created": self.created,
            "engine": dumps(self.engine.as_dict()),
            "calibration": dumps(self.calibration),
            "report": dumps(self.report),
        }

    def tensors(self) -> dict[str, np.ndarray]:
        optional = {
            "landmarks": self.landmarks,
            "pose": self.pose,
            "faces_512": self.faces_512,
            "impostors": self.impostors,
            "large_portraits": self.large_portraits,
            "large_references": self.large_references,
        }
        return {
            "embeddings": np.asarray(self.embeddings, np.float32),
            "centroid": np.asarray(self.centroid, np.float32),
            "crops": np.asarray(self.crops, np.uint8),
            "quality": np.asarray(self.quality, np.float32),
            "portraits": np.asarray(self.portraits, np.uint8),
            "reference_photos": np.asarray(self.reference_photos, np.int32),
            **{
                name: np.asarray(value, _OPTIONAL_DTYPES.get(name, np.uint8))
                for name, value in optional.items()
                if value is not None
            },
        }

    def write(self, handle) -> None:
        """Serialise as safetensors into an open binary file."""
        tensors = self.tensors()
        header: dict = {"__metadata__": self.metadata()}
        offset = 0
        for name in sorted(tensors):
            array = tensors[name]
            header[name] = {
                "dtype": _DTYPES[array.dtype],
                "shape": list(array.shape),
                "data_offsets": [offset, offset + array.nbytes],
            }
            offset += array.nbytes
        encoded = json.dumps(header, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        encoded += b" " * (-len(encoded) % 8)
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for name in sorted(tensors):
            handle.write(np.ascontiguousarray(tensors[name]).tobytes())

    @classmethod
    def read(cls, path: Path) -> Profile:
        """Load and check a profile file; anything malformed is a `ProfileFormatError` naming the file (by its
        name: messages can reach a browser, which has no business knowing the folder's absolute path)."""

        def wanted(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
            # a version-1 cat or dog file holds zero landmarks and poses: they are left where they lie
            required = _TENSORS + (_FACE_TENSORS if kind == PERSON else ())
            return required, _OPTIONAL + (_FACE_OPTIONAL if kind == PERSON else ())

        fields, tensors = _read_checked(path, wanted)
        profile = cls(
            id=fields["id"],
            name=fields["name"],
            kind=fields["kind"],
            created=fields["created"],
            engine=fields["engine"],
            calibration=fields["calibration"],
            report=fields["report"],
            **tensors,
        )
        profile.check()
        return profile

    def check(self) -> None:
        count = len(self.embeddings)
        face = (self.landmarks, self.pose)
        consistent = (
            count >= 1
            and self.embeddings.ndim == 2
            and self.centroid.shape == (self.embeddings.shape[1],)
            and len(self.crops) == len(self.quality) == count
            and len(self.portraits) == len(self.reference_photos) >= 1
            and "threshold" in self.calibration
            and (self.faces_512 is None or len(self.faces_512) == count)
            and (self.impostors is None or self.impostors.shape[1:] == self.embeddings.shape[1:])
            and large_consistent(self.large_portraits, self.large_references, len(self.portraits))
            and (
                all(t is not None and len(t) == count for t in face)
                if self.kind == PERSON
                else all(t is None for t in face) and self.faces_512 is None
            )
        )
        if not consistent:
            raise ProfileFormatError(f"profile {self.id!r} is inconsistent (tensor shapes disagree); retrain it")


@dataclass(frozen=True)
class Vectors:
    """A profile as a look-alike cohort needs it: its header and embeddings, read without the crops, faces and
    portraits that make up most of the file (`crops` only when asked for: re-embedding with another engine)."""

    id: str
    name: str
    kind: str
    created: str
    engine: EngineInfo
    calibration: dict
    embeddings: np.ndarray
    centroid: np.ndarray
    impostors: np.ndarray | None = None
    crops: np.ndarray | None = None

    @property
    def threshold(self) -> float:
        return float(self.calibration["threshold"])

    @classmethod
    def read(cls, path: Path, crops: bool = False) -> Vectors:
        """Only the tensors named are read from the file (safetensors reads each tensor on request)."""
        fields, tensors = _read_checked(
            path, lambda kind: (("embeddings", "centroid") + (("crops",) if crops else ()), ("impostors",))
        )
        vectors = cls(**{k: fields[k] for k in ("id", "name", "kind", "created", "engine", "calibration")}, **tensors)
        embeddings, impostors = vectors.embeddings, vectors.impostors
        if not (
            embeddings.ndim == 2
            and len(embeddings) >= 1
            and vectors.centroid.shape == (embeddings.shape[1],)
            and (impostors is None or impostors.shape[1:] == embeddings.shape[1:])
            and (vectors.crops is None or len(vectors.crops) == len(embeddings))
        ):
            raise ProfileFormatError(f"profile {vectors.id!r} is inconsistent (tensor shapes disagree); retrain it")
        return vectors


def _read_checked(path: Path, wanted) -> tuple[dict, dict[str, np.ndarray]]:
    """A profile file's checked header fields (the engine parsed) and the tensors `wanted(kind)` names: (required,
    optional). Anything malformed is a `ProfileFormatError` naming the file."""
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise ProfileFormatError(f"is not an Identity Layer profile (no '{FORMAT}' marker)")
            version = int(metadata.get("format_version", "0"))
            if version > FORMAT_VERSION:
                raise ProfileFormatError(f"uses profile format {version}; update the Identity Layer pack")
            fields = header(metadata)
            required, optional = wanted(fields["kind"])
            missing = [name for name in required if name not in handle.keys()]
            if missing:
                raise ProfileFormatError(f"lacks the tensors {missing}")
            tensors = {name: handle.get_tensor(name) for name in required + optional if name in handle.keys()}
        fields["engine"] = EngineInfo.from_dict(fields["engine"])
    except ProfileFormatError as exc:
        raise ProfileFormatError(f"{path.name} {exc}") from None
    except Exception as exc:  # safetensors and json raise assorted types for damaged files
        raise ProfileFormatError(f"{path.name} is not a readable profile file ({type(exc).__name__}: {exc})") from None
    return fields, tensors


def large_consistent(large: np.ndarray | None, references: np.ndarray | None, portraits: int) -> bool:
    """Large portraits come with the indices of the portraits they enlarge, each a different one."""
    if large is None or references is None:
        return large is None and references is None
    indices = np.asarray(references).tolist()
    return (
        large.ndim == 4
        and large.shape[3] == 3
        and len(large) == len(indices) == len(set(indices))
        and all(0 <= i < portraits for i in indices)
    )


def header(metadata: dict[str, str]) -> dict:
    """A file's header metadata, parsed and type-checked: anyone can drop a file in the profile folder, and a
    listing, a picker or a page must never trip over (or render) what a hand-made header holds."""

    def parsed(key: str, default: str) -> dict:
        value = json.loads(metadata.get(key, default))
        if not isinstance(value, dict):
            raise ProfileFormatError(f"has '{key}' metadata that is not a JSON object")
        return value

    try:
        profile_id, name = validate_id(metadata.get("id")), metadata.get("name")
        if clean_name(name) != name:
            raise IdentityError("untrimmed name")
    except IdentityError as exc:
        raise ProfileFormatError(f"has an unusable id or name ({exc})") from None
    fields = {
        "id": profile_id,
        "name": name,
        "kind": metadata.get("kind", "person"),
        "created": metadata.get("created", ""),
        "engine": parsed("engine", "{}"),
        "calibration": parsed("calibration", "{}"),
        "report": parsed("report", "{}"),
    }
    threshold = fields["calibration"].get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ProfileFormatError(f"has a threshold that is not a number ({str(threshold)[:40]!r})")
    photos = fields["report"].get("photos", [])
    texts = (
        fields["kind"],
        fields["created"],
        fields["engine"].get("name", ""),
        fields["calibration"].get("confidence", ""),
    )
    if (
        not all(isinstance(text, str) for text in texts)
        or not isinstance(photos, list)
        or not all(isinstance(p, dict) for p in photos)
    ):
        raise ProfileFormatError("has metadata values of the wrong type")
    return fields


def summarize(metadata: dict[str, str], accepted: int, references: int) -> dict:
    """What listings show, from a file's header alone: small and JSON-ready."""
    fields = header(metadata)
    calibration = fields["calibration"]
    return {
        "id": fields["id"],
        "name": fields["name"],
        "kind": fields["kind"],
        "engine": fields["engine"].get("name"),
        "created": fields["created"],
        "photos_accepted": int(accepted),
        "photos_rejected": sum(1 for p in fields["report"].get("photos", []) if p.get("verdict") == "rejected"),
        "references": int(references),
        "threshold": calibration.get("threshold"),
        "confidence": calibration.get("confidence"),
    }
