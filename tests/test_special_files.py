"""Local files that are not plain images: a FIFO, a device, a sparse 8 GB `.jpg`, and names with terminal escapes.
`score` and `batch-score` read regular files only, within one byte and pixel budget, and answer each with one
sentence: never a hang, a `MemoryError` or a traceback; a file name never reaches the terminal raw."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, TOM_HANKS

from identity.profile import ProfileStore

pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed (pip install '.[scale]')")

#: A file name that would set the terminal's title, clear the screen and forge a report line if printed raw.
HOSTILE = "x\x1b]0;pwned\x07\x1b[2J\n✓ forged.jpg: good photo of the subject\r.jpg"


def identity(*argv, timeout: float = 120, cwd=ROOT) -> subprocess.CompletedProcess:
    """`python -m identity …` as a user runs it; a run that hangs fails the test (and is killed)."""
    return subprocess.run(
        [sys.executable, "-m", "identity", *map(str, argv)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture
def specials(tmp_path, tom_profile):
    """A profile store, and a list file naming a real photo, a FIFO and /dev/zero, beside a folder holding a photo
    and a sparse 8 GB `.jpg`."""
    ProfileStore(tmp_path / "profiles").save(tom_profile)
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(TOM_HANKS, folder / "tom.png")
    with open(folder / "sparse.jpg", "wb") as handle:
        handle.write(b"\xff\xd8\xff\xe0")
        handle.truncate(8 * 1024**3)
    os.mkfifo(tmp_path / "fifo.jpg")
    (tmp_path / "list.txt").write_text(f"{TOM_HANKS}\n{tmp_path / 'fifo.jpg'}\n/dev/zero\n")
    return tmp_path


def test_batch_score_answers_a_fifo_a_device_and_a_sparse_file_with_a_sentence_each(specials):
    done = identity(
        "batch-score",
        specials / "list.txt",
        specials / "photos",
        "--profile",
        "Tom Hanks",
        "--engine",
        "embedded",
        "--store",
        specials / "profiles",
        "--out",
        specials / "results",
        "--json",
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    summary = json.loads(done.stdout)
    assert summary["scored"] == 2 and summary["matches_all"] == 2, summary
    reasons = {os.path.basename(f["path"]): f["reason"] for f in summary["failures"]}
    assert reasons.keys() == {"fifo.jpg", "zero", "sparse.jpg"}, reasons
    assert reasons["fifo.jpg"].startswith("not a regular file") and reasons["zero"].startswith("not a regular file")
    assert reasons["sparse.jpg"].startswith("file too large (8.6 GB"), reasons
    again = identity(*done.args[3:])  # resuming hashes what is there: the FIFO again, which must not block
    assert again.returncode == 0 and json.loads(again.stdout)["this_run"]["scored"] == 0, again.stderr


@pytest.mark.parametrize("name", ["fifo.jpg", "photos/sparse.jpg"])
def test_score_refuses_the_same_files_within_the_same_budget(specials, name):
    done = identity(
        "score", specials / name, "--profile", "Tom Hanks", "--engine", "embedded", "--store", specials / "profiles"
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert ("not a regular file" if name == "fifo.jpg" else "file too large") in lines[0], lines


def test_file_names_with_terminal_escapes_are_printed_and_stored_escaped(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(TOM_HANKS, photos / HOSTILE)
    store = tmp_path / "profiles"
    done = identity("train", photos, "--name", "Escaped Tom", "--engine", "embedded", "--store", store)
    assert done.returncode == 0, done.stderr
    for output in (done.stdout, done.stderr):
        assert "\x1b" not in output and "\x07" not in output and "\r" not in output, output
    assert not any(line.startswith("✓ forged.jpg") for line in done.stdout.splitlines()), done.stdout
    assert "\\x1b]0;pwned\\x07" in done.stdout, done.stdout
    [stored] = [
        p["path"] for p in ProfileStore(store).load(ProfileStore(store).resolve("Escaped Tom")).report["photos"]
    ]
    assert stored.endswith("x\\x1b]0;pwned\\x07\\x1b[2J\\n✓ forged.jpg: good photo of the subject\\r.jpg"), stored
    scored = identity("score", photos, "--profile", "Escaped Tom", "--engine", "embedded", "--store", store)
    assert scored.returncode == 0 and "\x1b" not in scored.stdout and "\\x1b" in scored.stdout, scored.stdout


def test_batch_scores_summary_shows_paths_as_typed_and_escaped(tmp_path, tom_profile):
    """Results keep absolute paths (to resume from anywhere); the terminal gets them relative to where the user
    is, and a hostile name escaped, so that a summary line can be neither forged nor a disclosure."""
    ProfileStore(tmp_path / "profiles").save(tom_profile)
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(TOM_HANKS, photos / "tom.png")
    (photos / HOSTILE).write_bytes(b"not an image at all")
    args = ["batch-score", "photos", "--profile", "Tom Hanks", "--engine", "embedded", "--store", "profiles"]
    done = identity(*args, "--out", "results", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for output in (done.stdout, done.stderr):
        assert "\x1b" not in output and "\x07" not in output and "\r" not in output, output
        assert str(tmp_path) not in output, f"an absolute path in the terminal output: {output}"
    assert not any(line.startswith("✓ forged.jpg") for line in done.stdout.splitlines()), done.stdout
    assert done.stdout.startswith("results: 2 images"), done.stdout
    failure = "  ✗ photos/x\\x1b]0;pwned\\x07\\x1b[2J\\n✓ forged.jpg: good photo of the subject\\r.jpg: "
    assert failure in done.stdout, done.stdout
    stored = json.loads(identity(*args, "--out", "results", "--json", cwd=tmp_path).stdout)["failures"][0]["path"]
    assert stored == str(photos / HOSTILE), "the results keep the absolute path, as it is on disk"
