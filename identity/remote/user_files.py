"""The user's own files in `user/identity_layer/` (models.json, keys.json, phota_links.json): one careful reader.

Anyone may have put anything there, so a file is used only when it is a regular file (opened without blocking:
a FIFO named like one froze ComfyUI's `/object_info` and the CLI), of at most 1 MB, UTF-8 JSON nested at most
32 deep, with finite numbers only (Python's json takes `NaN`, `Infinity` and `1e999`; a NaN price let re-rolls
spend without limit). Anything else is one sentence naming the file; each reader then checks its own fields'
types with `expect`. A file that is read, changed and written back (the links) is changed under `locked`.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tempfile
from pathlib import Path

from ..errors import IdentityError, InvalidRequest
from ..locks import holding

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


class _NotFinite(ValueError):
    pass


def read_text(path: Path, error: type[IdentityError] = InvalidRequest) -> str | None:
    """The file's text, or None when there is no file; raises `error` with one sentence for anything unusable."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise error(f"{path} cannot be read ({exc.strerror}); fix its permissions or remove it") from None
    with os.fdopen(handle, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise error(f"{path} is not a regular file (a FIFO, a device or a folder), so it was skipped; remove it")
        data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise error(f"{path} is larger than {MAX_BYTES // 1024 // 1024} MB, which no settings file needs; fix it")
    try:
        return data.decode("utf-8-sig")  # a byte-order mark (Windows editors) is allowed
    except UnicodeDecodeError as exc:
        raise error(f"{path} is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8") from None


def parse_json(text: str, path: Path, error: type[IdentityError] = InvalidRequest):
    """`text` (the file at `path`) as JSON, nested at most MAX_DEPTH deep, every number finite."""
    depth = deepest = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
    if deepest > MAX_DEPTH:
        raise error(f"{path} is nested {deepest} levels deep (at most {MAX_DEPTH}); fix or remove it")
    try:
        return json.loads(text, parse_constant=_refuse, parse_float=_finite)
    except _NotFinite as exc:
        raise error(f"{path}: {exc} is not a finite number; write a number") from None
    except ValueError as exc:
        where = f" line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise error(f"{path}{where}: not valid JSON ({getattr(exc, 'msg', exc)}); fix or remove the file") from None


def read_json(path: Path, error: type[IdentityError] = InvalidRequest):
    """The file's JSON value, or None when there is no file (see `read_text` and `parse_json`)."""
    text = read_text(path, error)
    return None if text is None else parse_json(text, path, error)


def expect(path: Path, field: str, value, kind: type | tuple, what: str, error: type[IdentityError] = InvalidRequest):
    """`value` when it is a `kind` (never a bool for a number), else one sentence naming the file and the field."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool)):
        return value
    raise error(f"{path}: {field} must be {what}, not {_kind(value)}; fix or remove it")


def _kind(value) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def _refuse(constant: str):
    raise _NotFinite(constant)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def locked(path: Path):
    """Holds the lock of `path` (its `.lock` file beside it) for a read-modify-write: other threads, and on POSIX
    other processes, wait (twelve concurrent links kept 5 to 9 of 12 without it)."""
    return holding(path.with_name(path.name + ".lock"))


def write_json(path: Path, value) -> None:
    """Writes `value` atomically: a temporary file beside `path`, then one rename (a crash leaves the old file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(value, stream, indent=1, sort_keys=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
