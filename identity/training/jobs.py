"""The training lifecycle, observable while it runs: VALIDATING → QUEUING → IN_PROGRESS → READY | ERROR.

A `TrainingJob` is what a callback receives and what a web route polls (`snapshot()`). Jobs are registered by
profile id, and a second job for an id whose training is still running is refused.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from enum import Enum

from ..errors import TrainingBusy
from ..profile import name_key
from .verdicts import PENDING, REJECTED


class Status(str, Enum):
    VALIDATING = "VALIDATING"
    QUEUING = "QUEUING"
    IN_PROGRESS = "IN_PROGRESS"
    READY = "READY"
    ERROR = "ERROR"

    @property
    def finished(self) -> bool:
        return self in (Status.READY, Status.ERROR)


class TrainingJob:
    def __init__(
        self, profile_id: str, name: str, total_photos: int, on_update: Callable[[TrainingJob], None] | None = None
    ):
        self.job_id = uuid.uuid4().hex[:12]
        self.profile_id = profile_id
        self.name = name
        self.status = Status.VALIDATING
        self.message = "checking photos"
        self.total_photos = total_photos
        self.done_photos = 0
        self.photos: list[dict] = []
        self.warnings: list[str] = []
        self.profile = None
        self.created = time.time()
        self.updated = self.created
        self._on_update = on_update

    def update(self, status: Status | None = None, message: str | None = None, done: int | None = None) -> None:
        if status is not None:
            self.status = status
        if message is not None:
            self.message = message
        if done is not None:
            self.done_photos = done
        if self.status == Status.ERROR:  # photos the job never got to: say so, rather than "pending" for ever
            self.photos = [
                {**p, "verdict": REJECTED, "code": "not_checked", "reason": f"not checked: {self.message}"}
                if p["verdict"] == PENDING
                else p
                for p in self.photos
            ]
        self.updated = time.time()
        if self._on_update is not None:
            self._on_update(self)

    @property
    def progress(self) -> float:
        """0..1 over the whole job; each stage owns a slice so that the bar never runs backwards."""
        share = self.done_photos / max(self.total_photos, 1)
        return {
            Status.VALIDATING: 0.1 * share,
            Status.QUEUING: 0.1,
            Status.IN_PROGRESS: 0.1 + 0.85 * share,
            Status.READY: 1.0,
            Status.ERROR: 1.0,
        }[self.status]

    def describe(self) -> str:
        """The readable report: each photo's verdict and reason, warnings, the outcome."""
        lines = [f"{'✓' if p['verdict'] == 'accepted' else '✗'} {p['path']}: {p['reason']}" for p in self.photos]
        lines += [f"warning: {w}" for w in self.warnings]
        outcome = f"profile {self.profile_id} ({self.name}): {self.status.value}, {self.message}"
        if self.profile is not None:
            calibration = self.profile.calibration
            outcome += f"; threshold {calibration['threshold']:.3f}, confidence {calibration['confidence']}"
            if "impostors" in calibration:  # profiles trained before the look-alike rule lack it
                outcome += (
                    f"; calibrated against {calibration['impostors']} impostor faces and "
                    f"{calibration['known_others']} other known profiles (margin {calibration['margin']:.3f})"
                )
        return "\n".join(lines + [outcome])

    def snapshot(self) -> dict:
        """JSON-ready state for polling and websocket pushes."""
        return {
            "job_id": self.job_id,
            "profile_id": self.profile_id,
            "name": self.name,
            "status": self.status.value,
            "message": self.message,
            "progress": round(self.progress, 4),
            "photos": list(self.photos),
            "warnings": list(self.warnings),
            "created": self.created,
            "updated": self.updated,
        }


class JobRegistry:
    """Running and recent jobs; one running job per profile id."""

    def __init__(self, keep: int = 100):
        self._lock = threading.Lock()
        self._jobs: dict[str, TrainingJob] = {}
        self._keep = keep

    def register(self, job: TrainingJob) -> None:
        with self._lock:
            for other in self._jobs.values():
                if other.status.finished:
                    continue
                if other.profile_id == job.profile_id:
                    raise TrainingBusy(
                        f"profile {job.profile_id!r} is already being trained (job {other.job_id}, {other.status.value}); "
                        "wait for it to finish"
                    )
                if name_key(other.name) == name_key(job.name):  # two new profiles of one name would both get saved
                    raise TrainingBusy(
                        f"a profile named {job.name!r} is already being trained (job {other.job_id}, "
                        f"{other.status.value}); wait for it to finish"
                    )
            self._jobs[job.job_id] = job
            finished = [j for j in self._jobs.values() if j.status.finished]
            for old in sorted(finished, key=lambda j: j.updated)[: max(0, len(self._jobs) - self._keep)]:
                del self._jobs[old.job_id]

    def unfinished(self) -> int:
        """How many jobs are checking photos, waiting for the engine or training."""
        with self._lock:
            return sum(not j.status.finished for j in self._jobs.values())

    def get(self, job_id: str) -> TrainingJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def for_profile(self, profile_id: str) -> TrainingJob | None:
        """The newest job of a profile."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.profile_id == profile_id]
        return max(jobs, key=lambda j: j.created) if jobs else None

    def training_name(self, name: str) -> TrainingJob | None:
        """The unfinished job that will save a profile of this name (in any case), if any."""
        with self._lock:
            return next(
                (j for j in self._jobs.values() if not j.status.finished and name_key(j.name) == name_key(name)), None
            )

    def running(self, profile_id: str) -> TrainingJob | None:
        """The unfinished job of a profile, if any: renaming or deleting under it would be undone or lost."""
        job = self.for_profile(profile_id)
        return job if job is not None and not job.status.finished else None

    def all(self) -> list[TrainingJob]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created)

    def clear(self) -> None:
        """Forget finished jobs (running ones stay: they still guard their profile against a second training)."""
        with self._lock:
            self._jobs = {k: j for k, j in self._jobs.items() if not j.status.finished}


#: The process-wide registry that the CLI, the nodes and the web routes share.
JOBS = JobRegistry()
