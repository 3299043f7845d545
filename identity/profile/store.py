"""ProfileStore: one `.safetensors` per profile in a folder; atomic writes, safe ids, lookup by id or name.

Anyone who can write to the folder can put anything there, so the store reads regular files only (a FIFO would
block a reader forever), never follows a link out of the folder, and skips a broken file (with one warning per
file and version) rather than let it hide the others.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from safetensors import safe_open

from ..cache import BoundedCache
from ..errors import InvalidProfileId, ProfileExists, ProfileFormatError, ProfileNotFound
from ..paths import writable_folder
from .ids import ID_PATTERN, clean_name, name_key, validate_id
from .profile import FORMAT, Profile, summarize

log = logging.getLogger(__name__)

SUFFIX = ".safetensors"
TEMP_SUFFIX = ".tmp"
#: A temporary file this old is left from a crashed save (a save takes seconds), and is removed.
ORPHAN_SECONDS = 15 * 60
#: Loaded profiles kept in memory (a profile is ~1-5 MB: crops, 512 faces and portraits).
LOADED_PROFILES = 32
#: Profile summaries (headers) remembered with the file version they were read from.
SUMMARIES = 4096
#: Broken file versions remembered as already warned about (each is logged once; beyond this, once more).
WARNED_FILES = 1024


class ProfileStore:
    def __init__(self, folder):
        self.folder = Path(folder).expanduser().resolve()
        self._loaded: BoundedCache[tuple[tuple, Profile]] = BoundedCache(LOADED_PROFILES)  # id -> (stamp, profile)
        self._warned: BoundedCache[bool] = BoundedCache(WARNED_FILES)  # (id, stamp) of broken files already logged
        # id -> (stamp, summary): ComfyUI lists the profiles several times per queued prompt (the picker, each
        # node's fingerprint), and a header is read again only when its file changed.
        self._summaries: BoundedCache[tuple[tuple, dict]] = BoundedCache(SUMMARIES)

    def __repr__(self) -> str:
        return f"ProfileStore({str(self.folder)!r})"

    def path(self, profile_id: str) -> Path:
        """The file of a profile id; the id is validated first, and the result is checked to stay inside."""
        path = self.folder / f"{validate_id(profile_id)}{SUFFIX}"
        try:
            inside = path.resolve().parent == self.folder
        except (OSError, RuntimeError):  # a link loop
            inside = False
        if not inside:
            raise InvalidProfileId(f"profile id {profile_id!r} is a link that points outside the profile folder")
        return path

    def ids(self) -> list[str]:
        """Profiles that can be read: regular files (or links to one inside the folder) named `<id>.safetensors`.
        Temporary files left by a crashed save are removed on the way."""
        try:
            entries = list(os.scandir(self.folder))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
                self._remove_orphan(entry)
            stem = entry.name[: -len(SUFFIX)]
            if not (entry.name.endswith(SUFFIX) and ID_PATTERN.fullmatch(stem)):
                continue
            try:
                if self.stamp(stem, warn=True) is not None:
                    found.append(stem)
            except InvalidProfileId as exc:  # a link out of the folder
                self._warn(stem, None, str(exc))
        return sorted(found)

    def exists(self, profile_id: str) -> bool:
        return self.stamp(profile_id) is not None

    def stamp(self, profile_id: str, warn: bool = False) -> tuple | None:
        """(mtime, size, inode) of a profile's file, which changes whenever the file does; None when there is no
        readable regular file. Node caches are keyed by it, so a deleted or retrained profile is never served."""
        path = self.path(profile_id)
        try:
            info = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if warn:
                self._warn(profile_id, None, str(exc))
            return None
        if not stat.S_ISREG(info.st_mode):
            if warn:
                self._warn(profile_id, None, "not a regular file")
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def check_writable(self) -> None:
        """Refuses, with a sentence, a folder that profiles cannot be saved to (before a training, not after)."""
        writable_folder(self.folder, "profiles")

    def save(self, profile: Profile, overwrite: bool = False) -> Path:
        """Write atomically: a temporary file in the same folder, flushed to disk, then renamed over."""
        profile.check()
        target = self.path(profile.id)
        if target.exists() and not overwrite:
            raise ProfileExists(f"profile {profile.id!r} already exists")
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(
            dir=self.folder, prefix=f".{profile.id}.", suffix=TEMP_SUFFIX, delete=False
        )
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
        self._loaded.pop(profile.id)
        return target

    def load(self, profile_id: str) -> Profile:
        path, stamp = self.path(profile_id), self.stamp(profile_id)
        if stamp is None:
            raise ProfileNotFound(self._not_found(profile_id))
        cached = self._loaded.get(profile_id)
        if cached and cached[0] == stamp:
            return cached[1]
        profile = Profile.read(path)
        if profile.id != profile_id:
            raise ProfileFormatError(
                f"{path.name} holds profile {profile.id!r}, not {profile_id!r}; rename the file back"
            )
        self._loaded.put(profile_id, (stamp, profile))
        return profile

    def clear(self) -> None:
        """Forget the loaded profiles, their summaries and the files already warned about (the files stay)."""
        self._loaded.clear()
        self._summaries.clear()
        self._warned.clear()

    def portrait(self, profile_id: str, index: int = 0):
        """One reference portrait (0 is the thumbnail), read alone from the file: a gallery asks for many, and
        loading each whole profile for them would read every crop and embedding too."""
        path = self.path(profile_id)
        if self.stamp(profile_id) is None:
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
            raise ProfileFormatError(f"{path.name} is not a readable profile file ({exc}); retrain it") from None
        raise ProfileNotFound(
            f"profile {profile_id!r} has no reference portrait {index}; its portraits are numbered 0 to {count - 1}"
        )

    def summaries(self) -> list[dict]:
        """One summary per readable profile (headers only), sorted by name; broken files are skipped, each
        logged once (again only if it changes)."""
        found = []
        for profile_id in self.ids():
            stamp = self.stamp(profile_id)
            cached = self._summaries.get(profile_id)
            if cached and cached[0] == stamp:
                found.append(dict(cached[1]))
                continue
            try:
                summary = self._summary(profile_id)
            except Exception as exc:  # a damaged file must not hide the others
                self._warn(profile_id, stamp, str(exc))
                continue
            self._summaries.put(profile_id, (stamp, summary))
            found.append(dict(summary))
        return sorted(found, key=lambda s: (name_key(s["name"]), s["id"]))

    def _summary(self, profile_id: str) -> dict:
        with safe_open(str(self.path(profile_id)), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            accepted = handle.get_slice("embeddings").get_shape()[0]
            references = handle.get_slice("portraits").get_shape()[0]
        if metadata.get("format") != FORMAT:
            raise ValueError("not an Identity Layer profile")
        if metadata.get("id") != profile_id:
            raise ValueError("file name and profile id differ")
        return summarize(metadata, accepted, references)

    def resolve(self, id_or_name: str) -> str:
        """The id for a profile id, a unique display name (case-insensitive), or a picker label 'name (id)'
        (`picker_labels`; a name may itself end in parentheses)."""
        value = str(id_or_name).strip()
        if ID_PATTERN.fullmatch(value) and self.exists(value):
            return value
        if value.endswith(")") and " (" in value:
            labelled = value.rsplit(" (", 1)[1][:-1]
            if ID_PATTERN.fullmatch(labelled) and self.exists(labelled):
                return labelled
        summaries = self.summaries()
        matches = [s["id"] for s in summaries if name_key(s["name"]) == name_key(value)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ProfileNotFound(f"several profiles are named {value!r} ({', '.join(matches)}); use the id")
        if any(mark in value for mark in ("/", "\\", "..", "\0")):
            raise InvalidProfileId(f"invalid profile id {value[:80]!r}: ids and names never contain paths")
        known = ", ".join(f"{s['name']} ({s['id']})" for s in summaries[:10]) or "none yet"
        raise ProfileNotFound(f"no profile {value[:80]!r} (profiles: {known})")

    def rename(self, profile_id: str, new_name: str) -> Profile:
        """Give a profile a new display name; the id (and so its file) stays. Rewritten atomically."""
        name = clean_name(new_name)
        profile = self.load(profile_id)
        taken = [s["id"] for s in self.summaries() if name_key(s["name"]) == name_key(name) and s["id"] != profile_id]
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
        self._loaded.pop(profile_id)

    @staticmethod
    def _not_found(profile_id: str) -> str:
        """For lookups by id, which web routes answer: neither the folder's path nor other people's names."""
        return f"no profile {profile_id!r}; it may have been deleted (reload the profile list)"

    def _warn(self, profile_id: str, stamp: tuple | None, reason: str) -> None:
        if self._warned.get((profile_id, stamp)):
            return
        self._warned.put((profile_id, stamp), True)
        log.warning("skipping profile file %s%s: %s", profile_id, SUFFIX, reason)

    def _remove_orphan(self, entry: os.DirEntry) -> None:
        try:
            if (
                entry.is_file(follow_symlinks=False)
                and time.time() - entry.stat(follow_symlinks=False).st_mtime > ORPHAN_SECONDS
            ):
                os.unlink(entry.path)
                log.info("removed %s, left by an interrupted save", entry.name)
        except OSError:
            pass  # another process removed or renamed it


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
