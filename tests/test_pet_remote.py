"""A cat and a dog on closed models (the fake providers): their reference portraits go out as a person's do, the
prompt says which image shows the animal, and verification says what it checked: the species is there, and how
alike it looks (appearance similarity, never an identity score)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FAST, needs_faces
from pets import DOG, photo, variants
from PIL import Image

from identity.remote.runner import RemoteRequest, run
from identity.training import photos_from_paths, train
from identity.training.jobs import JobRegistry


@pytest.fixture(autouse=True)
def pet_engine_for_verification(pet_models, monkeypatch):
    monkeypatch.setenv("IDENTITY_MODELS_DIR", str(pet_models))  # where verification finds the pet engine


def sent_images(fake) -> int:
    (call,) = fake.posts("gemini")
    parts = call.json["contents"][0]["parts"]
    return sum(1 for part in parts if "inlineData" in part or "inline_data" in part)


def test_a_cat_goes_to_nb2_with_its_references_and_is_verified_by_what_can_be_measured(fake, keys, cat, embedded):
    request = RemoteRequest(operation="generate", model="nb2", profiles=[cat], prompt=f"[[{cat.id}]] asleep on a sofa")
    result = run(request, keys, embedded, policy=FAST)
    assert sent_images(fake) == min(len(cat.portraits), 4) >= 1
    prompt = " ".join(p.get("text", "") for p in fake.posts("gemini")[0].json["contents"][0]["parts"])
    assert "Chelsea (the cat in image" in prompt
    (output,) = result.report["outputs"]
    assert output["passed"] and output["scores"][cat.id] >= cat.threshold
    checked = output["checked"][cat.id]
    assert checked.startswith("cat present: yes") and "appearance similarity (not identity)" in checked
    assert "identity similarity" not in checked.replace("(not identity)", "")


def test_a_stranger_instead_of_the_cat_fails_and_says_no_cat_was_there(fake, keys, cat, embedded):
    fake.faults = ["stranger"]
    result = run(
        RemoteRequest(operation="generate", model="nb2", profiles=[cat], prompt=f"[[{cat.id}]] on a sofa"),
        keys,
        embedded,
        policy=FAST,
    )
    (output,) = result.report["outputs"]
    assert not output["passed"] and output["scores"][cat.id] == 0.0
    assert output["checked"][cat.id].startswith("cat present: no")


@needs_faces
def test_a_person_and_their_cat_in_one_request_are_each_checked_their_own_way(fake, keys, cat, people, embedded):
    obama = people["Barack Obama"]
    request = RemoteRequest(
        operation="generate", model="nb2", profiles=[obama, cat], prompt=f"[[{obama.id}]] holding [[{cat.id}]]"
    )
    (output,) = run(request, keys, embedded, policy=FAST).report["outputs"]
    assert output["passed"], output
    assert "ArcFace" in output["checked"][obama.id] and output["checked"][cat.id].startswith("cat present: yes")


@pytest.fixture(scope="module")
def dog(pet_models, tmp_path_factory):
    from identity.pets.engine import load_pet_engine

    if not DOG.is_file():
        pytest.skip(f"{DOG} absent: apt-get install darknet")
    folder = tmp_path_factory.mktemp("dog")
    for label, image in variants(photo(DOG)).items():
        Image.fromarray(image).save(folder / f"{label}.png")
    engine = load_pet_engine(pet_models / "pets", pet_models / "pet_reid")
    return train(photos_from_paths([folder]), "Rex", engine, kind="dog", registry=JobRegistry()).profile


def test_a_dog_goes_into_an_edit_with_its_references_and_is_checked_as_a_dog(fake, keys, dog, embedded):
    lawn = np.full((512, 768, 3), (90, 150, 70), np.uint8)  # the photo to edit: no dog in it
    request = RemoteRequest(
        operation="edit",
        model="gpt-image-2",
        profiles=[dog],
        inputs=[lawn],
        prompt=f"[[{dog.id}]] running across the lawn",
    )
    result = run(request, keys, embedded, policy=FAST)
    (call,) = fake.posts("openai")
    sent = [name for name, *_ in call.files if name == "image[]"]
    assert len(sent) >= 2, "the photo to edit and at least one of the dog's reference portraits"
    assert "Rex (the dog in image" in call.form["prompt"]
    (output,) = result.report["outputs"]
    assert output["passed"] and output["scores"][dog.id] >= dog.threshold, output
    checked = output["checked"][dog.id]
    assert checked.startswith("dog present: yes") and "appearance similarity (not identity)" in checked
