"""ProfileStore: one `.safetensors` per profile in a folder; atomic writes, safe ids, lookup by id or name.

Anyone who can write to the folder can put anything there, so the store reads regular files only (a FIFO would
block a reader forever), never follows a link out of the folder, reads no header over `MAX_HEADER_BYTES`, and
skips a broken file (with one warning per file and version) rather than let it hide the others.

The store owns the name rule: no two profiles share a name (`name_key`: case and Unicode forms aside). Every write
checks it under a lock file beside the profiles, so trainings and renames in several processes (ComfyUI and CLI
runs) never save two profiles of one name. A rename is recorded (`RENAMES_FILE`: former name → id), so a workflow
saved with a former name still finds the profile that had it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import struct
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from safetensors import safe_open

from ..cache import BoundedCache
from ..errors import InvalidProfileId, ProfileExists, ProfileFormatError, ProfileNotFound
from ..locks import holding
from ..paths import writable_folder
from ..remote.user_files import read_json
from .ids import ID_PATTERN, clean_name, name_key, validate_id
from .profile import FORMAT, Profile, Vectors, summarize

log = logging.getLogger(__name__)

SUFFIX = ".safetensors"
TEMP_SUFFIX = ".tmp"
#: A temporary file this old is left from a crashed save (a save takes seconds), and is removed.
ORPHAN_SECONDS = 15 * 60
#: Loaded profiles kept in memory (a profile is ~1-5 MB: crops, 512 faces and portraits).
LOADED_PROFILES = 32
#: Profiles kept as a look-alike cohort sees them (header and embeddings, per file version and engine: `matching`);
#: a store of more profiles than this reads the excess again on each verification.
COHORT_PROFILES = 1024
#: Candidates' calibrations against a cohort kept (`matching.against`), per candidate and cohort version.
CALIBRATIONS = 256
#: Profile summaries (headers) remembered with the file version they were read from.
SUMMARIES = 4096
#: Broken file versions remembered as already warned about (each is logged once; beyond this, once more).
WARNED_FILES = 1024
#: The name of the thread that reads profile headers for `listed_ids` (one at a time).
HEADER_READER = "identity-profile-headers"
#: The lock file beside the profiles that every write holds while it checks the name rule and saves.
LOCK_FILE = ".profiles.lock"
#: Former names → the id of the profile that had each (`{"renames": [{"name": ..., "id": ...}]}`), newest last.
RENAMES_FILE = ".renames.json"
#: Largest safetensors header read (a profile's is a few kB to ~100 kB: its report lists at most 50 photos). A
#: crafted file may declare a header of gigabytes, which the reader would load and parse whole.
MAX_HEADER_BYTES = 8 * 1024 * 1024
#: Largest reference portrait side read (the pack writes 384 px squares): a crafted 1×70000 one cannot be encoded.
MAX_PORTRAIT_SIDE = 4096


class ProfileStore:
    def __init__(self, folder):
        self.folder = Path(folder).expanduser().resolve()
        self._loaded: BoundedCache[tuple[tuple, Profile]] = BoundedCache(LOADED_PROFILES)  # id -> (stamp, profile)
        self._warned: BoundedCache[bool] = BoundedCache(WARNED_FILES)  # (id, stamp) of broken files already logged
        # id -> (stamp, summary): ComfyUI lists the profiles several times per queued prompt (the picker, each
        # node's fingerprint), and a header is read again only when its file changed.
        self._summaries: BoundedCache[tuple[tuple, dict]] = BoundedCache(SUMMARIES)
        self._reading = threading.Lock()  # held by the one thread that reads headers for `listed_ids`
        # filled by `matching`: every other profile as a verification's cohort sees it, and calibrations against it
        self.cohort: BoundedCache = BoundedCache(COHORT_PROFILES)
        self.calibrated: BoundedCache = BoundedCache(CALIBRATIONS)
        self._changes = 0  # saves, renames and deletes by this process (`version`)

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
        A listing only reads (temporary files left by a crashed save are removed by the next save)."""
        try:
            entries = list(os.scandir(self.folder))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for entry in entries:
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

    def version(self) -> tuple:
        """Changes whenever a profile is added, retrained, renamed or deleted, by this process (its count of
        changes) or another one (the folder's mtime: every write renames a file into the folder, every delete
        unlinks one), at the cost of one stat, not one per profile. A file overwritten in place by another tool
        is not seen here; its own `stamp` does change."""
        try:
            folder = self.folder.stat().st_mtime_ns
        except OSError:
            folder = None
        return (folder, self._changes)

    def check_writable(self) -> None:
        """Refuses, with a sentence, a folder that profiles cannot be saved to (before a training, not after)."""
        writable_folder(self.folder, "profiles")

    def named(self, name: str, other_than: str | None = None) -> str | None:
        """The id of a profile (other than `other_than`) that holds this name (`name_key`), if any: the one that a
        training of this name retrains, and that keeps any other profile from taking the name."""
        key = name_key(name)
        return next((s["id"] for s in self.summaries() if name_key(s["name"]) == key and s["id"] != other_than), None)

    def save(self, profile: Profile, overwrite: bool = False) -> Path:
        """Write atomically: a temporary file in the same folder, flushed to disk, then renamed over. Refused
        when another profile holds the name (checked under the folder's lock, so that of two processes saving
        one name, one wins)."""
        profile.check()
        target = self.path(profile.id)
        with self._writing():
            if target.exists() and not overwrite:
                raise ProfileExists(f"profile {profile.id!r} already exists")
            self._check_name_free(profile.name, profile.id)
            self._write(profile, target)
        return target

    def _check_name_free(self, name: str, profile_id: str) -> None:
        taken = self.named(name, other_than=profile_id)
        if taken is not None:
            raise ProfileExists(f"a profile named {name!r} already exists ({taken}); choose another name")

    @contextlib.contextmanager
    def _writing(self):
        """Holds the folder's lock file (all processes) while a write checks the name rule and saves; old
        temporary files from a crashed save are removed meanwhile."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with holding(self.folder / LOCK_FILE):
            self._remove_orphans()
            yield

    def _write(self, profile: Profile, target: Path) -> None:
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
        self._changes += 1
        # known at once to `listed_ids`: a profile trained in this process is in the picker, by name, right away
        summary = summarize(profile.metadata(), len(profile.embeddings), len(profile.portraits))
        self._summaries.put(profile.id, (self.stamp(profile.id), summary))

    def load(self, profile_id: str) -> Profile:
        path, stamp = self.path(profile_id), self.stamp(profile_id)
        if stamp is None:
            raise ProfileNotFound(self._not_found(profile_id))
        cached = self._loaded.get(profile_id)
        if cached and cached[0] == stamp:
            return cached[1]
        _check_header(path)
        profile = Profile.read(path)
        if profile.id != profile_id:
            raise ProfileFormatError(
                f"{path.name} holds profile {profile.id!r}, not {profile_id!r}; rename the file back"
            )
        former = tuple(e["name"] for e in self._renames() if e["id"] == profile_id and e["name"] != profile.name)
        profile = replace(profile, former_names=former)  # a rename rewrites the file, so the stamp keys this too
        self._loaded.put(profile_id, (stamp, profile))
        return profile

    def vectors(self, profile_id: str, crops: bool = False) -> Vectors:
        """A profile's header and embeddings (and its crops when asked for), without reading the rest of its file:
        what telling faces apart from it needs (`matching.known`)."""
        path = self.path(profile_id)
        if self.stamp(profile_id) is None:
            raise ProfileNotFound(self._not_found(profile_id))
        _check_header(path)
        vectors = Vectors.read(path, crops)
        if vectors.id != profile_id:
            raise ProfileFormatError(
                f"{path.name} holds profile {vectors.id!r}, not {profile_id!r}; rename the file back"
            )
        return vectors

    def clear(self) -> None:
        """Forget the loaded profiles, their summaries and the files already warned about (the files stay)."""
        self._loaded.clear()
        self._summaries.clear()
        self._warned.clear()
        self.cohort.clear()
        self.calibrated.clear()

    def portrait(self, profile_id: str, index: int = 0):
        """One reference portrait (0 is the thumbnail), read alone from the file: a gallery asks for many, and
        loading each whole profile for them would read every crop and embedding too."""
        path = self.path(profile_id)
        if self.stamp(profile_id) is None:
            raise ProfileNotFound(self._not_found(profile_id))
        try:
            _check_header(path)
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
                portraits = handle.get_slice("portraits")
                shape = portraits.get_shape()
                count = shape[0]
                if metadata.get("id") != profile_id or metadata.get("format") != FORMAT:
                    raise ValueError("not this profile's file")
                if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2] or not 1 <= shape[1] <= MAX_PORTRAIT_SIDE:
                    raise ValueError(
                        f"its portraits are {'×'.join(map(str, shape[1:]))}, not square RGB images of at most "
                        f"{MAX_PORTRAIT_SIDE} px"
                    )
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

    def listed_ids(self) -> list[str]:
        """The ids in `summaries`' order, for a caller on ComfyUI's event loop (the picker's options, each prompt's
        validation): no header is read in this thread. Files whose headers are not yet known are read by one
        background thread; until it is done they come last, by id, and a file it finds broken is left out."""
        known, unread = [], []
        for profile_id in self.ids():
            stamp = self.stamp(profile_id)
            cached = self._summaries.get(profile_id)
            if cached and cached[0] == stamp:
                known.append(cached[1])
            elif not self._warned.get((profile_id, stamp)):
                unread.append(profile_id)
        if unread and self._reading.acquire(blocking=False):
            threading.Thread(target=self._read_headers, name=HEADER_READER, daemon=True).start()
        known.sort(key=lambda s: (name_key(s["name"]), s["id"]))
        return [s["id"] for s in known] + unread

    def _read_headers(self) -> None:
        try:
            self.summaries()
        finally:
            self._reading.release()

    def _summary(self, profile_id: str) -> dict:
        _check_header(self.path(profile_id))
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
        former = self.former_names().get(name_key(value))
        if former is not None:
            return former
        if any(mark in value for mark in ("/", "\\", "..", "\0")):
            raise InvalidProfileId(f"invalid profile id {value[:80]!r}: ids and names never contain paths")
        known = ", ".join(f"{s['name']} ({s['id']})" for s in summaries[:10]) or "none yet"
        raise ProfileNotFound(f"no profile {value[:80]!r} (profiles: {known})")

    def rename(self, profile_id: str, new_name: str) -> Profile:
        """Give a profile a new display name; the id (and so its file) stays. Rewritten atomically, and the former
        name recorded (before the file is rewritten: a crash in between leaves a record that resolves to the id)."""
        name = clean_name(new_name)
        with self._writing():  # two renames to one name: the second sees the first's file
            current = self.load(profile_id)
            renamed = replace(current, name=name)
            renamed.check()
            self._check_name_free(name, profile_id)
            if name_key(current.name) != name_key(name):
                self._record_rename(current.name, profile_id)
            self._write(renamed, self.path(profile_id))
        return renamed

    def former_names(self) -> dict[str, str]:
        """`name_key` of each former name → the id of the existing profile that last had it (a name a profile holds
        now is looked up among current names first)."""
        return {name_key(entry["name"]): entry["id"] for entry in self._renames() if self.exists(entry["id"])}

    def _renames(self) -> list[dict]:
        """The rename record's entries; read as the user's own files are (anyone who can write to the folder may
        have put a FIFO or a huge file there), and a broken record only means former names are not looked up."""
        try:
            record = read_json(self.folder / RENAMES_FILE, ProfileFormatError) or {}
            entries = record.get("renames", []) if isinstance(record, dict) else []
        except ProfileFormatError as exc:
            self._warn("renames", None, f"{exc}; former names are not looked up")
            return []
        return [
            e
            for e in entries
            if isinstance(entries, list)
            if isinstance(e, dict) and isinstance(e.get("name"), str) and ID_PATTERN.fullmatch(str(e.get("id")))
        ]

    def _record_rename(self, former: str, profile_id: str) -> None:
        """Adds `former → profile_id` (held under the write lock; written to a temporary file, then renamed over).
        Entries of deleted profiles, and earlier ones of the same name, are dropped."""
        key = name_key(former)
        entries = [e for e in self._renames() if name_key(e["name"]) != key and self.exists(e["id"])]
        entries.append({"name": former, "id": profile_id})
        handle = tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=self.folder, prefix=".renames.", suffix=TEMP_SUFFIX, delete=False
        )
        try:
            with handle:
                json.dump({"renames": entries}, handle, ensure_ascii=False, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(handle.name, self.folder / RENAMES_FILE)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise

    def delete(self, profile_id: str) -> None:
        path = self.path(profile_id)
        try:
            path.unlink()
        except FileNotFoundError:
            raise ProfileNotFound(self._not_found(profile_id)) from None
        self._loaded.pop(profile_id)
        self._changes += 1

    @staticmethod
    def _not_found(profile_id: str) -> str:
        """For lookups by id, which web routes answer: neither the folder's path nor other people's names."""
        return f"no profile {profile_id!r}; it may have been deleted (reload the profile list)"

    def _warn(self, profile_id: str, stamp: tuple | None, reason: str) -> None:
        if self._warned.get((profile_id, stamp)):
            return
        self._warned.put((profile_id, stamp), True)
        log.warning("skipping profile file %s%s: %s", profile_id, SUFFIX, reason)

    def _remove_orphans(self) -> None:
        """Removes temporary files left by a crashed save (a save in progress is younger than ORPHAN_SECONDS)."""
        for entry in os.scandir(self.folder):
            if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
                continue
            try:
                if (
                    entry.is_file(follow_symlinks=False)
                    and time.time() - entry.stat(follow_symlinks=False).st_mtime > ORPHAN_SECONDS
                ):
                    os.unlink(entry.path)
                    log.info("removed %s, left by an interrupted save", entry.name)
            except OSError:
                pass  # another process removed or renamed it


def _check_header(path: Path) -> None:
    """Refuses a file whose safetensors header (its first 8 bytes give the length) is over MAX_HEADER_BYTES,
    before any reader loads it."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    if len(head) < 8:
        raise ProfileFormatError(f"{path.name} is not a readable profile file (too short); retrain it")
    (size,) = struct.unpack("<Q", head)
    if size > MAX_HEADER_BYTES:
        raise ProfileFormatError(
            f"{path.name} is not a readable profile file (it declares a {size / 1e6:,.0f} MB header; a profile's "
            f"is at most {MAX_HEADER_BYTES // (1024 * 1024)} MiB); remove it, or retrain the profile"
        )


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
