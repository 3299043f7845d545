"""Profiles on disk: safe ids, atomic writes, bit-exact round trips, lookup, and nothing but safetensors."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import numpy as np
import pytest
from conftest import ROOT, crafted

from identity.errors import InvalidProfileId, ProfileExists, ProfileFormatError, ProfileNotFound
from identity.profile import ProfileStore, new_id, slug, validate_id

ESCAPES = [
    "../evil",
    "..",
    "a/../../b",
    "/etc/passwd",
    "a/b",
    "a\\b",
    ".hidden",
    "",
    " padded",
    "UPPER",
    "x" * 65,
    "name.safetensors",
    "nul\0byte",
    "ümlaut",
    "-leading",
]


@pytest.mark.parametrize("bad", ESCAPES)
def test_malformed_and_path_escaping_ids_are_refused_before_any_path_is_built(tmp_path, bad):
    store = ProfileStore(tmp_path)
    for action in (store.path, store.load, store.delete, store.exists):
        with pytest.raises(InvalidProfileId):
            action(bad)
    assert list(tmp_path.iterdir()) == []


def test_valid_ids_and_generated_ids():
    for good in ("a", "alice-3f9a2c", "0_x-y", "x" * 64):
        assert validate_id(good) == good
    made = new_id("Zoë Saldaña!")
    assert made.startswith("zoe-saldana-") and len(made) == len("zoe-saldana-") + 6
    assert slug("???") == "profile"


def test_a_profile_survives_a_save_load_round_trip_bit_exactly(tmp_path, tom_profile):
    first = ProfileStore(tmp_path / "a")
    path = first.save(tom_profile)
    loaded = ProfileStore(tmp_path / "a").load(tom_profile.id)
    for name, tensor in tom_profile.tensors().items():
        assert np.array_equal(loaded.tensors()[name], tensor), name
        assert loaded.tensors()[name].dtype == tensor.dtype
    assert loaded.metadata() == tom_profile.metadata()
    again = ProfileStore(tmp_path / "b").save(loaded)
    assert again.read_bytes() == path.read_bytes(), "re-saving a loaded profile must reproduce the file byte for byte"


def test_saving_never_replaces_a_profile_unless_asked(tmp_path, tom_profile):
    store = ProfileStore(tmp_path)
    store.save(tom_profile)
    with pytest.raises(ProfileExists):
        store.save(tom_profile)
    renamed = replace(tom_profile, name="Thomas Hanks")
    store.save(renamed, overwrite=True)
    assert store.load(tom_profile.id).name == "Thomas Hanks"


def test_a_killed_write_leaves_the_previous_profile_whole(tmp_path, tom_profile):
    store = ProfileStore(tmp_path)
    path = store.save(tom_profile)
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from dataclasses import replace
        from identity.profile import ProfileStore
        store = ProfileStore({str(tmp_path)!r})
        profile = replace(store.load({tom_profile.id!r}), name="half written")
        original = profile.write
        def slow_write(handle):
            original(handle)
            handle.flush()
            print("written", flush=True)
            time.sleep(60)  # killed here: the data is in the temporary file, not yet renamed
        profile.write = slow_write
        store.save(profile, overwrite=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "written"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert path.read_bytes() == before, "the profile must be the old one, whole"
    assert store.ids() == [tom_profile.id], "a temporary file is never listed as a profile"
    assert store.load(tom_profile.id).name == tom_profile.name


def test_lookup_by_id_or_unique_name(tmp_path, tom_profile):
    store = ProfileStore(tmp_path)
    store.save(tom_profile)
    assert store.resolve(tom_profile.id) == tom_profile.id
    assert store.resolve("tom hanks") == tom_profile.id
    twin = replace(tom_profile, id="tom-hanks-000000")
    ProfileStore(tmp_path / "elsewhere").save(twin)  # the name rule refuses a twin; a copied-in file is one
    os.replace(tmp_path / "elsewhere" / "tom-hanks-000000.safetensors", tmp_path / "tom-hanks-000000.safetensors")
    with pytest.raises(ProfileNotFound, match="several profiles"):
        store.resolve("Tom Hanks")
    with pytest.raises(ProfileNotFound, match="no profile 'Meryl Streep'"):
        store.resolve("Meryl Streep")
    with pytest.raises(InvalidProfileId):
        store.resolve("../../etc/passwd")


def test_listing_and_deletion(tmp_path, tom_profile):
    store = ProfileStore(tmp_path)
    assert store.summaries() == []
    store.save(tom_profile)
    (tmp_path / "notes.txt").write_text("not a profile")
    (tmp_path / "broken-000000.safetensors").write_bytes(b"\x00" * 64)
    summaries = store.summaries()
    assert [s["id"] for s in summaries] == [tom_profile.id], "damaged files are skipped, other files ignored"
    assert summaries[0]["name"] == "Tom Hanks" and summaries[0]["photos_accepted"] == 1
    store.delete(tom_profile.id)
    assert store.summaries() == []
    with pytest.raises(ProfileNotFound):
        store.delete(tom_profile.id)


def test_only_safetensors_is_ever_loaded(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    (tmp_path / "evil-000000.safetensors").write_bytes(pickle.dumps(Boom()))
    store = ProfileStore(tmp_path)
    with pytest.raises(ProfileFormatError, match="not a readable profile"):
        store.load("evil-000000")
    assert not (tmp_path / "pwned").exists()


def test_a_safetensors_file_that_is_not_a_profile_is_refused(tmp_path):
    from safetensors.numpy import save_file

    save_file({"weight": np.zeros(3, np.float32)}, str(tmp_path / "lora-000000.safetensors"))
    with pytest.raises(ProfileFormatError, match="not an Identity Layer profile"):
        ProfileStore(tmp_path).load("lora-000000")


def test_a_person_profile_without_its_face_tensors_is_refused_naming_them(tmp_path, tom_profile):
    """A person's profile keeps each photo's landmarks and pose (remote references are chosen by pose)."""
    crafted(tmp_path / f"{tom_profile.id}.safetensors", replace(tom_profile, landmarks=None, pose=None))
    with pytest.raises(ProfileFormatError, match=r"lacks the tensors \['landmarks', 'pose'\]"):
        ProfileStore(tmp_path).load(tom_profile.id)


def test_a_person_profile_is_still_written_in_format_1(tmp_path, tom_profile):
    """Format 2 changed only animals' files: a person's keeps format 1's tensors and version, so an older pack
    still reads it."""
    assert tom_profile.metadata()["format_version"] == "1"
    assert set(tom_profile.tensors()) == {
        "embeddings",
        "centroid",
        "crops",
        "landmarks",
        "pose",
        "quality",
        "portraits",
        "reference_photos",
        "faces_512",
    }


def test_a_file_renamed_to_another_id_is_refused(tmp_path, tom_profile):
    store = ProfileStore(tmp_path)
    store.save(tom_profile).rename(tmp_path / "someone-else.safetensors")
    with pytest.raises(ProfileFormatError, match="holds profile"):
        store.load("someone-else")


def test_a_cached_profile_is_reread_when_its_file_changes(tmp_path, tom_profile):
    store = ProfileStore(tmp_path)
    store.save(tom_profile)
    assert store.load(tom_profile.id) is store.load(tom_profile.id)
    time.sleep(0.01)
    ProfileStore(tmp_path).save(replace(tom_profile, name="Changed"), overwrite=True)
    assert store.load(tom_profile.id).name == "Changed"


# ----- a hostile profile folder: whatever lies there, the listing stands and nothing blocks --------------------


@pytest.mark.parametrize(
    "metadata",
    [
        {"name": None},
        {"name": "<img src=x onerror=alert(1)>"},
        {"name": "two\nlines"},
        {"calibration": '{"threshold": "high"}'},
        {"calibration": '{"threshold": true}'},
        {"calibration": "[1, 2]"},
        {"report": '{"photos": "all"}'},
        {"report": '{"photos": [1, 2]}'},
        {"engine": '"embedded"'},
        {"kind": None, "created": None},
    ],
)
def test_a_file_with_bad_metadata_is_skipped_and_the_others_stay_listed(tmp_path, tom_profile, metadata, caplog):
    store = ProfileStore(tmp_path)
    store.save(tom_profile)
    crafted(
        tmp_path / "crafted-000000.safetensors",
        replace(tom_profile, id="crafted-000000"),
        id="crafted-000000",
        **metadata,
    )
    if metadata == {"kind": None, "created": None}:  # optional keys: defaults, not an error
        assert [s["id"] for s in store.summaries()] == ["crafted-000000", tom_profile.id]
        return
    with caplog.at_level("WARNING"):
        for _ in range(3):
            assert [s["id"] for s in store.summaries()] == [tom_profile.id]
    warnings = [r.getMessage() for r in caplog.records if "crafted-000000" in r.getMessage()]
    assert len(warnings) == 1, "one warning per broken file, not one per listing"
    with pytest.raises(ProfileFormatError):
        store.load("crafted-000000")
    with pytest.raises(ProfileNotFound):
        store.resolve("nobody at all")


def test_a_link_out_of_the_folder_is_skipped(tmp_path, tom_profile):
    outside, folder = tmp_path / "elsewhere", tmp_path / "profiles"
    ProfileStore(outside).save(replace(tom_profile, id="outside-000000"))
    store = ProfileStore(folder)
    store.save(tom_profile)
    (folder / "outside-000000.safetensors").symlink_to(outside / "outside-000000.safetensors")
    (folder / "loop-000000.safetensors").symlink_to(folder / "loop-000000.safetensors")
    assert store.ids() == [tom_profile.id]
    assert [s["id"] for s in store.summaries()] == [tom_profile.id]
    with pytest.raises(InvalidProfileId, match="outside the profile folder"):
        store.load("outside-000000")
    assert str(outside) not in str(pytest.raises(InvalidProfileId, store.load, "outside-000000").value)


def test_a_fifo_named_like_a_profile_never_blocks(tmp_path, tom_profile):
    """Run in a child process: a reader stuck opening a FIFO can hold the GIL, freezing every thread."""
    store = ProfileStore(tmp_path)
    store.save(tom_profile)
    os.mkfifo(tmp_path / "fifo-000000.safetensors")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from identity.profile import ProfileStore
        store = ProfileStore({str(tmp_path)!r})
        print(store.ids(), [s["id"] for s in store.summaries()])
        for action in (store.load, store.portrait, store.resolve):
            try:
                action("fifo-000000")
            except Exception as exc:
                print(action.__name__, type(exc).__name__)
    """)
    try:
        child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"reading the profile folder blocked on the FIFO (output so far: {exc.stdout!r})")
    assert child.stdout.splitlines() == [
        f"[{tom_profile.id!r}] [{tom_profile.id!r}]",
        "load ProfileNotFound",
        "portrait ProfileNotFound",
        "resolve ProfileNotFound",
    ], child.stderr


def test_not_found_names_neither_the_folder_nor_other_profiles(tmp_path, tom_profile):
    store = ProfileStore(tmp_path)
    store.save(tom_profile)
    for action in (store.load, store.portrait, store.delete):
        with pytest.raises(ProfileNotFound) as error:
            action("nobody-000000")
        assert str(tmp_path) not in str(error.value) and "Tom Hanks" not in str(error.value), error.value


def test_temporary_files_left_by_a_crashed_save_are_removed_by_the_next_save_not_by_a_listing(tmp_path, tom_profile):
    store = ProfileStore(tmp_path)
    store.save(tom_profile)
    old, fresh = tmp_path / f".{tom_profile.id}.crashed.tmp", tmp_path / f".{tom_profile.id}.saving.tmp"
    old.write_bytes(b"half a profile")
    fresh.write_bytes(b"being written right now")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    assert store.ids() == [tom_profile.id] and store.summaries()[0]["id"] == tom_profile.id
    assert old.exists(), "listing profiles only reads"
    store.rename(tom_profile.id, "Thomas Hanks")
    assert not old.exists(), "an orphan from a crash is removed by the next save"
    assert fresh.exists(), "a save in progress (in another process) is left alone"


def test_a_rename_is_recorded_so_a_former_name_finds_the_profile(tmp_path, tom_profile):
    store = ProfileStore(tmp_path)
    store.save(tom_profile)
    store.rename(tom_profile.id, "Thomas Hanks")
    store.rename(tom_profile.id, "T. Hanks")
    assert store.resolve(tom_profile.name.upper()) == tom_profile.id, "a former name, in any case"
    assert store.resolve("THOMAS HANKS") == tom_profile.id
    assert store.former_names() == {"tom hanks": tom_profile.id, "thomas hanks": tom_profile.id}
    assert ProfileStore(tmp_path).resolve("Thomas Hanks") == tom_profile.id, "the record is a file, read afresh"
    assert not list(tmp_path.glob("*.tmp")), "written through a temporary file, renamed over"
    other = replace(tom_profile, id=new_id("Thomas Hanks"), name="Thomas Hanks")
    store.save(other)
    assert store.resolve("Thomas Hanks") == other.id, "a current name comes before a former one"
    store.delete(tom_profile.id)
    with pytest.raises(ProfileNotFound, match="no profile 'Tom Hanks'"):
        store.resolve("Tom Hanks")  # the profile that had it is gone
    (tmp_path / ".renames.json").write_text("{not json")
    assert store.resolve("Thomas Hanks") == other.id, "a broken record hides no current name"


def test_a_fifo_or_a_huge_file_as_the_rename_record_never_blocks(tmp_path, tom_profile):
    store = ProfileStore(tmp_path)
    store.save(tom_profile)
    store.rename(tom_profile.id, "Thomas Hanks")
    record = tmp_path / ".renames.json"
    record.unlink()
    os.mkfifo(record)  # opened for reading, a FIFO blocks until a writer comes: it must be skipped, not opened so
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from identity.profile import ProfileStore; print(ProfileStore({str(tmp_path)!r}).load({tom_profile.id!r}).name)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == "Thomas Hanks", done.stderr
    assert "not a regular file" in done.stderr, done.stderr
    record.unlink()
    record.write_text(json.dumps({"renames": [{"name": "x", "id": tom_profile.id}] * 40_000}))
    assert record.stat().st_size > 1024 * 1024
    with pytest.raises(ProfileNotFound):
        ProfileStore(tmp_path).resolve("Tom Hanks")  # the oversized record is not read
