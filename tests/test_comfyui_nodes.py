"""The nodes inside a real ComfyUI: their declared sockets, progress, and clear errors on bad input (Cancel:
test_interrupts.py)."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from comfyui import Listener
from conftest import T1, TOM_HANKS, face, needs_faces
from PIL import Image

from identity.profile import ProfileStore

NODES = {
    "IdentityFaceEngine": ("Face Engine", [], ["IDENTITY_FACE_ENGINE"]),
    "IdentityProfileTrain": (
        "Profile Train",
        ["name", "overwrite", "images", "folder", "face_engine"],
        ["IDENTITY_PROFILES", "STRING", "IMAGE"],
    ),
    "IdentityProfileLoad": ("Profile Load", ["profile", "profiles"], ["IDENTITY_PROFILES"]),
    "IdentityArcFaceScore": (
        "ArcFace Score",
        ["images", "profiles", "min_similarity", "top_k", "folder", "face_engine"],
        ["IMAGE", "FLOAT", "STRING", "IMAGE"],
    ),
}


def test_every_input_of_every_node_has_a_tooltip(comfyui):
    ours = {
        k: v for k, v in comfyui.client.object_info().items() if v["python_module"] == "custom_nodes.identity-layer"
    }
    assert len(ours) >= 16, sorted(ours)
    missing = [
        (node_id, name)
        for node_id, node in ours.items()
        for group in ("required", "optional")
        for name, spec in node["input"].get(group, {}).items()
        if not (len(spec) > 1 and spec[1].get("tooltip"))
    ]
    assert missing == []


def test_an_error_is_titled_with_the_librarys_name_not_the_packs_folder(comfyui):
    """ComfyUI titles an error `module.Class`, and loads the pack under its folder's absolute path."""
    from identity import errors

    run = comfyui.client.run(
        {
            "1": {"class_type": "IdentityProfileLoad", "inputs": {"profile": "Nobody Trained This"}},
            "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
        }
    )
    assert run.status == "error"
    module, name = run.error["exception_type"].rsplit(".", 1)
    assert module == "identity" and issubclass(getattr(errors, name), errors.IdentityError), run.error
    assert "Nobody Trained This" in run.error["exception_message"]


def test_object_info_lists_every_node_with_its_sockets(comfyui):
    info = comfyui.client.object_info()
    for node_id, (display, inputs, outputs) in NODES.items():
        node = info[node_id]
        assert node["display_name"] == display and node["category"] == "identity"
        declared = node["input_order"].get("required", []) + node["input_order"].get("optional", [])
        assert all(name in declared for name in inputs), (node_id, declared)
        assert node["output"] == outputs, (node_id, node["output"])
    engine_inputs = info["IdentityFaceEngine"]["input"]["required"]
    assert engine_inputs["provider"][1]["options"] == ["auto", "cpu", "cuda", "rocm", "coreml"]
    assert engine_inputs["pack"][1]["options"] == ["embedded", "testpack"], (
        "packs in models/insightface/models/ are offered"
    )
    assert info["IdentityArcFaceScore"]["output_is_list"] == [False, True, False, False]
    assert info["IdentityProfileTrain"]["output_node"] is True


def _write(comfyui, relative: str, image: np.ndarray) -> str:
    path = comfyui.base / "input" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return relative


def _train_prompt(folder: str, name: str, **extra) -> dict:
    return {
        "1": {"class_type": "IdentityFaceEngine", "inputs": {"pack": "embedded", "provider": "auto"}},
        "2": {
            "class_type": "IdentityProfileTrain",
            "inputs": {"name": name, "folder": folder, "overwrite": True, "face_engine": ["1", 0], **extra},
        },
    }


def _score_prompt(image: str, profile: str) -> dict:
    return {
        "1": {"class_type": "IdentityFaceEngine", "inputs": {"pack": "embedded", "provider": "auto"}},
        "2": {"class_type": "IdentityProfileLoad", "inputs": {"profile": profile}},
        "3": {"class_type": "LoadImage", "inputs": {"image": image}},
        "4": {
            "class_type": "IdentityArcFaceScore",
            "inputs": {
                "images": ["3", 0],
                "profiles": ["2", 0],
                "min_similarity": 0.0,
                "top_k": 0,
                "face_engine": ["1", 0],
            },
        },
    }


@pytest.fixture(scope="module")
def tom(comfyui):
    """A 'Tom Hanks' profile trained through the node, from an IMAGE batch (LoadImage)."""
    shutil.copy(TOM_HANKS, comfyui.base / "input" / "tom.png")
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "tom.png"}},
        "2": {
            "class_type": "IdentityProfileTrain",
            "inputs": {"name": "Tom Hanks", "images": ["1", 0], "overwrite": True},
        },
    }
    run = comfyui.client.run(prompt)
    assert run.status == "success", run.error
    return run


def test_training_from_an_image_batch_reports_and_previews(comfyui, tom):
    outputs = tom.outputs["2"]
    assert "✓ image 1: good photo of the subject" in outputs["text"][0]
    assert "low confidence" in outputs["text"][0]
    preview = outputs["images"][0]
    assert Image.open(io.BytesIO(comfyui.client.view(preview))).size == (384, 384)


def test_an_image_without_a_face_scores_zero_and_says_so(comfyui, tom):
    _write(comfyui, "blank.png", np.full((256, 256, 3), 128, np.uint8))
    run = comfyui.client.run(_score_prompt("blank.png", "Tom Hanks"))
    assert run.status == "success", run.error
    assert run.outputs["4"]["identity_scores"] == [{"index": 0, "score": 0.0, "subjects": {"Tom Hanks": 0.0}}]


@needs_faces
def test_the_person_is_found_in_a_photo_it_was_not_trained_on_and_strangers_are_unknown(comfyui):
    (comfyui.base / "input" / "obama_train").mkdir(exist_ok=True)
    for name in ("obama1.jpg", "obama2.jpg", "obama3.jpg"):
        shutil.copy(face(f"obama/{name}"), comfyui.base / "input" / "obama_train" / name)
    assert comfyui.client.run(_train_prompt("obama_train", "Obama Held Out")).status == "success"
    for photo, found in (
        ("obama/obama4.jpg", True),
        ("obama/obama5_720p.jpg", True),
        ("alex_lacamoire/alex1.jpg", False),
    ):
        shutil.copy(face(photo), comfyui.base / "input" / "held_out.jpg")
        run = comfyui.client.run(_score_prompt("held_out.jpg", "Obama Held Out"))
        assert run.status == "success", run.error
        score = run.outputs["4"]["identity_scores"][0]["score"]
        assert (score > 0.0) == found, (photo, score)


def test_strangers_are_unknown(comfyui, tom):
    shutil.copy(T1, comfyui.base / "input" / "six_people.jpg")
    run = comfyui.client.run(_score_prompt("six_people.jpg", "Tom Hanks"))
    assert run.status == "success"
    assert run.outputs["4"]["identity_scores"][0]["score"] == 0.0


def _expect_error(comfyui, prompt: dict, *words: str) -> None:
    run = comfyui.client.run(prompt)
    assert run.status == "error", run.outputs
    message = run.error["exception_message"]
    assert "Traceback" not in message and message.strip().count("\n") == 0, message
    for word in words:
        assert word in message, (word, message)
    assert comfyui.alive() and comfyui.client.request("/system_stats")


@pytest.mark.parametrize(
    "case",
    [
        "unknown profile",
        "malformed id",
        "no face",
        "outside input",
        "missing folder",
        "no photos",
        "NUL in folder",
        "nothing to score",
    ],
)
def test_bad_inputs_end_in_clear_execution_errors_and_the_server_keeps_serving(comfyui, tom, case):
    if case == "unknown profile":
        _expect_error(comfyui, _score_prompt("tom.png", "Nobody Known"), "no profile 'Nobody Known'", "Tom Hanks")
    elif case == "malformed id":
        _expect_error(comfyui, _score_prompt("tom.png", "../../etc/passwd"), "invalid profile id")
    elif case == "no face":
        _write(comfyui, "faceless/blank.png", np.full((300, 300, 3), 200, np.uint8))
        _expect_error(comfyui, _train_prompt("faceless", "Nobody"), "no photo accepted", "no face found")
    elif case == "outside input":
        _expect_error(comfyui, _train_prompt("../models", "Sneaky"), "outside ComfyUI's input folder")
    elif case == "missing folder":
        _expect_error(comfyui, _train_prompt("no/such/folder", "X"), "does not exist")
    elif case == "NUL in folder":
        _expect_error(comfyui, _train_prompt("people\0/../../models", "X"), "contains a NUL character")
    elif case == "no photos":
        _expect_error(comfyui, _train_prompt("", "X"), "needs photos")
    else:
        prompt = _score_prompt("tom.png", "Tom Hanks")
        del prompt["4"]["inputs"]["images"]
        _expect_error(comfyui, prompt, "needs images", "folder")
    run = comfyui.client.run(_score_prompt("tom.png", "Tom Hanks"))
    assert run.status == "success", "a good prompt still runs after the error"


@needs_faces
def test_a_link_in_the_folder_to_a_photo_outside_the_input_folder_is_left_out(comfyui):
    folder = comfyui.base / "input" / "linked_out"
    folder.mkdir(exist_ok=True)
    shutil.copy(face("obama/obama1.jpg"), folder / "inside.jpg")
    outside = comfyui.base / "private.jpg"  # in ComfyUI's base folder, not in input/
    shutil.copy(face("obama/obama2.jpg"), outside)
    (folder / "link.jpg").unlink(missing_ok=True)
    (folder / "link.jpg").symlink_to(outside)
    run = comfyui.client.run(_train_prompt("linked_out", "Linked Out"))
    assert run.status == "success", run.error
    report = run.outputs["2"]["text"][0]
    assert "inside.jpg" in report and "link.jpg" not in report, report
    store = ProfileStore(comfyui.base / "models" / "identity_profiles")
    assert len(store.load(store.resolve("Linked Out")).embeddings) == 1, "only the photo inside was read"


@needs_faces
def test_training_shows_progress_and_status_text(comfyui):
    with Listener(comfyui) as heard:
        run = comfyui.client.run(_train_prompt("identity/biden", "Joe Biden (progress)"))
    assert run.status == "success", run.error
    events = heard.events
    progress = [e["data"]["value"] for e in events if e.get("type") == "progress" and e["data"].get("node") == "2"]
    assert progress and progress[-1] == 100 and progress == sorted(progress), progress
    texts = [e["text"] for e in events if e.get("node") == "2" and "text" in e]
    assert any(t.startswith("IN_PROGRESS") for t in texts) and any(t.startswith("READY") for t in texts), texts


def _profiles(comfyui):
    from identity.profile import ProfileStore

    return ProfileStore(comfyui.base / "models" / "identity_profiles")


def _image_train_prompt(name: str) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "tom.png"}},
        "2": {"class_type": "IdentityProfileTrain", "inputs": {"name": name, "images": ["1", 0], "overwrite": True}},
    }


def test_a_deleted_or_changed_profile_is_never_served_from_comfyuis_cache(comfyui, tom):
    assert comfyui.client.run(_image_train_prompt("Cached Person")).status == "success"
    store = _profiles(comfyui)
    profile_id = store.resolve("Cached Person")
    by_id = _score_prompt("tom.png", profile_id)
    assert list(comfyui.client.run(by_id).outputs["4"]["identity_scores"][0]["subjects"]) == ["Cached Person"]
    store.rename(profile_id, "Cached Person Renamed")  # the file changes under the same id
    run = comfyui.client.run(by_id)
    assert run.status == "success", run.error
    assert list(run.outputs["4"]["identity_scores"][0]["subjects"]) == ["Cached Person Renamed"], (
        "served from the cache"
    )
    store.delete(profile_id)
    _expect_error(comfyui, by_id, f"no profile {profile_id!r}")


def test_profile_train_saves_again_when_its_profile_was_deleted_and_not_otherwise(comfyui, tom):
    prompt = _image_train_prompt("Trained Twice")
    assert comfyui.client.run(prompt).status == "success"
    store = _profiles(comfyui)
    profile_id = store.resolve("Trained Twice")
    store.delete(profile_id)
    run = comfyui.client.run(prompt)
    assert run.status == "success", run.error
    assert "Trained Twice" in [s["name"] for s in store.summaries()], "the node reported success and saved nothing"
    profile_id = store.resolve("Trained Twice")
    stamp = store.stamp(profile_id)
    run = comfyui.client.run(prompt)
    assert run.status == "success" and store.stamp(profile_id) == stamp, "an unchanged profile is not retrained"
    assert any(event == "execution_cached" and "2" in data["nodes"] for event, data in run.messages), run.messages


def test_arcface_score_scores_an_image_added_to_its_folder_not_the_cached_result(comfyui, tom):
    photo = np.asarray(Image.open(TOM_HANKS).convert("RGB"))
    _write(comfyui, "renders/one.png", photo)
    prompt = _score_prompt("tom.png", "Tom Hanks")
    del prompt["4"]["inputs"]["images"]
    prompt["4"]["inputs"]["folder"] = "renders"
    first = comfyui.client.run(prompt)
    assert first.status == "success", first.error
    assert len(first.outputs["4"]["identity_scores"]) == 1
    _write(comfyui, "renders/two.png", np.ascontiguousarray(photo[:, ::-1]))
    second = comfyui.client.run(prompt)
    assert second.status == "success", second.error
    assert len(second.outputs["4"]["identity_scores"]) == 2, "the folder's new image was not scored (cached result)"
