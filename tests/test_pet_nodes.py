"""Pets inside a real ComfyUI: Profile Train makes a cat profile, the profile list says "cat", and ArcFace Score
finds the person by face and the cat by the animal detector in one photo."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import TOM_HANKS
from pets import DOG, OTHER_CAT, chelsea, needs_darknet, variants
from PIL import Image

from identity.images import load_image
from identity.pets.engine import install


@pytest.fixture(scope="module")
def cat(comfyui):
    install(comfyui.base / "models" / "pets")  # what install.py does in a ComfyUI's models folder
    folder = comfyui.base / "input" / "pets" / "chelsea"
    folder.mkdir(parents=True, exist_ok=True)
    for label, image in variants(chelsea()).items():
        Image.fromarray(image).save(folder / f"{label}.png")
    prompt = {
        "1": {
            "class_type": "IdentityProfileTrain",
            "inputs": {"name": "Chelsea", "folder": "pets/chelsea", "kind": "pet", "overwrite": True},
        }
    }
    run = comfyui.client.run(prompt)
    assert run.status == "success", run.error.get("exception_message")
    return run


def test_profile_train_makes_a_cat_profile_that_the_list_calls_a_cat(comfyui, cat):
    report = cat.outputs["1"]["text"][0]
    assert report.count("good photo of the cat") == 4 and "appearance similarity" in report
    listed = {p["name"]: p for p in comfyui.client.request("/identity/profiles")["profiles"]}
    assert listed["Chelsea"]["kind"] == "cat"


def test_arcface_score_finds_the_person_by_face_and_the_cat_by_body(comfyui, cat):
    person, animal = load_image(TOM_HANKS), chelsea()
    height = 300
    fitted = [
        np.asarray(Image.fromarray(i).resize((round(i.shape[1] * height / i.shape[0]), height)))
        for i in (person, animal)
    ]
    Image.fromarray(np.concatenate(fitted, axis=1)).save(comfyui.base / "input" / "tom_and_cat.png")
    tom = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "tom.png"}},
        "2": {
            "class_type": "IdentityProfileTrain",
            "inputs": {"name": "Tom Hanks (pets)", "images": ["1", 0], "overwrite": True},
        },
    }
    Image.open(TOM_HANKS).save(comfyui.base / "input" / "tom.png")
    assert comfyui.client.run(tom).status == "success"
    prompt = {
        "1": {"class_type": "IdentityProfileLoad", "inputs": {"profile": "Tom Hanks (pets)"}},
        "2": {"class_type": "IdentityProfileLoad", "inputs": {"profile": "Chelsea", "profiles": ["1", 0]}},
        "3": {"class_type": "LoadImage", "inputs": {"image": "tom_and_cat.png"}},
        "4": {
            "class_type": "IdentityArcFaceScore",
            "inputs": {"images": ["3", 0], "profiles": ["2", 0], "min_similarity": 0.0, "top_k": 0},
        },
    }
    run = comfyui.client.run(prompt)
    assert run.status == "success", run.error.get("exception_message")
    (badge,) = run.outputs["4"]["identity_scores"]
    assert badge["subjects"]["Tom Hanks (pets)"] > 0 and badge["subjects"]["Chelsea"] > 0


def test_the_panel_route_trains_a_dog_or_cat_as_asked_and_refuses_an_unknown_kind(comfyui, cat):
    from test_web_routes import upload, wait_for

    photos = []
    for label, image in variants(chelsea()).items():
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        photos.append((f"{label}.png", buffer.getvalue()))
    status, answer = upload(comfyui, "Chelsea as a dog", photos, kind="dog")
    assert status == 202, answer
    job = wait_for(comfyui, answer["job"])
    assert job["status"] == "ERROR" and "wrong species" in job["message"], "a cat is refused for a dog profile"
    status, answer = upload(comfyui, "Chelsea (panel)", photos, kind="pet")
    assert status == 202 and wait_for(comfyui, answer["job"])["status"] == "READY"
    listed = {p["name"]: p for p in comfyui.client.request("/identity/profiles")["profiles"]}
    assert listed["Chelsea (panel)"]["kind"] == "cat"
    status, answer = upload(comfyui, "Hammy", photos, kind="hamster")
    assert status == 400 and "use one of: person, cat, dog, pet" in answer["error"]


def test_identity_generate_sends_the_cat_and_reports_what_it_checked(comfyui, cat, fake):
    from comfyui import api_twin

    folder = comfyui.user / "identity_layer"
    folder.mkdir(parents=True, exist_ok=True)
    fake.keys_file(folder)
    fake.reset()
    cat_id = next(p["id"] for p in comfyui.client.request("/identity/profiles")["profiles"] if p["name"] == "Chelsea")
    prompt = api_twin("remote_generate_portrait_nb2")
    prompt["3"]["inputs"]["profile"] = "Chelsea"
    prompt["6"]["inputs"].update(prompt=f"[[{cat_id}]] asleep on a sofa", num_output_images=1, rerolls=0)
    run = comfyui.client.run(prompt)
    assert run.status == "success", run.error.get("exception_message")
    report = json.loads(run.outputs["8"]["text"][0])
    (output,) = report["outputs"]
    assert output["passed"] and output["checked"][cat_id].startswith("cat present: yes")
    assert "appearance similarity (not identity)" in output["checked"][cat_id]
    assert "Chelsea (the cat in image" in fake.posts("gemini")[0].json["contents"][0]["parts"][-1]["text"]


@needs_darknet
@pytest.mark.skipif(not OTHER_CAT.is_file(), reason=f"{OTHER_CAT} absent: apt-get install opencv-doc")
def test_the_gate_rerolls_until_the_cat_comes_up_and_says_it_judged_appearance(comfyui, cat):
    from test_identity_gate import gate_prompt, report_of

    folder = comfyui.base / "input" / "pets" / "gate"
    folder.mkdir(parents=True, exist_ok=True)
    held_out = np.clip(chelsea().astype(np.float32) * 1.15, 0, 255).astype(np.uint8)[12:-12, 20:-20]
    for name, image in {"dog": load_image(DOG), "other cat": load_image(OTHER_CAT), "chelsea": held_out}.items():
        Image.fromarray(image).save(folder / f"{name}.png")
    names = {name: f"pets/gate/{name}.png" for name in ("dog", "other cat", "chelsea")}
    run = comfyui.client.run(gate_prompt(names, ("dog", "other cat", "chelsea"), profile="Chelsea"))
    assert run.status == "success", run.error
    report = report_of(run)
    (profile_id,) = report["profiles"]
    assert [a["passed"] for a in report["attempts"]] == [False, False, True], report["verdict"]
    assert report["verdict"].startswith("passed on attempt 3 of 3 (seed 2): Chelsea")
    for attempt in report["attempts"]:
        subject = attempt["images"][0]["subjects"][profile_id]
        assert "appearance" in subject["measures"] and "ArcFace" not in subject["measures"], subject
