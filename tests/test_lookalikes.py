"""Verification that knows everyone you know: a face counts as a profile only when it is nearer to it than to
every other known profile by its margin; look-alikes are refused with the reason, and reports name the next
known person."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
from comfyui import score_prompt
from conftest import face, manifest, needs_faces, needs_testpack

from identity.errors import IdentityError
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
    (result,) = score_images([("held out", load_image(face("obama/obama6_small.jpg")))], [obama], embedded, cohort=copy)
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


# ----- the cohort as it is read: embeddings only, once per file version ---------------------------------------


def _copy(store, tmp_path) -> ProfileStore:
    folder = tmp_path / "store"
    shutil.copytree(store.folder, folder)
    return ProfileStore(folder)


def test_a_verification_reads_the_others_embeddings_only_and_rereads_a_changed_file(
    six, embedded, tmp_path, monkeypatch
):
    """Biden's file without its portraits (which `load` refuses) still serves as cohort, no other profile is loaded
    whole, and a retrained Biden is read again."""
    from safetensors.numpy import save_file

    store, profiles = six
    copy = _copy(store, tmp_path)
    obama, biden = profiles["obama"], profiles["biden"]
    tensors = {k: v for k, v in biden.tensors().items() if k not in ("portraits", "reference_photos")}
    save_file(tensors, str(copy.path(biden.id)), metadata=biden.metadata())
    with pytest.raises(IdentityError, match="lacks the tensors"):
        ProfileStore(copy.folder).load(biden.id)
    loaded = []
    monkeypatch.setattr(ProfileStore, "load", lambda self, profile_id: loaded.append(profile_id))
    scorer = Scorer([obama], embedded, None, copy)
    [refused] = scorer.scored("look-alike", (100, 100), [_between(obama, biden)], []).faces
    assert refused.profile_id is None and refused.nearest[1] == "biden", refused.as_dict()
    assert loaded == [] and scorer.left_out == []
    assert sorted(c.name for c in scorer.known["person"]) == sorted(n for n in profiles if n != "obama")

    monkeypatch.undo()
    moved = replace(biden, embeddings=-biden.embeddings, centroid=-biden.centroid)  # "retrained": far from Obama
    copy.save(moved, overwrite=True)
    again = Scorer([obama], embedded, None, copy)
    [seen] = [c for c in again.known["person"] if c.profile_id == biden.id]
    assert np.allclose(seen.centroid, -biden.centroid)
    assert again.scored("look-alike", (100, 100), [_between(obama, biden)], []).faces[0].nearest[1] != "biden"


def test_a_calibration_against_the_store_is_made_once_until_the_rivals_change(six, embedded, tmp_path, monkeypatch):
    from identity import matching

    store, profiles = six
    copy = _copy(store, tmp_path)
    calls = []
    real = matching.calibrate
    monkeypatch.setattr(matching, "calibrate", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = Scorer([profiles["obama"]], embedded, None, copy).per_kind["person"][0]
    second = Scorer([profiles["obama"]], embedded, None, copy).per_kind["person"][0]
    assert len(calls) == 1 and second.calibration == first.calibration and second.margin == first.margin
    copy.delete(profiles["biden"].id)
    third = Scorer([profiles["obama"]], embedded, None, copy).per_kind["person"][0]
    assert len(calls) == 2 and third.calibration["known_others"] == first.calibration["known_others"] - 1


@needs_testpack
def test_a_profile_of_another_engine_is_re_embedded_into_the_cohort_or_left_out_with_the_reason(
    six, embedded, testpack, tmp_path
):
    from safetensors.numpy import save_file

    from identity.scoring import batch_report

    store, profiles = six
    copy = _copy(store, tmp_path)
    obama, biden = profiles["obama"], profiles["biden"]
    copy.delete(biden.id)
    photos = photos_from_paths([face(p) for p in manifest()["identities"]["biden"][:-1]])
    other = train(photos, "biden", testpack, copy, registry=JobRegistry()).profile
    scorer = Scorer([obama], embedded, None, copy)
    [seen] = [c for c in scorer.known["person"] if c.profile_id == other.id]
    assert seen.reembedded and seen.centroid.shape == (embedded.info.dim,)
    [refused] = scorer.scored("look-alike", (100, 100), [_between(obama, biden)], []).faces
    assert refused.profile_id is None and refused.nearest[1] == "biden", refused.as_dict()

    tensors = other.tensors()
    doubled = np.concatenate([tensors["crops"], tensors["crops"]])  # a crop per embedding no more
    save_file({**tensors, "crops": doubled}, str(copy.path(other.id)), metadata=other.metadata())
    damaged = Scorer([obama], embedded, None, copy)
    assert other.id not in [c.profile_id for c in damaged.known["person"]]
    [note] = damaged.left_out
    assert f"biden ({other.id}), trained with {testpack.name}, is left out" in note, note
    assert batch_report([], [obama], [], damaged.left_out)["left_out"] == [note]


def test_the_stores_version_changes_with_every_write_here_or_in_another_process(six, tmp_path):
    """What ArcFace Score's and the gate's fingerprints hold (`glue.known_state`): one stat of the folder."""
    import subprocess
    import sys
    from pathlib import Path

    store, profiles = six
    copy = _copy(store, tmp_path)
    seen = [copy.version()]
    copy.save(replace(profiles["biden"], id="biden-copy01", name="biden copy"))  # in this process, at once
    seen.append(copy.version())
    copy.rename("biden-copy01", "biden twice")
    seen.append(copy.version())
    root = Path(__file__).resolve().parent.parent
    for step in ("store.rename('biden-copy01', 'biden thrice')", "store.delete('biden-copy01')"):
        code = f"from identity.profile import ProfileStore; store = ProfileStore({str(copy.folder)!r}); {step}"
        subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
        seen.append(copy.version())
    assert len(set(seen)) == len(seen), seen
    assert copy.version() == seen[-1], "steady while nothing changes"
