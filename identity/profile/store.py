"""ProfileStore: one `.safetensors` per profile in a folder; atomic writes, safe ids, lookup by id or name."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from safetensors import safe_open

from ..errors import InvalidProfileId, ProfileExists, ProfileFormatError, ProfileNotFound
from .ids import ID_PATTERN, clean_name, validate_id
from .profile import FORMAT, Profile, summarize

log = logging.getLogger(__name__)

SUFFIX = ".safetensors"


class ProfileStore:
    def __init__(self, folder):
        self.folder = Path(folder).expanduser().resolve()
        self._cache: dict[str, tuple[tuple, Profile]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ProfileStore({str(self.folder)!r})"

    def path(self, profile_id: str) -> Path:
        """The file of a profile id; the id is validated first, and the result is checked to stay inside."""
        path = self.folder / f"{validate_id(profile_id)}{SUFFIX}"
        if path.resolve().parent != self.folder:
            raise InvalidProfileId(f"profile id {profile_id!r} points outside {self.folder}")
        return path

    def ids(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(
            p.name[: -len(SUFFIX)]
            for p in self.folder.iterdir()
            if p.name.endswith(SUFFIX) and ID_PATTERN.fullmatch(p.name[: -len(SUFFIX)]) and p.is_file()
        )

    def exists(self, profile_id: str) -> bool:
        return self.path(profile_id).is_file()

    def save(self, profile: Profile, overwrite: bool = False) -> Path:
        """Write atomically: a temporary file in the same folder, flushed to disk, then renamed over."""
        profile.check()
        target = self.path(profile.id)
        if target.exists() and not overwrite:
            raise ProfileExists(f"profile {profile.id!r} already exists in {self.folder}")
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=self.folder, prefix=f".{profile.id}.", suffix=".tmp", delete=False)
        try:
            with handle:
                profile.write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(handle.name, target)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
        _fsync_folder(self.folder)
        with self._lock:
            self._cache.pop(profile.id, None)
        return target

    def load(self, profile_id: str) -> Profile:
        path = self.path(profile_id)
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise ProfileNotFound(self._not_found(profile_id)) from None
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            cached = self._cache.get(profile_id)
            if cached and cached[0] == stamp:
                return cached[1]
        profile = Profile.read(path)
        if profile.id != profile_id:
            raise ProfileFormatError(f"{path} holds profile {profile.id!r}, not {profile_id!r}; rename the file back")
        with self._lock:
            self._cache[profile_id] = (stamp, profile)
        return profile

    def portrait(self, profile_id: str, index: int = 0):
        """One reference portrait (0 is the thumbnail), read alone from the file: a gallery asks for many, and
        loading each whole profile for them would read every crop and embedding too."""
        path = self.path(profile_id)
        if not path.is_file():
            raise ProfileNotFound(self._not_found(profile_id))
        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
                portraits = handle.get_slice("portraits")
                count = portraits.get_shape()[0]
                if metadata.get("id") != profile_id or metadata.get("format") != FORMAT:
                    raise ValueError("not this profile's file")
                if 0 <= index < count:
                    return portraits[index : index + 1][0]
        except Exception as exc:  # safetensors raises assorted types for damaged files
            raise ProfileFormatError(f"{path} is not a readable profile file ({exc}); retrain it") from None
        raise ProfileNotFound(f"profile {profile_id!r} has no reference portrait {index}; its portraits are numbered "
                              f"0 to {count - 1}")

    def summaries(self) -> list[dict]:
        """One summary per readable profile (headers only), sorted by name; damaged files are skipped and logged."""
        found = []
        for profile_id in self.ids():
            path = self.path(profile_id)
            try:
                with safe_open(str(path), framework="numpy") as handle:
                    metadata = handle.metadata() or {}
                    accepted = handle.get_slice("embeddings").get_shape()[0]
                    references = handle.get_slice("portraits").get_shape()[0]
                if metadata.get("id") != profile_id:
                    raise ValueError("file name and profile id differ")
                found.append(summarize(metadata, accepted, references))
            except Exception as exc:  # a damaged file must not hide the others
                log.warning("skipping %s: not a readable profile (%s)", path, exc)
        return sorted(found, key=lambda s: (s["name"].lower(), s["id"]))

    def resolve(self, id_or_name: str) -> str:
        """The id for a profile id or a unique display name (case-insensitive)."""
        value = str(id_or_name).strip()
        if ID_PATTERN.fullmatch(value) and self.exists(value):
            return value
        matches = [s["id"] for s in self.summaries() if s["name"].lower() == value.lower()]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ProfileNotFound(f"several profiles are named {value!r} ({', '.join(matches)}); use the id")
        if any(mark in value for mark in ("/", "\\", "..", "\0")):
            raise InvalidProfileId(f"invalid profile id {value[:80]!r}: ids and names never contain paths")
        raise ProfileNotFound(self._not_found(value))

    def rename(self, profile_id: str, new_name: str) -> Profile:
        """Give a profile a new display name; the id (and so its file) stays. Rewritten atomically."""
        name = clean_name(new_name)
        profile = self.load(profile_id)
        taken = [s["id"] for s in self.summaries() if s["name"].lower() == name.lower() and s["id"] != profile_id]
        if taken:
            raise ProfileExists(f"a profile named {name!r} already exists ({taken[0]}); choose another name")
        renamed = replace(profile, name=name)
        self.save(renamed, overwrite=True)
        return renamed

    def delete(self, profile_id: str) -> None:
        path = self.path(profile_id)
        try:
            path.unlink()
        except FileNotFoundError:
            raise ProfileNotFound(self._not_found(profile_id)) from None
        with self._lock:
            self._cache.pop(profile_id, None)

    def _not_found(self, value: str) -> str:
        known = ", ".join(f"{s['name']} ({s['id']})" for s in self.summaries()[:10]) or "none yet"
        return f"no profile {value!r} in {self.folder} (profiles: {known})"


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
