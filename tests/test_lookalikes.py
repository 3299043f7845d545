"""Verification that knows everyone you know: a face counts as a profile only when it is nearer to it than to
every other known profile by its margin; look-alikes are refused with the reason, and reports name the next
known person."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
from comfyui import score_prompt
from conftest import face, manifest, needs_faces

from identity.faces.face import Face
from identity.images import load_image
from identity.matching import candidate, cohort, others
from identity.profile import ProfileStore
from identity.profile.calibration import unit
from identity.scoring import Scorer, score_images
from identity.training import photos_from_paths, train
from identity.training.jobs import JobRegistry

pytestmark = needs_faces

#: Keys of a calibration written before the look-alike rule.
OLD_CALIBRATION = ("photos", "pairwise", "leave_one_out", "engine_threshold", "threshold", "confidence")


@pytest.fixture(scope="module")
def six(tmp_path_factory, embedded):
    """The fixtures' six people in one store, each trained from all but its last portrait."""
    store = ProfileStore(tmp_path_factory.mktemp("six"))
    for person, paths in manifest()["identities"].items():
        chosen = paths[:-1] if len(paths) > 1 else paths
        train(photos_from_paths([face(p) for p in chosen]), person, embedded, store, registry=JobRegistry())
    return store, {s["name"]: store.load(s["id"]) for s in store.summaries()}


def _held_out() -> list[tuple[str, str]]:
    """(person, photo) of every last portrait held out of training."""
    return [(person, paths[-1]) for person, paths in manifest()["identities"].items() if len(paths) > 1]


def _between(first, second) -> Face:
    """A synthetic look-alike: a face whose embedding lies halfway between two profiles'."""
    return Face(
        np.array([0, 0, 100, 100], np.float32),
        np.zeros((5, 2), np.float32),
        1.0,
        embedding=unit(first.centroid + second.centroid),
    )


def test_every_held_out_photo_is_still_its_person_among_all_six(six, embedded):
    store, profiles = six
    everyone = list(profiles.values())
    for person, photo in _held_out():
        mine = profiles[person]
        (alone,) = score_images([(photo, load_image(face(photo)))], [mine], embedded, cohort=store)
        assert mine.id in [f.profile_id for f in alone.faces], (photo, [f.as_dict() for f in alone.faces])
        (among,) = score_images([(photo, load_image(face(photo)))], everyone, embedded, cohort=store)
        assert mine.id in [f.profile_id for f in among.faces], photo
        for scored in among.faces:  # a face given to a profile is nearer to it than to anyone else, by its margin
            if scored.profile_id is not None:
                others = [v for k, v in scored.scores.items() if k != scored.profile_id]
                assert scored.similarity > max(others) and scored.margin >= 0.03, scored.as_dict()
                assert scored.as_dict()["next"]["similarity"] == round(max(others), 4)


def test_a_look_alike_between_two_profiles_is_refused_and_says_why(six, embedded):
    store, profiles = six
    obama, biden = profiles["obama"], profiles["biden"]
    look_alike = _between(obama, biden)
    alone = Scorer([obama], embedded, None).scored("look-alike", (100, 100), [look_alike], [])
    assert alone.faces[0].profile_id == obama.id, "each profile's threshold alone accepts the look-alike"
    known = Scorer([obama], embedded, None, store).scored("look-alike", (100, 100), [look_alike], [])
    [refused] = known.faces
    assert refused.profile_id is None
    report = refused.as_dict()
    assert report["next"]["name"] == "biden" and abs(report["margin"]) < 0.03
    assert "refused as obama" in report["refused"] and "look-alike" in report["refused"], report
    assert "biden" in report["refused"]
    assert refused.label({obama.id: "obama"}).endswith("refused: a look-alike")


def test_the_gate_says_a_look_alike_was_refused(six, embedded):
    from identity.gate import Attempt, Subject

    store, profiles = six
    obama = profiles["obama"]
    scorer = Scorer([obama], embedded, None, store)
    result = scorer.scored("attempt 1", (100, 100), [_between(obama, profiles["biden"])], [])
    [seen] = scorer.per_kind["person"]
    subject = Subject(obama.id, "obama", "person", seen.threshold, scorer.measures["person"])
    entry = Attempt(1, 0, [result], [subject]).images[0]["subjects"][obama.id]
    assert not entry["passed"] and entry["similarity"] >= seen.threshold, entry
    assert "look-alike" in entry["why"] and entry["next"]["name"] == "biden", entry


def test_a_store_with_one_profile_scores_as_before(tmp_path, embedded):
    store = ProfileStore(tmp_path)
    obama = train(
        photos_from_paths([face("obama/obama1.jpg"), face("obama/obama2.jpg"), face("obama/obama3.jpg")]),
        "obama",
        embedded,
        store,
        registry=JobRegistry(),
    ).profile
    photos = ["obama/obama4.jpg", "groups/obama_biden_a.jpg", "alex_lacamoire/alex1.jpg"]
    images = [(p, load_image(face(p))) for p in photos]
    with_cohort = score_images(images, [obama], embedded, cohort=store)
    without = score_images(images, [obama], embedded)
    assert cohort(store, [obama]) == []
    assert [[f.as_dict() for f in r.faces] for r in with_cohort] == [[f.as_dict() for f in r.faces] for r in without]
    assert [f.profile_id for f in with_cohort[0].faces] == [obama.id]
    assert all(f.nearest is None and f.refused is None for r in with_cohort for f in r.faces)


def test_an_old_profile_loads_and_is_recalibrated_against_the_store_without_a_rewrite(six, embedded, tmp_path):
    store, profiles = six
    folder = tmp_path / "store"
    shutil.copytree(store.folder, folder)
    old = profiles["obama"]
    before = replace(old, calibration={k: old.calibration[k] for k in OLD_CALIBRATION}, impostors=None)
    path = folder / f"{old.id}.safetensors"
    with open(path, "wb") as handle:
        before.write(handle)
    written = path.read_bytes()
    copy = ProfileStore(folder)
    loaded = copy.load(old.id)
    assert "margin" not in loaded.calibration and loaded.impostors is None
    scorer = Scorer([loaded], embedded, None, copy)
    [recalibrated] = scorer.per_kind["person"]
    assert recalibrated.calibration["known_others"] == 5 and recalibrated.margin is not None
    assert recalibrated.calibration["impostors"] == sum(len(p.embeddings) for p in profiles.values() if p.id != old.id)
    look_alike = _between(loaded, profiles["biden"])
    assert scorer.scored("look-alike", (100, 100), [look_alike], []).faces[0].profile_id is None
    assert path.read_bytes() == written, "recalibration happens in memory: the file is never rewritten"


def test_other_faces_in_the_training_photos_calibrate_as_impostors(tmp_path, embedded):
    photos = ["obama/obama1.jpg", "groups/obama_biden_a.jpg", "groups/biden_obama_b.jpg"]
    job = train(
        photos_from_paths([face(p) for p in photos]), "obama", embedded, ProfileStore(tmp_path), registry=JobRegistry()
    )
    profile = ProfileStore(tmp_path).load(job.profile_id)
    assert profile.impostors is not None and len(profile.impostors) >= 2, "Biden twice (and the child)"
    assert profile.calibration["impostors"] == len(profile.impostors)
    assert f"calibrated against {len(profile.impostors)} impostor faces" in job.describe()


def test_two_profiles_of_one_person_do_not_refuse_each_other(six, embedded, tmp_path):
    """A person retrained under another name is the same person, not a look-alike."""
    store, profiles = six
    folder = tmp_path / "store"
    shutil.copytree(store.folder, folder)
    copy = ProfileStore(folder)
    train(
        photos_from_paths([face("obama/obama1.jpg"), face("obama/obama4.jpg")]),
        "obama again",
        embedded,
        copy,
        registry=JobRegistry(),
    )
    obama = profiles["obama"]
    (result,) = score_images(
        [("held out", load_image(face("obama/obama6_small.jpg")))], [obama], embedded, cohort=copy
    )
    assert [f.profile_id for f in result.faces] == [obama.id]
    assert result.faces[0].nearest[1] != "obama again"


def _with_report(prompt: dict) -> dict:
    """ArcFace Score's report_json shown by PreviewAny (node "5")."""
    return {**prompt, "5": {"class_type": "PreviewAny", "inputs": {"source": ["4", 2]}}}


def test_arcface_scores_table_shows_the_nearest_other_known_person(comfyui, six, embedded):
    """The node's table and report name the next known person (as the library scores it against ComfyUI's
    store); with known_people off, nobody else is compared."""
    import json

    store, profiles = six
    folder = comfyui.base / "models" / "identity_profiles"
    folder.mkdir(parents=True, exist_ok=True)
    copied = [folder / f"{profiles[n].id}.safetensors" for n in ("obama", "biden", "kit_harington")]
    for target in copied:
        shutil.copy(store.folder / target.name, target)
    shutil.copy(face("obama/obama6_small.jpg"), comfyui.base / "input" / "lookalike_held_out.jpg")
    try:
        live = ProfileStore(folder)  # other tests' profiles too, another of Obama or Biden among them perhaps
        everyone = [live.load(s["id"]) for s in live.summaries() if s["kind"] == "person"]
        everyone = [p for p in everyone if p.engine.key == embedded.info.key]
        (expected,) = score_images([("held out", load_image(face("obama/obama6_small.jpg")))], everyone, embedded)
        seen = [candidate(p, embedded) for p in everyone]
        mine = [c.profile_id for c in seen].index(profiles["obama"].id)
        scores = next(f.scores for f in expected.faces if f.scores[profiles["obama"].id] > 0.5)
        rivals = [
            scores[c.profile_id]
            for c, other in zip(seen, others(seen, [], embedded.info.match_threshold)[mine])
            if other
        ]
        run = comfyui.client.run(_with_report(score_prompt("lookalike_held_out.jpg", "obama")))
        assert run.status == "success", run.error
        [table] = run.outputs["4"]["identity_scores"]
        [report] = json.loads(run.outputs["5"]["text"][0])["images"]
        shown = report["faces"][0]["next"]
        assert abs(shown["similarity"] - max(rivals)) < 0.005 and abs(scores[shown["profile_id"]] - max(rivals)) < 0.005
        assert report["faces"][0]["margin"] > 0.03
        assert table["subjects"]["obama"] > 0 and table["next"]["obama"].startswith(f"next: {shown['name']} 0.")
        off = comfyui.client.run(score_prompt("lookalike_held_out.jpg", "obama", known_people=False))
        assert off.status == "success", off.error
        assert off.outputs["4"]["identity_scores"][0]["next"] == {}
    finally:
        for target in copied:
            target.unlink(missing_ok=True)
