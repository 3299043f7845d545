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
from identity.profile.store import HEADER_READER

_watch: tuple[str, int, list[str]] | None = None  # (folder, thread, opened) while a test watches


def _record_opens(event: str, args: tuple) -> None:
    # One read of `_watch`: the hook runs in every thread, and an exception here is raised by that thread's
    # `open`; the background header read must never see a watch half ended (it would take its file for broken).
    watch = _watch
    if event == "open" and watch and threading.get_ident() == watch[1]:
        path = str(args[0])
        if path.startswith(watch[0]) and path.endswith(".safetensors"):
            watch[2].append(path)


sys.addaudithook(_record_opens)  # audit hooks cannot be removed; it records nothing unless a test watches


def opened_by_this_thread(folder, call):
    """`call()`'s result and the profile files this thread opened meanwhile (Python's `open` audit event)."""
    global _watch
    opened: list[str] = []
    _watch = (str(folder), threading.get_ident(), opened)
    try:
        return call(), list(opened)
    finally:
        _watch = None


def reading_headers() -> bool:
    """Whether the store's background thread is still at work (a listing taken meanwhile may be half read)."""
    return any(thread.name == HEADER_READER for thread in threading.enumerate())


def _three_profiles(folder, tom_profile) -> dict[str, str]:
    """Saved by another store (another process, as far as the listing store knows); name → id. Id order is not
    name order, so a listing in name order shows that the headers were read."""
    writer = ProfileStore(folder)
    names = {"Zed Last": "last-zed-000001", "Amy First": "first-amy-000002", "Moe Middle": "middle-moe-000003"}
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
    wait_until(lambda: store.listed_ids() == by_name and not reading_headers(), "the background read's end", 30)
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
