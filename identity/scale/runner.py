"""`batch-score`: plan what is missing from RESULTS, score it in this process or on Ray, commit, summarise."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import IdentityError
from ..faces import FaceEngine
from ..images import collect_photos
from ..matching import cohort
from ..paths import writable_folder
from ..profile import Profile, ProfileStore
from ..text import printable, shown_path
from .cluster import require_ray, score_on_ray
from .results import ResultsFolder
from .worker import SCORED, UNREADABLE, ImageScorer, file_sha256

#: A text file among the sources lists image paths, one a line (relative ones are relative to the list's folder).
LIST_SUFFIXES = (".txt", ".lst")


@dataclass
class BatchOptions:
    sources: list[str]
    out: Path
    ray: str | None = None  # None: this process; "auto": a local Ray runtime; else a cluster address
    workers: int | None = None  # Ray actors (default: one per CPU of the cluster)
    chunk: int = 16  # images per worker call
    part_size: int = 1000  # images per Parquet part
    min_similarity: float = 0.0
    copy_matches: Path | None = None
    cohort: bool = True  # tell faces apart from every other known profile in the store (False: a single-profile check)


def expand_sources(sources: Iterable[str]) -> list[str]:
    """Absolute image paths, each once, in the order given: folders recursively, list files line by line."""
    paths: dict[str, None] = {}
    for source in map(Path, sources):
        if source.is_dir():
            found = collect_photos([source], recursive=True)
        elif source.is_file() and source.suffix.lower() in LIST_SUFFIXES:
            lines = (line.strip() for line in source.read_text(encoding="utf-8").splitlines())
            found = [source.parent / line for line in lines if line and not line.startswith("#")]
        elif source.is_file():
            found = [source]
        else:
            raise IdentityError(f"no such file or folder: {source}; pass image files, folders or a .txt list of paths")
        paths.update((os.path.abspath(p), None) for p in found)
    return list(paths)


def batch_score(
    options: BatchOptions,
    engine: FaceEngine,
    engine_spec: str,
    provider: str,
    profiles: list[Profile],
    store: ProfileStore,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> dict:
    """Score every source image not yet in RESULTS against the profiles; returns the summary of all of RESULTS.

    `engine` is loaded here (it names the results' embedding space); workers load `engine_spec` themselves and
    refuse to run when theirs differs."""
    known = cohort(store, profiles) if options.cohort else None  # summaries; another engine's are re-embedded
    results = ResultsFolder(
        options.out,
        {"name": engine.name, "key": engine.info.key},
        [{"id": p.id, "name": p.name, "created": p.created} for p in profiles],
        options.part_size,
        None if known is None else [{"id": s["id"], "created": s["created"]} for s in known],
    )
    paths = expand_sources(options.sources)
    if options.ray is not None:
        require_ray()  # before anything is written
    if options.copy_matches is not None:
        writable_folder(options.copy_matches, "matching images")
    results.open()
    try:
        pending = _missing(paths, results)
        scorer = {
            "engine": engine_spec,
            "provider": provider,
            "engine_key": engine.info.key,
            "profiles": {p.id: store.path(p.id).read_bytes() for p in profiles},
            "cohort": None if known is None else {s["id"]: store.path(s["id"]).read_bytes() for s in known},
        }
        where = "this process" if options.ray is None else f"Ray ({options.ray})"
        log(
            f"scoring {len(pending)} images in {where}; {len(paths) - len(pending)} already in {shown_path(options.out)}"
        )
        progress = Progress(len(pending), log)
        for rows in _score(pending, scorer, options, log):  # on any exit, close() below commits the rows received
            new = results.add(rows)  # a retried task's rows count once, unreadable ones included
            progress.advance(len(new), sum(row["status"] == UNREADABLE for row in new))
        results.flush()
        progress.finish()
        images = results.images()  # read once: RESULTS may hold millions of rows
        summary = summarise(results, images, profiles, options.min_similarity)
        summary["this_run"] = {
            "scored": progress.done,
            "skipped": len(paths) - len(pending),
            "seconds": round(progress.elapsed, 2),
            "startup_seconds": round(progress.startup, 2),
            "images_per_second": round(progress.pace, 2),
            "where": where,
        }
        if options.copy_matches is not None:
            summary["copied"] = copy_matches(images, options.min_similarity, options.copy_matches, log)
        return summary
    finally:
        results.close()


def _missing(paths: list[str], results: ResultsFolder) -> list[str]:
    """The paths without a committed row for their current content (hashed here only where a row exists)."""
    known = [p for p in paths if p in results.done]
    with ThreadPoolExecutor(8) as pool:
        hashes = dict(zip(known, pool.map(file_sha256, known)))
    return [p for p in paths if p not in hashes or not results.is_done(p, hashes[p])]


def _score(paths: list[str], scorer: dict, options: BatchOptions, log: Callable[[str], None]) -> Iterator[pa.Table]:
    if not paths:
        return
    if options.ray is not None:
        yield from score_on_ray(options.ray, paths, options.chunk, scorer, options.workers, log)
        return
    local = ImageScorer(**scorer)
    for start in range(0, len(paths), options.chunk):
        yield local(pa.table({"path": paths[start : start + options.chunk]}))


class Progress:
    """Images per second and the time left, at most once a second and once at the end. Both use the pace since
    the first answer, so that starting the workers does not skew them."""

    def __init__(self, total: int, log: Callable[[str], None]):
        self.total, self.log = total, log
        self.done = self.failed = 0
        self.start = self._shown = time.monotonic()
        self._first: tuple[float, int] | None = None  # (time, images done) at the first answer
        self._last = self.start
        self._unshown = False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    @property
    def startup(self) -> float:
        """Seconds until the first answer: loading the engine, starting Ray and its workers."""
        return (self._first[0] if self._first else self._last) - self.start

    @property
    def pace(self) -> float:
        """Images per second from the first answer to the latest (from the start where one answer was all)."""
        if self._first is None or self._last <= self._first[0]:
            return self.done / (self._last - self.start) if self._last > self.start else 0.0
        return (self.done - self._first[1]) / (self._last - self._first[0])

    def advance(self, done: int, failed: int) -> None:
        self.done += done
        self.failed += failed
        self._last = time.monotonic()
        self._unshown = True
        if self._first is None:
            self._first = (self._last, self.done)
        if self._last - self._shown >= 1.0:
            self._show()

    def finish(self) -> None:
        if self._unshown or not self.done:
            self._show()

    def _show(self) -> None:
        self._shown = time.monotonic()
        self._unshown = False
        pace = self.pace
        eta = f"{(self.total - self.done) / pace:.0f} s" if pace > 0 else ("0 s" if self.done >= self.total else "—")
        self.log(f"{self.done}/{self.total} images ({pace:.1f} images/s, ETA {eta}), {self.failed} unreadable")


def summarise(results: ResultsFolder, images: pa.Table, profiles: list[Profile], min_similarity: float) -> dict:
    """Everything in RESULTS (`images`: its images table): images, faces, matches per profile and in all, and the
    failures with their reasons. Counted with Arrow's compute functions: RESULTS may hold millions of rows."""
    scored = images.filter(pc.equal(images.column("status"), SCORED))
    failed = images.filter(pc.equal(images.column("status"), UNREADABLE))
    subjects = scored.column("subjects")
    return {
        "results": str(results.folder),
        "engine": results.engine,
        "profiles": {p.id: p.name for p in profiles},
        "images": images.num_rows,
        "scored": scored.num_rows,
        "faces": pc.sum(scored.column("faces")).as_py() or 0,
        "min_similarity": min_similarity,
        "matches": {p.id: _count_clearing(pc.struct_field(subjects, p.id), min_similarity) for p in profiles},
        "matches_all": _count_clearing(scored.column("score"), min_similarity),
        "unreadable": failed.num_rows,
        "failures": failed.select(["path", "reason"]).slice(0, 20).to_pylist(),
    }


def _clearing(similarity, min_similarity: float):
    """A subject counts when found (assigned above its profile's threshold, so > 0) and at least `min_similarity`."""
    return pc.and_(pc.greater(similarity, 0.0), pc.greater_equal(similarity, min_similarity))


def _count_clearing(similarity, min_similarity: float) -> int:
    return pc.sum(pc.cast(_clearing(similarity, min_similarity), pa.int64())).as_py() or 0


def describe(summary: dict) -> str:
    """The summary for a terminal."""
    run = summary["this_run"]
    lines = [
        f"{shown_path(summary['results'])}: {summary['images']} images, {summary['faces']} faces, {summary['unreadable']} "
        f"unreadable ({run['scored']} scored now at {run['images_per_second']} images/s, {run['skipped']} "
        "already there)"
    ]
    lines += [
        f"  {summary['profiles'][pid]} ({pid}): found in {count} images" for pid, count in summary["matches"].items()
    ]
    lines.append(
        f"  all profiles found: {summary['matches_all']} images"
        + (f", {summary['copied']} copied" if "copied" in summary else "")
    )
    lines += [f"  ✗ {shown_path(failure['path'])}: {printable(failure['reason'])}" for failure in summary["failures"]]
    return "\n".join(lines)


def copy_matches(images: pa.Table, min_similarity: float, folder: Path, log: Callable[[str], None]) -> int:
    """Copy each image whose weakest subject clears the bar into `folder` as NAME-SHA8.EXT; returns how many are
    there now. Idempotent (a resumed run copies only what is missing); a file changed since it was scored is left."""
    matches = images.filter(
        pc.and_(pc.equal(images.column("status"), SCORED), _clearing(images.column("score"), min_similarity))
    )
    copied = 0
    for row in matches.select(["path", "sha256"]).to_pylist():
        source = Path(row["path"])
        target = folder / f"{source.stem}-{row['sha256'][:8]}{source.suffix}"
        if not target.exists():
            try:
                data = source.read_bytes()
            except OSError as exc:
                log(f"not copied: {shown_path(source)} ({exc.strerror or exc})")
                continue
            if hashlib.sha256(data).hexdigest() != row["sha256"]:
                log(f"not copied: {shown_path(source)} (changed since it was scored; run again to score it)")
                continue
            temporary = target.with_name(f".{target.name}.tmp")
            temporary.write_bytes(data)
            os.replace(temporary, target)
        copied += 1
    return copied
