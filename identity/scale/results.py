"""The RESULTS folder: Parquet parts written atomically, so that a run can stop anywhere and resume exactly once.

    RESULTS/batch.json          what the rows mean: the engine and the profiles (a resume must use the same)
    RESULTS/images/part-N.parquet   one row per image: path, sha256, status, reason, size, faces, score, subjects
    RESULTS/faces/part-N.parquet    one row per face: path, sha256, face, bbox, profile_id, similarity, scores

Both folders read as one table each (`pandas.read_parquet("RESULTS/faces")`). A part is written to a temporary
name and renamed into place, faces first and images last: the images file is the commit. A faces part without
its images part (a run killed between the two renames) is removed when the folder is next opened, and its
images are scored again. Rows are keyed by (path, sha256): a key already committed is never written again.

A folder of format 2 (written before the look-alike rule: each profile's threshold alone) is resumed as it was
scored, with the rule off (`--no-cohort`): its faces parts gain format 3's columns, empty, and its manifest then
says format 3. Resumed with the rule on, it is refused with that fix; older formats are refused with a sentence.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import IdentityError
from ..locks import holding
from ..paths import writable_folder

FORMAT = "identity-layer.batch-results"
FORMAT_VERSION = 3  # 2: faces carry kind and measures (pets); 3: the next known person, margin, refusal
#: The faces columns format 3 added: a format-2 folder resumed gains them, empty (`ResultsFolder._upgrade`).
ADDED_IN_3 = ("next_name", "next_similarity", "margin", "refused")
MANIFEST = "batch.json"

#: A part is written at the latest this many seconds after its first row, bounding the work a crash loses.
FLUSH_SECONDS = 30.0


def image_schema(ids: list[str]) -> pa.Schema:
    return pa.schema(
        [
            ("path", pa.string()),
            ("sha256", pa.string()),
            ("status", pa.string()),
            ("reason", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("faces", pa.int32()),
            ("score", pa.float64()),
            ("subjects", pa.struct([(i, pa.float64()) for i in ids])),
            ("engine", pa.string()),
        ]
    )


def face_schema(ids: list[str]) -> pa.Schema:
    return pa.schema(
        [
            ("path", pa.string()),
            ("sha256", pa.string()),
            ("face", pa.int32()),
            ("bbox", pa.list_(pa.float64())),
            ("profile_id", pa.string()),
            ("similarity", pa.float64()),
            ("scores", pa.struct([(i, pa.float64()) for i in ids])),
            ("kind", pa.string()),
            ("measures", pa.string()),
            ("next_name", pa.string()),
            ("next_similarity", pa.float64()),
            ("margin", pa.float64()),
            ("refused", pa.string()),
            ("engine", pa.string()),
        ]
    )


class ResultsFolder:
    """Opens (or creates) RESULTS for one engine and set of profiles, and commits worker rows exactly once."""

    def __init__(
        self, folder: Path, engine: dict, profiles: list[dict], part_size: int = 1000, cohort: list[dict] | None = None
    ):
        """`cohort`: the other known profiles the faces were told apart from (None: the look-alike rule off);
        results of one folder all hold the same."""
        self.folder = Path(folder)
        self.manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "engine": engine,
            "profiles": profiles,
            "cohort": cohort,
        }
        self.ids = [p["id"] for p in profiles]
        self.engine = engine["name"]
        self.part_size = part_size
        self.done: dict[str, set[str]] = {}  # path -> content hashes committed
        self._pending: list[dict] = []
        self._pending_since = 0.0
        self._next_part = 0
        self._lock = None

    # ----- opening ----------------------------------------------------------------------------------------

    def open(self) -> ResultsFolder:
        writable_folder(self.folder, "batch results")
        for sub in ("images", "faces"):
            (self.folder / sub).mkdir(exist_ok=True)
        self._take_lock()
        self._check_manifest()
        numbers = [int(p.stem.split("-")[1]) for sub in ("images", "faces") for p in self._parts(sub)]
        self._next_part = max(numbers, default=-1) + 1  # a part name is never used twice, not even an orphan's
        self._remove_leftovers()
        for part in self._parts("images"):
            table = pq.read_table(part, columns=["path", "sha256"])
            for path, sha in zip(table.column("path").to_pylist(), table.column("sha256").to_pylist()):
                self.done.setdefault(path, set()).add(sha)
        return self

    def _take_lock(self) -> None:
        """One writer per folder, for as long as it is open."""
        self._lock = contextlib.ExitStack()
        try:
            self._lock.enter_context(holding(self.folder / ".lock", wait=False))
        except BlockingIOError:
            self._lock = None
            raise IdentityError(
                f"another batch-score is writing {self.folder}; wait for it or use another --out"
            ) from None

    def _check_manifest(self) -> None:
        path = self.folder / MANIFEST
        if path.is_file():
            try:
                found = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise IdentityError(f"{path} is not readable ({exc}); use a new --out folder") from None
            if found != self.manifest and self._older(found):
                self._upgrade()
                _write_atomic(path, json.dumps(self.manifest, indent=2).encode())  # last: the parts are upgraded
                return
            if found != self.manifest:
                raise IdentityError(
                    f"{self.folder} holds results for engine {found.get('engine', {}).get('name')!r} and profiles "
                    f"{[p.get('id') for p in found.get('profiles', [])]}, told apart from "
                    f"{[p.get('id') for p in found.get('cohort') or []]}; resume it with the same --engine and "
                    "--profile options and the same other profiles in the store (and --no-cohort if it was given), "
                    "or choose a new --out folder"
                )
            return
        if any(self._parts("images")):
            raise IdentityError(f"{self.folder} has result files but no {MANIFEST}; choose a new --out folder")
        _write_atomic(path, json.dumps(self.manifest, indent=2).encode())

    def _older(self, found: dict) -> bool:
        """Whether `found` is a manifest of an older format this folder's run can resume (format 2, of the same
        engine and profiles, scored without the look-alike rule: resumed so); any other older one is refused."""
        version = found.get("format_version")
        if found.get("format") != FORMAT or version == FORMAT_VERSION:
            return False
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise IdentityError(f"{self.folder} holds results of format {version!r}; update the pack to resume it")
        if version < 2:
            raise IdentityError(
                f"{self.folder} holds results of format {version} (an older pack's, without pets' kinds); this pack "
                f"resumes format 2 and {FORMAT_VERSION}: choose a new --out folder"
            )
        same = found.get("engine") == self.manifest["engine"] and found.get("profiles") == self.manifest["profiles"]
        if same and self.manifest["cohort"] is not None:
            raise IdentityError(
                f"{self.folder} was scored before the look-alike rule (results format 2: each profile's threshold "
                "alone); resume it with --no-cohort, or choose a new --out folder to score every image with the rule"
            )
        return same

    def _upgrade(self) -> None:
        """Each format-2 faces part rewritten with format 3's added columns, empty (atomically, one by one: a run
        killed meanwhile upgrades the rest when resumed, the manifest being written after them)."""
        schema = face_schema(self.ids)
        for part in self._parts("faces"):
            table = pq.read_table(part)
            if all(name in table.column_names for name in ADDED_IN_3):
                continue
            columns = [
                table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
                for f in schema
            ]
            _write_atomic(part, _parquet(pa.Table.from_arrays(columns, schema=schema)))

    def _remove_leftovers(self) -> None:
        """Temporary files and faces parts whose images part (the commit) never arrived: a killed run's last part."""
        committed = {p.name for p in self._parts("images")}
        for folder in (self.folder, self.folder / "images", self.folder / "faces"):
            for leftover in folder.glob(".*.tmp"):
                leftover.unlink()
        for part in self._parts("faces"):
            if part.name not in committed:
                part.unlink()

    def _parts(self, sub: str) -> list[Path]:
        return sorted((self.folder / sub).glob("part-*.parquet"))

    # ----- committing ---------------------------------------------------------------------------------------

    def is_done(self, path: str, sha: str) -> bool:
        return sha in self.done.get(path, ())

    def add(self, rows: pa.Table) -> list[dict]:
        """Queue worker rows whose (path, sha256) is not committed yet; returns those (new) rows."""
        new = []
        for row in rows.to_pylist():
            if self.is_done(row["path"], row["sha256"]):
                continue  # a retried task's second answer, or an image listed twice
            self.done.setdefault(row["path"], set()).add(row["sha256"])
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.append(row)
            new.append(row)
        if len(self._pending) >= self.part_size or (
            self._pending and time.monotonic() - self._pending_since >= FLUSH_SECONDS
        ):
            self.flush()
        return new

    def flush(self) -> None:
        """Write the queued rows as one part: faces first, then images (the commit)."""
        if not self._pending:
            return
        name = f"part-{self._next_part:06d}.parquet"
        _write_atomic(self.folder / "faces" / name, _parquet(self._face_table(self._pending)))
        _write_atomic(self.folder / "images" / name, _parquet(self._image_table(self._pending)))
        self._next_part += 1
        self._pending = []

    def close(self) -> None:
        self.flush()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _image_table(self, rows: list[dict]) -> pa.Table:
        return pa.Table.from_pylist(
            [
                {
                    "path": r["path"],
                    "sha256": r["sha256"],
                    "status": r["status"],
                    "reason": r["reason"],
                    "width": r["width"],
                    "height": r["height"],
                    "faces": len(r["faces"]),
                    "score": r["score"],
                    "subjects": None if r["subjects"] is None else dict(zip(self.ids, r["subjects"])),
                    "engine": self.engine,
                }
                for r in rows
            ],
            schema=image_schema(self.ids),
        )

    def _face_table(self, rows: list[dict]) -> pa.Table:
        return pa.Table.from_pylist(
            [
                {
                    "path": r["path"],
                    "sha256": r["sha256"],
                    "face": number,
                    "bbox": face["bbox"],
                    "profile_id": face["profile_id"],
                    "similarity": face["similarity"],
                    "scores": dict(zip(self.ids, face["scores"])),
                    "kind": face["kind"],
                    "measures": face["measures"],
                    **{key: face[key] for key in ("next_name", "next_similarity", "margin", "refused")},
                    "engine": self.engine,
                }
                for r in rows
                for number, face in enumerate(r["faces"])
            ],
            schema=face_schema(self.ids),
        )

    # ----- reading --------------------------------------------------------------------------------------------

    def images(self) -> pa.Table:
        """Every committed image row."""
        parts = [pq.read_table(p, schema=image_schema(self.ids)) for p in self._parts("images")]
        return pa.concat_tables(parts) if parts else image_schema(self.ids).empty_table()


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _write_atomic(path: Path, data: bytes) -> None:
    """A temporary file in the same folder, flushed to disk, then renamed over: readers never see half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
