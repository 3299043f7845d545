"""Training: the main subject among solo and group photos, a verdict for every photo, the status lifecycle."""

from __future__ import annotations

import io
import struct
import threading
import zlib

import cv2
import numpy as np
import pytest
from conftest import TOM_HANKS, face, finished, needs_faces, text_bomb_png
from PIL import Image

from identity.errors import Cancelled, ProfileExists, TrainingBusy, TrainingError
from identity.faces import Face
from identity.faces.quality import Quality, pose
from identity.images import load_image
from identity.profile import ProfileStore
from identity.training import Photo, Status, photos_from_paths, start_training, train
from identity.training.jobs import JobRegistry
from identity.training.verdicts import quality_problem


def run(photos, engine, name="Subject", **kwargs):
    kwargs.setdefault("registry", JobRegistry())
    return train(photos, name, engine, **kwargs)


def verdicts(job) -> dict[str, str]:
    return {p["path"]: p["code"] for p in job.photos}


@needs_faces
def test_the_main_subject_is_found_among_solo_and_group_photos(engine):
    photos = photos_from_paths(
        [
            face(p)
            for p in (
                "groups/obama_biden_a.jpg",
                "biden/biden1.jpg",
                "obama/obama1.jpg",
                "groups/biden_obama_b.jpg",
                "obama/obama2.jpg",
                "obama/obama3.jpg",
                "kit_harington/kit2.jpg",
            )
        ]
    )
    job = run(photos, engine, "Barack Obama")
    codes = verdicts(job)
    assert job.status == Status.READY
    for path in (
        "groups/obama_biden_a.jpg",
        "obama/obama1.jpg",
        "groups/biden_obama_b.jpg",
        "obama/obama2.jpg",
        "obama/obama3.jpg",
    ):
        assert codes[str(face(path))] == "accepted", (path, job.photos)
    assert codes[str(face("biden/biden1.jpg"))] == "not_main_subject"
    assert codes[str(face("kit_harington/kit2.jpg"))] == "not_main_subject"
    profile = job.profile
    # In each group photo the subject's face is the one chosen: it matches a held-out solo photo of Obama.
    held_out = engine.analyze([load_image(face("obama/obama4.jpg"))])[0][0].embedding
    assert (profile.embeddings @ held_out).min() > engine.info.match_threshold


@needs_faces
def test_every_bad_input_gets_a_verdict_not_a_crash(tmp_path, embedded):
    good = [face(f"obama/obama{i}.jpg") for i in (1, 2, 3)]
    source = load_image(face("obama/obama4.jpg"))
    inputs = {
        "rgba.png": lambda p: Image.open(face("hard/rgba_32bit.png")).save(p),
        "grey.jpg": lambda p: Image.fromarray(source).convert("L").save(p),
        "palette.png": lambda p: Image.fromarray(source).convert("P").save(p),
        "tiny.png": lambda p: Image.fromarray(source).resize((24, 18)).save(p),
        "small-face.jpg": lambda p: Image.fromarray(source).resize((120, 68)).save(p),
        "huge.png": lambda p: p.write_bytes(_png_claiming(30000, 20000)),
        "truncated.jpg": lambda p: p.write_bytes(face("obama/obama5_720p.jpg").read_bytes()[:20000]),
        "notes.jpg": lambda p: p.write_text("this is a text file renamed .jpg"),
        "empty.jpg": lambda p: p.write_bytes(b""),
        "blurry.jpg": lambda p: Image.fromarray(cv2.GaussianBlur(source, (0, 0), 8)).save(p),
        "dark.jpg": lambda p: Image.fromarray((source * 0.12).astype(np.uint8)).save(p),
        "no-face.png": lambda p: Image.fromarray(np.full((300, 400, 3), 90, np.uint8)).save(p),
    }
    for name, make in inputs.items():
        make(tmp_path / name)
    job = run(photos_from_paths(good + [tmp_path / n for n in inputs]), embedded)
    codes = {k.rsplit("/", 1)[-1]: v for k, v in verdicts(job).items()}
    assert codes == {
        "obama1.jpg": "accepted",
        "obama2.jpg": "accepted",
        "obama3.jpg": "accepted",
        "rgba.png": "accepted",
        "grey.jpg": "accepted",
        "palette.png": "accepted",
        "tiny.png": "face_too_small",
        "small-face.jpg": "face_too_small",
        "huge.png": "unreadable",
        "truncated.jpg": "unreadable",
        "notes.jpg": "unreadable",
        "empty.jpg": "unreadable",
        "blurry.jpg": "too_blurry",
        "dark.jpg": "too_dark",
        "no-face.png": "no_face",
    }, job.photos
    reasons = {p["path"].rsplit("/", 1)[-1]: p["reason"] for p in job.photos}
    assert "too large" in reasons["huge.png"] and "truncated" in reasons["truncated.jpg"]
    assert "not an image" in reasons["notes.jpg"]


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: it must be refused before anything is decoded."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_a_single_photo_trains_with_a_low_confidence_warning(embedded):
    job = run([Photo("tom", TOM_HANKS)], embedded, "Tom Hanks")
    assert job.status == Status.READY
    assert job.warnings and "low confidence" in job.warnings[0]
    assert job.profile.calibration["confidence"] == "low"
    assert job.profile.threshold == embedded.info.match_threshold


def test_no_accepted_photo_is_an_error_that_says_why(tmp_path, embedded):
    (tmp_path / "a.jpg").write_text("not an image")
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(tmp_path / "b.png")
    seen = []
    with pytest.raises(TrainingError, match=r"no photo accepted \(.*not an image.*no face found"):
        run(photos_from_paths([tmp_path]), embedded, on_update=lambda job: seen.append(job.status))
    assert seen[-1] == Status.ERROR


def test_photo_count_limits(embedded):
    with pytest.raises(TrainingError, match="no photos"):
        run([], embedded)
    with pytest.raises(TrainingError, match="at most 50"):
        run([Photo(str(i), TOM_HANKS) for i in range(51)], embedded)


def test_the_lifecycle_is_observable_in_order(embedded, tmp_path):
    statuses, progress = [], []

    def on_update(job):
        if not statuses or statuses[-1] != job.status:
            statuses.append(job.status)
        progress.append(job.progress)

    store = ProfileStore(tmp_path)
    job = run([Photo("tom", TOM_HANKS), Photo("t1", TOM_HANKS)], embedded, "Tom", store=store, on_update=on_update)
    assert statuses == [Status.VALIDATING, Status.QUEUING, Status.IN_PROGRESS, Status.READY]
    assert progress == sorted(progress) and progress[-1] == 1.0, "progress never runs backwards"
    snapshot = job.snapshot()
    assert snapshot["status"] == "READY" and snapshot["profile_id"] == job.profile_id
    assert store.exists(job.profile_id)


def test_one_training_job_per_profile_id_at_a_time(embedded, tmp_path):
    registry = JobRegistry()
    gate = threading.Event()
    photos = [Photo("tom", TOM_HANKS)]

    def hold(job):
        if job.status == Status.VALIDATING:
            gate.wait(10)

    first = start_training(photos, "Tom", embedded, profile_id="tom-000001", on_update=hold, registry=registry)
    with pytest.raises(TrainingBusy, match="already being trained"):
        start_training(photos, "Tom", embedded, profile_id="tom-000001", registry=registry)
    other = start_training(photos, "Someone", embedded, profile_id="someone-000001", registry=registry)
    gate.set()
    assert finished(first) and finished(other)
    assert first.status == Status.READY and other.status == Status.READY
    assert registry.for_profile("tom-000001") is first


def test_a_stopped_training_saves_nothing(embedded, tmp_path):
    store = ProfileStore(tmp_path)
    calls = []

    def stop_on_second_check():
        calls.append(1)
        if len(calls) == 2:
            raise Cancelled("stopped by the user")

    with pytest.raises(Cancelled):
        run([Photo("a", TOM_HANKS), Photo("b", TOM_HANKS)], embedded, store=store, check=stop_on_second_check)
    assert store.ids() == [] and list(tmp_path.iterdir()) == []


def test_retraining_needs_overwrite_and_keeps_the_id(embedded, tmp_path):
    store = ProfileStore(tmp_path)
    first = run([Photo("tom", TOM_HANKS)], embedded, "Tom Hanks", store=store)
    with pytest.raises(ProfileExists, match="already exists"):
        run([Photo("tom", TOM_HANKS)], embedded, "Tom Hanks", store=store)
    second = run([Photo("tom", TOM_HANKS)], embedded, "Tom Hanks", store=store, overwrite=True)
    assert second.profile_id == first.profile_id and store.ids() == [first.profile_id]


@needs_faces
def test_references_are_diverse_and_the_best_frontal_photo_comes_first(embedded):
    photos = photos_from_paths([face("obama")])
    profile = run(photos, embedded).profile
    refs = list(profile.reference_photos)
    assert len(refs) == len(set(refs)) >= 3
    yaw = np.abs(profile.pose[:, 0])
    assert yaw[refs[0]] <= np.sort(yaw)[len(yaw) // 2], "the first reference is among the more frontal photos"
    assert profile.portraits.shape[1:] == (384, 384, 3)


def test_pose_from_landmarks():
    frontal = np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]])
    yaw, pitch, roll = pose(frontal)
    assert abs(yaw) < 5 and abs(pitch) < 10 and abs(roll) < 2
    turned = frontal.copy()
    turned[2, 0] = 80.0  # the nose beyond the right eye: a profile view
    assert pose(turned)[0] > 50
    box = np.array([0, 0, 100, 120], np.float32)
    problem = quality_problem(Face(box, turned.astype(np.float32), 0.9), Quality(*pose(turned), 500.0, 120.0, 0.0))
    assert problem[0] == "extreme_pose"


def test_a_photo_pillow_refuses_gets_a_verdict_and_the_training_goes_on(tmp_path, embedded):
    (tmp_path / "bomb.png").write_bytes(text_bomb_png())
    job = run(
        [Photo("tom", TOM_HANKS), Photo("bomb.png", tmp_path / "bomb.png"), Photo("bytes", text_bomb_png())], embedded
    )
    assert job.status == Status.READY
    assert [(p["verdict"], p["code"]) for p in job.photos[1:]] == [("rejected", "unreadable")] * 2
    assert "Decompressed data too large" in job.photos[1]["reason"]


def test_photos_are_decoded_within_a_pixel_budget_not_a_photo_count(embedded, monkeypatch):
    import identity.images

    class Recording:
        """The real engine, noting how many pixels each analysis call holds decoded at once."""

        def __init__(self, engine):
            self.engine, self.calls = engine, []

        def __getattr__(self, name):
            return getattr(self.engine, name)

        def analyze(self, images):
            self.calls.append(sum(image.shape[0] * image.shape[1] for image in images))
            return self.engine.analyze(images)

    large = np.asarray(Image.open(TOM_HANKS).convert("RGB").resize((1500, 1500)))
    monkeypatch.setattr(identity.images, "DECODE_BUDGET", 3_000_000)
    engine = Recording(embedded)
    job = run([Photo(f"large {i}", large) for i in range(4)] + [Photo("small", load_image(TOM_HANKS))], engine)
    assert job.status == Status.READY
    assert len(engine.calls) >= 3 and max(engine.calls) <= 3_000_000, engine.calls


def test_face_and_pet_engines_implement_the_whole_engine_interface():
    """One pipeline trains every kind through `Engine`: an engine that left a member to the interface's stub
    would hand the pipeline None where a quality or a portrait belongs."""
    from identity.faces.engine import Engine, FaceEngine
    from identity.pets.engine import PetEngine

    members = [name for name in vars(Engine) if not name.startswith("_")]
    assert {"detect", "embed", "analyze", "quality", "portrait", "name", "measures"} <= set(members), members
    for engine in (FaceEngine, PetEngine):
        assert Engine in engine.__mro__
        stubs = [name for name in members if getattr(engine, name) is getattr(Engine, name)]
        assert not stubs, f"{engine.__name__} leaves {stubs} to the interface"
