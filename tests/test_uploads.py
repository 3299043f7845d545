"""Web uploads: the type comes from the content, sizes and counts are capped while streaming, names are labels only."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import TOM_HANKS
from PIL import Image

from identity.errors import UploadRefused, UploadTooLarge
from identity.uploads import UploadBatch, image_type, photo_label


def encoded(kind: str, size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 90, np.uint8)).save(buffer, format=kind)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "kind, name", [("JPEG", "JPEG"), ("PNG", "PNG"), ("WEBP", "WebP"), ("BMP", "BMP"), ("TIFF", "TIFF")]
)
def test_image_types_are_sniffed_from_content(kind, name):
    assert image_type(encoded(kind)[:16]) == name


def upload(batch: UploadBatch, name: str, data: bytes, chunk: int = 1000):
    batch.begin(name)
    for start in range(0, len(data), chunk):
        batch.feed(data[start : start + chunk])
    return batch.end()


def refusal(batch: UploadBatch, name: str, data: bytes, chunk: int = 1000) -> str:
    """Why the batch refused this one file (and that an upload of it alone is refused whole, saying the same)."""
    assert upload(batch, name, data, chunk) is None and len(batch.refused) == 1
    reason = batch.refused[0]["reason"]
    with pytest.raises(UploadRefused, match="no photo could be used") as refused:
        batch.finish()
    assert reason in str(refused.value)
    return reason


def test_a_file_that_is_not_a_photo_is_refused_alone_and_the_good_photos_are_kept():
    batch = UploadBatch()
    upload(batch, "tom.png", TOM_HANKS.read_bytes())
    assert upload(batch, "notes.jpg", b"Meeting notes, not a photo") is None
    upload(batch, "", encoded("JPEG"))
    assert upload(batch, "empty.jpg", b"") is None
    assert [p.label for p in batch.finish()] == ["tom.png", "photo 3"]
    assert [(r["index"], r["name"]) for r in batch.refused] == [(1, "notes.jpg"), (3, "empty.jpg")]
    assert "'notes.jpg' is not an image" in batch.refused[0]["reason"] and "is empty" in batch.refused[1]["reason"]


def test_photos_are_kept_in_memory_under_their_names_as_labels():
    batch = UploadBatch()
    photo = upload(batch, "tom.png", TOM_HANKS.read_bytes())
    upload(batch, "", encoded("JPEG"))
    assert photo.label == "tom.png" and photo.source == TOM_HANKS.read_bytes()
    assert [p.label for p in batch.finish()] == ["tom.png", "photo 2"]


@pytest.mark.parametrize("data", [b"just some text", b"GIF89a....", b"%PDF-1.7", b"<svg xmlns=...>", b"PK\x03\x04zip"])
def test_content_that_is_not_a_photo_is_refused_whatever_its_name(data):
    assert "'holiday.jpg' is not an image" in refusal(UploadBatch(), "holiday.jpg", data)


def test_an_image_header_with_a_broken_body_is_refused():
    assert "'cut.jpg'" in refusal(UploadBatch(), "cut.jpg", b"\xff\xd8\xff\xe0" + bytes(100))


@pytest.mark.parametrize("name", ["../../evil.jpg", "a/b.jpg", "C:\\photos\\x.jpg", "/etc/passwd", "..", "."])
def test_path_like_names_are_refused_not_cleaned(name):
    with pytest.raises(UploadRefused, match="looks like a path"):
        photo_label(name, 1)


@pytest.mark.parametrize("name", ["bad\nname.jpg", "nul\0.jpg", "rtl\u202egpj.exe"])
def test_names_with_control_characters_are_refused(name):
    with pytest.raises(UploadRefused, match="control characters"):
        photo_label(name, 1)


def test_plain_names_with_dots_and_unicode_are_fine():
    for name in ("a..b.jpg", "Zoë Saldaña 2.PNG", ".hidden.jpg", "x" * 255):
        assert photo_label(name, 3) == name
    with pytest.raises(UploadRefused, match="over 255 characters"):
        photo_label("x" * 256, 1)


def test_an_oversized_photo_is_refused_while_streaming_before_it_is_held():
    batch = UploadBatch(max_photo_bytes=10_000)
    batch.begin("huge.jpg")
    batch.feed(b"\xff\xd8\xff" + bytes(9_000))
    batch.feed(bytes(2_000))
    assert not batch._chunks, "its chunks are let go as they arrive"
    batch.feed(bytes(5_000))
    assert not batch._chunks and batch.end() is None
    assert "'huge.jpg' is over" in batch.refused[0]["reason"]


def test_the_total_and_the_count_are_capped():
    small = encoded("PNG")
    batch = UploadBatch(max_upload_bytes=len(small) * 3 // 2)
    upload(batch, "a.png", small)
    with pytest.raises(UploadTooLarge, match="add up to over"):
        upload(batch, "b.png", small)
    batch = UploadBatch(max_photos=2)
    upload(batch, "a.png", encoded("PNG"))
    upload(batch, "b.png", encoded("PNG"))
    with pytest.raises(UploadRefused, match="more than 2 photos"):
        batch.begin("c.png")


def test_empty_uploads_are_refused():
    with pytest.raises(UploadRefused, match="no photos uploaded"):
        UploadBatch().finish()
    assert "'zero.jpg' is empty" in refusal(UploadBatch(), "zero.jpg", b"")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bombs_are_refused_from_the_header():
    bomb = io.BytesIO()
    Image.new("L", (12_000, 9_000)).save(bomb, format="PNG")
    assert "too large" in refusal(UploadBatch(), "bomb.png", bomb.getvalue(), chunk=1 << 20)
