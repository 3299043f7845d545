"""Managing saved profiles (what the web panel does): rename, details, names, and the jobs a panel watches."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from conftest import TOM_HANKS, finished

from identity.errors import Cancelled, IdentityError, InvalidProfileId, ProfileExists, ProfileNotFound, TrainingBusy
from identity.images import encode_jpeg
from identity.profile import ProfileStore, clean_name
from identity.profile.store import LOCK_FILE, RENAMES_FILE
from identity.training import Photo, Status, start_training, train
from identity.training.jobs import JobRegistry


@pytest.fixture
def store(tmp_path, tom_profile):
    store = ProfileStore(tmp_path)
    store.save(tom_profile)
    return store


def test_a_rename_keeps_the_id_and_everything_else(store, tom_profile):
    renamed = store.rename(tom_profile.id, "  Thomas Hanks ")
    assert renamed.id == tom_profile.id and renamed.name == "Thomas Hanks"
    loaded = store.load(tom_profile.id)
    assert loaded.name == "Thomas Hanks" and (loaded.embeddings == tom_profile.embeddings).all()
    assert store.resolve("thomas hanks") == tom_profile.id
    assert store.ids() == [tom_profile.id]
    left = sorted(p.name for p in store.folder.iterdir() if p.name != LOCK_FILE)
    assert left == [RENAMES_FILE, f"{tom_profile.id}.safetensors"], "the rename is recorded; no temporary file is left"


def test_a_rename_to_another_profiles_name_or_an_unknown_id_is_refused(store, tom_profile):
    store.save(replace(tom_profile, id="other-000001", name="Other Person"))
    with pytest.raises(ProfileExists, match="'other person' already exists"):
        store.rename(tom_profile.id, "other person")
    store.rename(tom_profile.id, "TOM HANKS")  # its own name in another case is fine
    with pytest.raises(ProfileNotFound):
        store.rename("nobody-000000", "Someone")


@pytest.mark.parametrize(
    "bad, words",
    [
        ("", "needs a name"),
        ("   ", "needs a name"),
        ("two\nlines", "line breaks"),
        ("x" * 101, "over 100 characters"),
        (None, "needs a name"),
        ("<img src=x onerror=alert(1)>", "'<' or '>'"),
        ("a<b", "'<' or '>'"),
        ("x\u2028y", "line breaks"),
        ("lone \ud800", "control characters"),
    ],
)
def test_names_are_one_plain_line(bad, words):
    with pytest.raises(IdentityError, match=words):
        clean_name(bad)
    assert clean_name("  Zoë Saldaña (2019) ") == "Zoë Saldaña (2019)"
    assert clean_name('Tom & Jerry\'s "band"') == 'Tom & Jerry\'s "band"', "quotes and ampersands are plain text"


def test_details_name_the_photo_behind_each_reference_portrait(tom_profile):
    details = tom_profile.details()
    assert details["id"] == tom_profile.id and details["calibration"]["threshold"] == tom_profile.threshold
    assert details["portraits"] == [{"index": 0, "photo": str(TOM_HANKS)}]
    assert details["report"]["photos"][0]["verdict"] == "accepted"
    assert details["engine_info"]["name"] == "embedded"


def test_a_portrait_is_read_alone_and_encodes_as_jpeg(store, tom_profile):
    assert (store.portrait(tom_profile.id) == tom_profile.portraits[0]).all()
    with pytest.raises(ProfileNotFound, match="no reference portrait 1; its portraits are numbered 0 to 0"):
        store.portrait(tom_profile.id, 1)
    with pytest.raises(InvalidProfileId):
        store.portrait("../secret")
    with pytest.raises(ProfileNotFound):
        store.portrait("nobody-000000")
    data = encode_jpeg(store.portrait(tom_profile.id))
    assert data[:3] == b"\xff\xd8\xff" and len(data) < 100_000


def test_photos_not_judged_yet_are_pending_not_rejected(embedded):
    seen = []

    def watch(job):
        seen.append([p["verdict"] for p in job.photos])

    train([Photo("a", TOM_HANKS), Photo("b", TOM_HANKS)], "Tom", embedded, on_update=watch, registry=JobRegistry())
    assert ["rejected", "pending"] not in seen and ["accepted", "pending"] not in seen
    assert any("pending" in verdicts for verdicts in seen), seen
    assert seen[-1] == ["accepted", "accepted"]


def test_two_new_profiles_of_one_name_cannot_train_at_once(embedded):
    registry, gate = JobRegistry(), threading.Event()

    def hold(job):
        if job.status == Status.VALIDATING:
            gate.wait(10)

    first = start_training([Photo("tom", TOM_HANKS)], "Tom Hanks", embedded, on_update=hold, registry=registry)
    assert registry.running(first.profile_id) is first
    with pytest.raises(TrainingBusy, match="named 'tom hanks' is already being trained"):
        start_training([Photo("tom", TOM_HANKS)], "tom hanks", embedded, registry=registry)
    gate.set()
    assert finished(first) and first.status == Status.READY
    assert registry.running(first.profile_id) is None


def test_a_name_taken_in_another_case_is_taken(store, tom_profile, embedded):
    with pytest.raises(ProfileExists, match="named 'tom hanks' already exists"):
        train([Photo("tom", TOM_HANKS)], "tom hanks", embedded, store, registry=JobRegistry())
    job = train([Photo("tom", TOM_HANKS)], "TOM HANKS", embedded, store, overwrite=True, registry=JobRegistry())
    assert job.profile_id == tom_profile.id, "a retrain under another case replaces the profile, not a twin"
    assert store.ids() == [tom_profile.id]


def test_a_failed_job_leaves_no_verdict_pending(embedded):
    calls = []

    def cancel_after_checking():
        calls.append(1)
        if len(calls) > 2:  # the two photos were checked; the user cancels as faces are looked for
            raise Cancelled("stopped by the user")

    photos = [Photo("a", TOM_HANKS), Photo("b", TOM_HANKS)]
    job = None

    def keep(update):
        nonlocal job
        job = update

    with pytest.raises(Cancelled):
        train(photos, "Tom", embedded, on_update=keep, check=cancel_after_checking, registry=JobRegistry())
    assert job.status == Status.ERROR
    assert [p["verdict"] for p in job.photos] == ["rejected", "rejected"], job.photos
    assert {p["code"] for p in job.photos} == {"not_checked"} and "stopped" in job.photos[0]["reason"]
