"""Photos uploaded over the web, checked while they stream in: count and size limits, image type from content.

An upload comes from anyone who can reach the server, so nothing about it is trusted: the type is sniffed
from the first bytes (never from the file name or the declared content type), sizes are checked per chunk
so an oversized file is refused before it is held in memory, and file names are only labels for reports:
a name that looks like a path is refused outright, and no name is ever used to build a path.
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
        self.total = 0
        self._label: str | None = None
        self._chunks: list[bytes] = []
        self._size = 0

    def begin(self, filename: str | None) -> str:
        if len(self.photos) >= self.max_photos:
            raise UploadRefused(f"more than {self.max_photos} photos uploaded; a profile takes 1 to {self.max_photos}")
        self._label = photo_label(filename, len(self.photos) + 1)
        self._chunks, self._size = [], 0
        return self._label

    def feed(self, chunk: bytes) -> None:
        self._size += len(chunk)
        self.total += len(chunk)
        if self._size > self.max_photo_bytes:
            raise UploadTooLarge(
                f"photo {self._label!r} is over {_mib(self.max_photo_bytes)} MiB; "
                "upload a smaller copy (a few megapixels is plenty for a face)"
            )
        if self.total > self.max_upload_bytes:
            raise UploadTooLarge(
                f"the photos add up to over {_mib(self.max_upload_bytes)} MiB; upload fewer or smaller photos"
            )
        self._chunks.append(chunk)

    def end(self) -> Photo:
        data = b"".join(self._chunks)
        self._chunks = []
        label = self._label
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
        photo = Photo(label, data)
        self.photos.append(photo)
        return photo

    def finish(self) -> list[Photo]:
        if not self.photos:
            raise UploadRefused(f"no photos uploaded; add 1 to {self.max_photos} photos of the person")
        return self.photos


def _mib(size: int) -> int:
    return size // (1024 * 1024)
