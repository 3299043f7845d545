"""Cat and dog profiles: the networks agree with reality, training gives every photo a verdict, the kind is
kept, a user's re-identification model takes over, and a family photo scores people by face and pets by body."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
from conftest import FACES, face, needs_faces, run_cli
from onnx import TensorProto, helper
from pets import (
    DOG,
    DOG_BOX,
    OTHER_CAT,
    PERSON_WITH_DOG,
    chelsea,
    needs_darknet,
    photo,
    variants,
)
from safetensors import safe_open
from safetensors.numpy import save_file

from identity.errors import TrainingError
from identity.images import load_image
from identity.pets.animal import APPEARANCE, IDENTITY
from identity.pets.engine import load_pet_engine
from identity.pets.lite0 import Lite0, species
from identity.profile import ProfileStore
from identity.scoring import batch_report, score_images
from identity.training import Photo, train
from identity.training.jobs import JobRegistry


@pytest.fixture(scope="module")
def models(pet_models):
    return pet_models


@pytest.fixture(scope="module")
def pets(models):
    return load_pet_engine(models / "pets", models / "pet_reid")


def saved(folder, images: dict[str, np.ndarray]) -> list[Photo]:
    photos = []
    for label, image in images.items():
        path = folder / f"{label}.png"
        cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1]))
        photos.append(Photo(label, path))
    return photos


#: Every message a cat training reported, in order (the job's `on_update`).
CAT_MESSAGES: list[str] = []


@pytest.fixture(scope="module")
def cat_job(pets, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cat")
    cat = chelsea()
    images = {
        **variants(cat),
        "blurred": cv2.GaussianBlur(cat, (0, 0), 6),
        "thumbnail": cv2.resize(cat, (90, 60), interpolation=cv2.INTER_AREA),
    }
    if DOG.is_file():
        images["a dog"] = photo(DOG)
    if OTHER_CAT.is_file():
        images["another cat"] = photo(OTHER_CAT)
    if FACES.is_dir():
        images["a person"] = load_image(face("obama/obama1.jpg"))
    return train(
        saved(folder, images),
        "Chelsea",
        pets,
        ProfileStore(folder / "profiles"),
        kind="pet",
        registry=JobRegistry(),
        on_update=lambda job: CAT_MESSAGES.append(job.message),
    )


@pytest.fixture(scope="module")
def dog_job(pets, tmp_path_factory):
    if not DOG.is_file():
        pytest.skip(f"{DOG} absent: apt-get install darknet")
    folder = tmp_path_factory.mktemp("dog")
    images = {**variants(photo(DOG)), "a cat": chelsea()}
    return train(
        saved(folder, images), "Rex", pets, ProfileStore(folder / "profiles"), kind="dog", registry=JobRegistry()
    )


def test_lite0_written_here_classifies_real_animals_as_imagenet_does(models):
    """The network code is checked by the weights' own classifier head: a wrong layer would not say "cat"."""
    network = Lite0(models / "pets" / "efficientnet-lite0.safetensors")
    coffee = __import__("skimage.data", fromlist=["coffee"]).coffee()
    crops = np.stack([cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA) for image in (chelsea(), coffee)])
    _, logits = network.forward(crops)
    assert np.argmax(logits[0]) in range(281, 286)  # tabby, tiger, Persian, Siamese or Egyptian cat
    assert np.argmax(logits[1]) == 967  # espresso
    assert species(logits)[0][0] == "cat" and species(logits)[1][0] is None


@needs_darknet
def test_detector_finds_the_dogs_in_darknets_own_photos(pets):
    (dog,) = pets.detect(photo(DOG))
    assert dog.kind == "dog" and np.allclose(dog.bbox, DOG_BOX, atol=12)
    assert {a.kind for a in pets.detect(photo(PERSON_WITH_DOG))} == {"dog"}


@needs_faces
def test_no_animal_in_a_portrait_of_a_person(pets):
    assert pets.detect(load_image(face("obama/obama1.jpg"))) == []


def test_cat_profile_trains_with_a_verdict_for_every_photo(cat_job):
    verdicts = {p["path"]: p["code"] for p in cat_job.photos}
    assert [k for k, v in verdicts.items() if v == "accepted"] == list(variants(chelsea()))
    assert verdicts["blurred"] == "too_blurry" and verdicts["thumbnail"] == "too_small"
    for label, code in (("a dog", "wrong_species"), ("another cat", "not_main_subject"), ("a person", "no_animal")):
        assert verdicts.get(label, code) == code
    profile = cat_job.profile
    assert profile.kind == "cat"  # detected: the photos are of a cat
    assert profile.portraits.shape[1:] == (384, 384, 3) and 2 <= len(profile.portraits) <= 4
    assert len(set(profile.reference_photos.tolist())) == len(profile.reference_photos)
    assert profile.report["measures"] == APPEARANCE
    assert any("not identity" in w or "same breed" in w for w in cat_job.warnings)


def test_a_pet_training_speaks_of_animals_never_of_faces(cat_job):
    assert "waiting for the pet engine" in CAT_MESSAGES and "finding cats and dogs" in CAT_MESSAGES, CAT_MESSAGES
    assert not [m for m in CAT_MESSAGES if "face" in m], CAT_MESSAGES


def test_kind_is_saved_listed_and_reloaded(cat_job, tmp_path):
    store = ProfileStore(tmp_path)
    store.save(cat_job.profile)
    assert store.summaries()[0]["kind"] == "cat"
    assert store.load(cat_job.profile.id).kind == "cat"


def test_a_cat_profile_holds_no_landmarks_or_poses(cat_job, tmp_path):
    """An animal has no facial landmarks: its profile file says so by leaving them out (format 2)."""
    profile = cat_job.profile
    assert profile.landmarks is None and profile.pose is None and profile.faces_512 is None
    with safe_open(str(ProfileStore(tmp_path).save(profile)), framework="numpy") as handle:
        assert not {"landmarks", "pose", "faces_512"} & set(handle.keys())
        assert handle.metadata()["format_version"] == "2"


def test_a_cat_profile_saved_by_format_1_still_loads(cat_job, tmp_path):
    """Format 1 had the person schema only: a cat's file held zero landmarks and poses. It loads as it was, and a
    save writes it without them."""
    profile, store = cat_job.profile, ProfileStore(tmp_path)
    count = len(profile.embeddings)
    old = {
        **profile.tensors(),
        "landmarks": np.zeros((count, 5, 2), np.float32),
        "pose": np.zeros((count, 3), np.float32),
    }
    save_file(old, str(store.path(profile.id)), metadata={**profile.metadata(), "format_version": "1"})
    loaded = store.load(profile.id)
    assert loaded.kind == "cat" and loaded.landmarks is None and loaded.pose is None
    for name, tensor in profile.tensors().items():
        np.testing.assert_array_equal(loaded.tensors()[name], tensor, err_msg=name)
    assert loaded.summary() == profile.summary()
    with safe_open(str(store.save(loaded, overwrite=True)), framework="numpy") as handle:
        assert not {"landmarks", "pose"} & set(handle.keys()) and handle.metadata()["format_version"] == "2"


def test_dog_profile_rejects_the_wrong_species(dog_job):
    verdicts = {p["path"]: p["code"] for p in dog_job.photos}
    assert verdicts.pop("a cat") == "wrong_species"
    assert set(verdicts.values()) == {"accepted"} and dog_job.profile.kind == "dog"


def test_asking_for_an_unknown_kind_names_the_kinds(pets, tmp_path):
    with pytest.raises(Exception, match="person, cat, dog, pet"):
        train(saved(tmp_path, {"cat": chelsea()}), "Tom", pets, kind="hamster", registry=JobRegistry())


def test_unreadable_photos_of_a_pet_get_advice_about_animals(pets, tmp_path):
    """Photos refused before analysis get the kind's advice too (it once spoke of the person's face)."""
    (tmp_path / "notes.jpg").write_text("not a photo")
    with pytest.raises(TrainingError, match="not an image.*where the animal is at least 64 px") as refused:
        train([Photo("notes", tmp_path / "notes.jpg")], "Rex", pets, kind="pet", registry=JobRegistry())
    assert "face" not in str(refused.value)


@needs_faces
@needs_darknet
def test_family_photo_scores_people_by_face_and_pets_by_detector(people, cat_job, dog_job, embedded, pets):
    """Obama, his dog and a cat side by side: each is found by its own detector and assigned within its kind."""
    height = 400

    def fit(image):
        return cv2.resize(image, (round(image.shape[1] * height / image.shape[0]), height))

    dog = photo(DOG)[DOG_BOX[1] : DOG_BOX[3], DOG_BOX[0] : DOG_BOX[2]]
    family = np.concatenate([fit(load_image(face("obama/obama2.jpg"))), fit(dog), fit(chelsea())], axis=1)
    profiles = [people["Barack Obama"], dog_job.profile, cat_job.profile]
    (result,) = score_images([("family", family)], profiles, embedded, pet_engine=lambda: pets)
    assigned = {f.profile_id: f for f in result.faces if f.profile_id}
    assert set(assigned) == {p.id for p in profiles}
    assert [f.kind for f in sorted(assigned.values(), key=lambda f: f.bbox[0])] == ["person", "dog", "cat"]
    assert assigned[dog_job.profile.id].measures == APPEARANCE
    assert "ArcFace" in assigned[people["Barack Obama"].id].measures
    report = batch_report([result], profiles, [0])
    assert report["kinds"] == {p.id: p.kind for p in profiles}
    assert "note" not in report["images"][0]
    # Without a dog profile asked for, the dog is still shown: as an unknown dog.
    (without_dog,) = score_images(
        [("family", family)], [people["Barack Obama"], cat_job.profile], embedded, pet_engine=lambda: pets
    )
    assert [(f.kind, f.profile_id) for f in without_dog.faces if f.kind == "dog"] == [("dog", None)]
    # The cat is not offered to the dog: without it in the photo, the dog profile is missing, not mis-assigned.
    (alone,) = score_images(
        [("cat alone", chelsea())], [dog_job.profile, cat_job.profile], embedded, pet_engine=lambda: pets
    )
    assert [f.profile_id for f in alone.faces] == [cat_job.profile.id]


def tiny_reid(path, batch="N"):
    """A real ONNX file as an exported re-identification model is shaped: [N,3,64,64] in, [N,3] out (`batch=1`:
    as `torch.onnx.export` writes it without `dynamic_axes`)."""
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["embedding"]),
        ],
        "reid",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 64, 64])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, 3])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))


def test_a_reid_model_in_the_slot_takes_over_and_says_so(models, tmp_path, monkeypatch):
    """The slot is this test's own models folder: a model left in the shared one would re-embed every later
    file's cat."""
    monkeypatch.setenv("IDENTITY_MODELS_DIR", str(tmp_path))
    (tmp_path / "pet_reid").mkdir()
    tiny_reid(tmp_path / "pet_reid" / "my_reid.onnx")
    engine = load_pet_engine(models / "pets")  # the slot found as the pack finds it: models_dir() / "pet_reid"
    assert engine.info.name == "pets:reid:my_reid.onnx" and engine.info.dim == 3 and engine.measures == IDENTITY
    vectors = engine.embed(np.stack([cv2.resize(chelsea(), (224, 224))] * 2))
    assert vectors.shape == (2, 3) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_reid_model_exported_with_batch_1_embeds_many_animals_at_once(models, tmp_path):
    tiny_reid(tmp_path / "fixed_batch.onnx", batch=1)
    engine = load_pet_engine(models / "pets", tmp_path)
    crops = np.stack([cv2.resize(chelsea(), (224, 224)), cv2.resize(chelsea()[:, ::-1], (224, 224)) // 2])
    together = engine.embed(crops)
    alone = np.concatenate([engine.embed(crops[i : i + 1]) for i in range(2)])
    assert together.shape == (2, 3) and np.allclose(together, alone, atol=1e-5)
    # GlobalAveragePool of ImageNet-normalised pixels: the channel means, checked here without the model.
    means = (crops.reshape(2, -1, 3).mean(axis=1) - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375]
    assert np.allclose(together, means / np.linalg.norm(means, axis=1, keepdims=True), atol=1e-3)


def test_a_reid_model_without_a_fixed_image_size_is_refused_with_the_fix(models, tmp_path):
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["images"], ["pooled"])],
        "reid",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["N", 3, 1, 1])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9),
        str(tmp_path / "any_size.onnx"),
    )
    with pytest.raises(Exception, match=r"fixed H and W \(it takes \['N', 3, 'H', 'W'\]\).*fixed input size"):
        load_pet_engine(models / "pets", tmp_path)


def test_a_broken_reid_file_is_refused_with_the_fix(models, tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"not onnx")
    with pytest.raises(Exception, match="not a loadable ONNX model.*remove it"):
        load_pet_engine(models / "pets", tmp_path)


def test_missing_conversion_names_the_install_step(tmp_path):
    with pytest.raises(Exception, match="python install.py"):
        load_pet_engine(tmp_path / "pets", tmp_path)


def test_command_line_installs_trains_lists_and_scores_a_cat(tmp_path):
    """The install step and a cat profile from a terminal; the score line says what it measured."""

    def cli(*args):
        result = run_cli(*args, env={"IDENTITY_MODELS_DIR": str(tmp_path / "models")})
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "efficientnet-lite0.safetensors" in cli("pets-install")
    photos = saved(tmp_path, variants(chelsea()))
    report = json.loads(
        cli(
            "train",
            *[p.source for p in photos],
            "--name",
            "Chelsea",
            "--kind",
            "pet",
            "--json",
            "--store",
            tmp_path / "profiles",
        )
    )
    assert report["kind"] == "cat" and {p["verdict"] for p in report["photos"]} == {"accepted"}
    assert " cat " in cli("list", "--store", tmp_path / "profiles")
    scored = cli("score", photos[0].source, "--profile", "Chelsea", "--store", tmp_path / "profiles")
    assert "cat 1" in scored and "Chelsea" in scored and APPEARANCE in scored


def test_local_reference_prompts_name_the_cat_as_a_cat(cat_job, people):
    from identity.reference import reference_prompt

    obama, cat = people["Barack Obama"], cat_job.profile
    compiled = reference_prompt(f"[[{obama.id}]] strokes [[{cat.id}]]", [obama, cat])
    assert compiled == "the person in reference image 1 (Barack Obama) strokes the cat in reference image 2 (Chelsea)"


def test_with_a_reid_model_a_profile_trained_without_it_is_re_embedded_and_scores_say_so(
    models, cat_job, embedded, tmp_path
):
    reid = tmp_path / "pet_reid"
    reid.mkdir()
    tiny_reid(reid / "my_reid.onnx")
    engine = load_pet_engine(models / "pets", reid)
    (result,) = score_images([("cat", chelsea())], [cat_job.profile], embedded, pet_engine=lambda: engine)
    (cat,) = result.faces
    assert cat.profile_id == cat_job.profile.id and cat.measures == IDENTITY
    assert set(cat.scores) == {cat_job.profile.id} and cat.similarity > 0.9  # in the model's own 3-d space


def test_a_missing_pet_model_is_named_without_the_machines_folders(tmp_path):
    """The panel answers a pet upload with this sentence: the file and its models subfolder, never a server path."""
    from identity.errors import ModelFilesMissing

    with pytest.raises(ModelFilesMissing) as missing:
        load_pet_engine(tmp_path / "pets", tmp_path / "pet_reid")
    message = str(missing.value)
    assert "efficientnet-lite0.safetensors is missing from the models folder's pets/" in message, message
    assert str(tmp_path) not in message and "install.py" in message
