"""One way to hold a lock file: the threads of this process and, on POSIX, other processes (the CLI beside
ComfyUI) take turns. Used for the profile folder's name rule, the user files' read-modify-writes and a batch
results folder's single writer."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: within this process only
    fcntl = None

_threads: dict[str, threading.Lock] = {}
_threads_guard = threading.Lock()


@contextlib.contextmanager
def holding(lock_file: Path, wait: bool = True):
    """Holds `lock_file` (made if missing) exclusively. With `wait` False, raises BlockingIOError at once when
    another thread or process holds it."""
    lock_file = Path(lock_file)
    with _threads_guard:
        thread_lock = _threads.setdefault(str(lock_file.resolve()), threading.Lock())
    if not thread_lock.acquire(blocking=wait):
        raise BlockingIOError(f"{lock_file} is held")
    try:
        if fcntl is None:  # pragma: no cover - Windows
            yield
            return
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield
        finally:
            os.close(fd)  # closing releases the lock
    finally:
        thread_lock.release()
