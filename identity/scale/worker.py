"""The worker: reads images, scores each with the one scorer (`identity.scoring`), returns one row per image.

The same class runs in this process and as a Ray actor, so both modes produce the same rows. Each image is scored
on its own (images run side by side on threads): a recognizer's results depend, in the last bits, on which faces
share its batch, and an image must score the same whichever images a run happens to group it with. Profiles
arrive as their files' bytes, so workers need no access to the profile folder.
"""

from __future__ import annotations

import hashlib
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from ..errors import IdentityError, ImageError
from ..faces import load_engine
from ..faces.engine import DETECT_WORKERS
from ..images import open_image_file, read_image_file
from ..profile import ProfileStore
from ..scoring import Scorer

SCORED = "scored"
UNREADABLE = "unreadable"

#: What a worker returns: one row per image, its faces nested, so an image is always committed whole.
ROW_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("sha256", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("score", pa.float64()),
        ("subjects", pa.list_(pa.float64())),  # per profile, in the run's order: its face's similarity, 0 when absent
        (
            "faces",
            pa.list_(
                pa.struct(
                    [
                        ("bbox", pa.list_(pa.float64())),
                        ("profile_id", pa.string()),
                        ("similarity", pa.float64()),
                        ("scores", pa.list_(pa.float64())),  # per profile, in the run's order
                        (
                            "kind",
                            pa.string(),
                        ),  # "person" (a face), or "cat" / "dog" (an animal, when a pet profile is asked for)
                        (
                            "measures",
                            pa.string(),
                        ),  # what the similarities measure: identity for faces, appearance for pets
                        ("next_name", pa.string()),  # the nearest other known profile (the cohort included)
                        ("next_similarity", pa.float64()),
                        ("margin", pa.float64()),  # the lead over it
                        ("refused", pa.string()),  # why a face clearing a threshold was refused (a look-alike)
                    ]
                )
            ),
        ),
    ]
)


def scorer_from_bytes(engine, profiles: dict[str, bytes], cohort: dict[str, bytes] | None) -> Scorer:
    """The scorer of the profiles whose files' bytes are given, told apart from the `cohort` files' profiles (None:
    the look-alike rule off); each file read and checked by the one profile reader, from a store of them all."""
    with tempfile.TemporaryDirectory(prefix="identity-profiles-") as folder:
        store = ProfileStore(folder)
        for profile_id, data in {**profiles, **(cohort or {})}.items():
            store.path(profile_id).write_bytes(data)
        return Scorer([store.load(i) for i in profiles], engine, None, None if cohort is None else store)


class ImageScorer:
    """Holds the face engine and the profiles; called with a batch of image paths (a `path` column). `cohort`: the
    other known profiles' files, whom faces are told apart from (None: the look-alike rule off)."""

    def __init__(
        self,
        engine: str,
        provider: str,
        engine_key: str,
        profiles: dict[str, bytes],
        cohort: dict[str, bytes] | None = None,
    ):
        self.engine = load_engine(engine, provider)
        if self.engine.info.key != engine_key:
            raise IdentityError(
                f"this worker's face engine {self.engine.name!r} is not the one the run uses ({engine_key}); "
                "install the same face models on every node"
            )
        self.scorer = scorer_from_bytes(self.engine, profiles, cohort)  # the candidates (and any pet engine), once
        self.ids = list(profiles)
        self._pool = ThreadPoolExecutor(DETECT_WORKERS, thread_name_prefix="batch-score")

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = list(self._pool.map(self.score, batch.column("path").to_pylist()))
        return pa.Table.from_pylist(rows, schema=ROW_SCHEMA)

    def score(self, path: str) -> dict:
        """The image's row; one that cannot be read gets a row with the reason."""
        try:
            data = read_image_file(path)  # a regular file within the byte budget, as `score` reads it
        except ImageError as exc:
            return _failed(path, "", exc.reason)
        except OSError as exc:
            return _failed(path, "", f"cannot read the file ({exc.strerror or exc})")
        sha = hashlib.sha256(data).hexdigest()
        try:
            [result] = self.scorer.score_files([(path, data)])  # decoded as the score command decodes files
        except ImageError as exc:
            return _failed(path, sha, exc.reason)
        return {
            "path": path,
            "sha256": sha,
            "status": SCORED,
            "reason": None,
            "width": result.width,
            "height": result.height,
            "score": result.weakest(self.ids),
            "subjects": list(result.subject_scores(self.ids).values()),
            "faces": [
                {
                    "bbox": list(face.bbox),
                    "profile_id": face.profile_id,
                    "similarity": face.similarity,
                    "scores": [face.scores.get(i) for i in self.ids],
                    "kind": face.kind,
                    "measures": face.measures,
                    "next_name": None if face.nearest is None else face.nearest[1],
                    "next_similarity": None if face.nearest is None else face.nearest[2],
                    "margin": face.margin,
                    "refused": face.refused,
                }
                for face in result.faces
            ],
        }


def _failed(path: str, sha: str, reason: str) -> dict:
    return {
        "path": path,
        "sha256": sha,
        "status": UNREADABLE,
        "reason": reason,
        "width": None,
        "height": None,
        "score": None,
        "subjects": None,
        "faces": [],
    }


def file_sha256(path: str) -> str:
    """The content hash a worker records for a file ("" when it cannot be read, or is no image file a worker would
    read: a FIFO, a device), computed without loading it whole."""
    digest = hashlib.sha256()
    try:
        with open_image_file(path) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except (ImageError, OSError):
        return ""
    return digest.hexdigest()
