"""File digests: how the pack hashes a file, and the published digests of the model files it knows by name.

The lowest module of the pack (it imports none of it): engines record their files' digests, PuLID-Flux checks
its recognizer's, batch-score keys rows by content, and the weights report names known files, all from here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: sha256 of insightface's published pack files (the digests their Git LFS pointers record).
GLINTR100_SHA256 = "4ab1d6435d639628a6f3e5008dd4f929edf4c4124b1a7169e1048f9fef534cdf"
KNOWN_ONNX = {
    GLINTR100_SHA256: "antelopev2's glintr100 (the recognizer PuLID-Flux was trained with)",
    "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91": "antelopev2's scrfd_10g_bnkps",
}


def sha256(path: Path) -> str:
    """The file's sha256 (hex), read a megabyte at a time: model files can be gigabytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
