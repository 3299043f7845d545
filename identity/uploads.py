"""Photos uploaded over the web, checked while they stream in: count and size limits, image type from content.

An upload comes from anyone who can reach the server, so nothing about it is trusted: the type is sniffed
from the first bytes (never from the file name or the declared content type), sizes are checked per chunk
so an oversized file is refused before it is held in memory, and file names are only labels for reports:
a name that looks like a path is refused outright, and no name is ever used to build a path.
A file that is no usable photo (empty, not an image, unreadable, over the size limit) is refused alone, with its
reason, and the others are kept; only an upload with no usable photo is refused whole.
Photos stay in memory; nothing is written to disk.
"""

from __future__ import annotations

import unicodedata

from .errors import ImageError, UploadRefused, UploadTooLarge
from .images import probe_image
from .training import MAX_PHOTOS, Photo

MAX_PHOTO_BYTES = 32 * 1024 * 1024  # one photo: room for any camera JPEG, not for a bomb
MAX_UPLOAD_BYTES = 256 * 1024 * 1024  # a whole training upload (MAX_PHOTOS photos)
MAX_FILENAME_CHARS = 255  # the longest file name most file systems take (NAME_MAX)

#: First bytes of the image types training reads (the same set as `images.IMAGE_SUFFIXES`).
SIGNATURES = {
    "JPEG": (b"\xff\xd8\xff",),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "BMP": (b"BM",),
    "TIFF": (b"II*\x00", b"MM\x00*"),
}
ACCEPTED_TYPES = "JPEG, PNG, WebP, BMP or TIFF"


def image_type(head: bytes) -> str | None:
    """The image type that a file's first bytes announce, or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    for kind, signatures in SIGNATURES.items():
        if head.startswith(signatures):
            return kind
    return None


def photo_label(filename: str | None, index: int) -> str:
    """A photo's name for reports. Path-like or control-character names are refused, not cleaned."""
    if not filename:
        return f"photo {index}"
    shown = repr(filename[:80])
    if any(mark in filename for mark in ("/", "\\")) or filename in (".", ".."):
        raise UploadRefused(f"photo name {shown} looks like a path; upload the files themselves, named without folders")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in filename):
        raise UploadRefused(f"photo name {shown} contains control characters; rename the file")
    if len(filename) > MAX_FILENAME_CHARS:
        raise UploadRefused(f"photo name {shown}… is over {MAX_FILENAME_CHARS} characters; rename the file")
    return filename


class UploadBatch:
    """Collects uploaded photos part by part: `begin(name)`, `feed(chunk)`..., `end()`; then `.photos`."""

    def __init__(
        self,
        max_photos: int = MAX_PHOTOS,
        max_photo_bytes: int = MAX_PHOTO_BYTES,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
    ):
        self.max_photos = max_photos
        self.max_photo_bytes = max_photo_bytes
        self.max_upload_bytes = max_upload_bytes
        self.photos: list[Photo] = []
        #: Files refused alone: `{"index": position among the uploaded files, "name": label, "reason": sentence}`.
        self.refused: list[dict] = []
        self.total = 0
        self._label: str | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._oversized = False

    def begin(self, filename: str | None) -> str:
        if len(self.photos) >= self.max_photos:
            raise UploadRefused(f"more than {self.max_photos} photos uploaded; a profile takes 1 to {self.max_photos}")
        self._label = photo_label(filename, len(self.photos) + len(self.refused) + 1)
        self._chunks, self._size, self._oversized = [], 0, False
        return self._label

    def feed(self, chunk: bytes) -> None:
        """Holds a chunk; an oversized photo's chunks are let go as they arrive (the file is refused at its end)."""
        self._size += len(chunk)
        self.total += len(chunk)
        if self.total > self.max_upload_bytes:
            raise UploadTooLarge(
                f"the photos add up to over {_mib(self.max_upload_bytes)} MiB; upload fewer or smaller photos"
            )
        self._oversized = self._oversized or self._size > self.max_photo_bytes
        if self._oversized:
            self._chunks = []
        else:
            self._chunks.append(chunk)

    def end(self) -> Photo | None:
        """The photo, or None when the file is refused (`refused` says why)."""
        data = b"".join(self._chunks)
        self._chunks = []
        try:
            photo = Photo(self._label, self._checked(data))
        except UploadRefused as exc:
            self.refused.append(
                {"index": len(self.photos) + len(self.refused), "name": self._label, "reason": str(exc)}
            )
            return None
        self.photos.append(photo)
        return photo

    def _checked(self, data: bytes) -> bytes:
        label = self._label
        if self._oversized:
            raise UploadRefused(
                f"photo {label!r} is over {_mib(self.max_photo_bytes)} MiB; "
                "upload a smaller copy (a few megapixels is plenty for a face)"
            )
        if not data:
            raise UploadRefused(f"photo {label!r} is empty; choose the file again")
        if image_type(data[:16]) is None:
            raise UploadRefused(
                f"photo {label!r} is not an image (its content is not {ACCEPTED_TYPES}, "
                "whatever its name says); upload photos only"
            )
        try:
            probe_image(data)
        except ImageError as exc:
            raise UploadRefused(f"photo {label!r}: {exc.reason}") from None
        return data

    def finish(self) -> list[Photo]:
        if self.refused and not self.photos:
            raise UploadRefused(f"no photo could be used: {'; '.join(r['reason'] for r in self.refused)}")
        if not self.photos:
            raise UploadRefused(f"no photos uploaded; add 1 to {self.max_photos} photos of the person")
        return self.photos


def _mib(size: int) -> int:
    return size // (1024 * 1024)
