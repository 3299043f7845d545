"""Profile Load's picker lists the profiles without reading one profile file in the thread that asks: ComfyUI
asks on its event loop (`/object_info` and every queued prompt's validation), where eleven files with large
headers made each `/object_info` take 3.6 s. Headers are read by one background thread; the next listing is in
name order."""

from __future__ import annotations

import struct
import sys
import threading
from dataclasses import replace

from conftest import crafted, wait_until

from identity.profile import ProfileStore

_watched: dict = {}  # {"folder": str, "thread": ident, "opened": list}: what the audit hook records


def _record_opens(event: str, args: tuple) -> None:
    if event == "open" and _watched and threading.get_ident() == _watched["thread"]:
        path = str(args[0])
        if path.startswith(_watched["folder"]) and path.endswith(".safetensors"):
            _watched["opened"].append(path)


sys.addaudithook(_record_opens)  # audit hooks cannot be removed; it records nothing unless a test watches


def opened_by_this_thread(folder, call):
    """`call()`'s result and the profile files this thread opened meanwhile (Python's `open` audit event)."""
    _watched.update(folder=str(folder), thread=threading.get_ident(), opened=[])
    try:
        return call(), list(_watched["opened"])
    finally:
        _watched.clear()


def _three_profiles(folder, tom_profile) -> dict[str, str]:
    """Saved by another store (another process, as far as the listing store knows); name → id."""
    writer = ProfileStore(folder)
    names = {"Zed Last": "zed-last-000001", "Amy First": "amy-first-000002", "Moe Middle": "moe-middle-000003"}
    for name, profile_id in names.items():
        writer.save(replace(tom_profile, id=profile_id, name=name))
    return names


def test_the_picker_reads_no_profile_file_in_the_thread_that_asks(tmp_path, tom_profile):
    names = _three_profiles(tmp_path, tom_profile)
    store = ProfileStore(tmp_path)
    first, opened = opened_by_this_thread(tmp_path, store.listed_ids)
    assert opened == [], f"the listing opened {opened} in the asking thread"
    assert sorted(first) == sorted(names.values()), "every profile is listed before its header is read"
    by_name = [names[n] for n in sorted(names)]
    wait_until(lambda: store.listed_ids() == by_name, "the background read putting the picker in name order", 30)
    again, opened = opened_by_this_thread(tmp_path, store.listed_ids)
    assert (again, opened) == (by_name, []), "a listing after the headers are known reads nothing either"


def test_a_profile_saved_in_this_process_is_in_name_order_at_once(tmp_path, tom_profile):
    store = ProfileStore(tmp_path)
    for profile_id, name in (("bea-000001", "Bea"), ("abe-000002", "Abe")):
        store.save(replace(tom_profile, id=profile_id, name=name))
    ids, opened = opened_by_this_thread(tmp_path, store.listed_ids)
    assert (ids, opened) == (["abe-000002", "bea-000001"], [])


def test_a_file_the_background_read_finds_broken_leaves_the_picker(tmp_path, tom_profile, caplog):
    store = ProfileStore(tmp_path)
    store.save(tom_profile)
    huge = tmp_path / "huge-header-000001.safetensors"
    crafted(huge, replace(tom_profile, id="huge-header-000001", name="Huge Header"), padding="x" * 9_000_000)
    with huge.open("rb") as handle:
        assert struct.unpack("<Q", handle.read(8))[0] > 9_000_000, "a real, valid header over the 8 MiB cap"
    listed, opened = opened_by_this_thread(tmp_path, store.listed_ids)
    assert opened == [] and "huge-header-000001" in listed, "unread, it is listed (by id) until it is read"
    wait_until(lambda: store.listed_ids() == [tom_profile.id], "the broken file leaving the listing", 30)
    assert sum("huge-header-000001" in r.getMessage() for r in caplog.records) == 1, "logged once"
