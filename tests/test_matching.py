"""Matching and scoring: held-out photos match, strangers stay unknown, group photos are assigned one-to-one."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import T1, face, manifest, needs_faces

from identity.images import load_image
from identity.matching import assign
from identity.scoring import annotate, score_images
from identity.training import photos_from_paths, train
from identity.training.jobs import JobRegistry

TRAIN = {
    "obama": ["obama/obama1.jpg", "obama/obama2.jpg", "obama/obama3.jpg"],
    "biden": ["biden/biden1.jpg", "biden/biden2.jpg"],
    "kit_harington": ["kit_harington/kit1.jpg", "kit_harington/kit2.jpg"],
    "rose_leslie": ["rose_leslie/rose1.jpg"],
}
HELD_OUT = {
    "obama": [
        "obama/obama4.jpg",
        "obama/obama5_720p.jpg",
        "hard/obama_partial_face1.jpg",
        "hard/obama_partial_face2.jpg",
        "hard/rgba_32bit.png",
    ],
    "kit_harington": ["kit_harington/kit3.jpg"],
    "rose_leslie": ["rose_leslie/rose2.jpg"],
}
STRANGERS = [
    "alex_lacamoire/alex1.jpg",
    "alex_lacamoire/alex2.jpg",
    "alex_lacamoire/alex3.png",
    "lin_manuel_miranda/lin1.png",
]


def score(paths, profiles, engine):
    return score_images([(str(p), load_image(p)) for p in paths], profiles, engine)


@pytest.fixture(scope="module")
def people(request):
    """Profiles of four fixture people, per engine."""
    if not face("MANIFEST.json").exists():
        pytest.skip("fixture photos absent (../shared not beside the checkout)")
    cache = {}

    def build(engine):
        if engine.name not in cache:
            cache[engine.name] = {
                person: train(
                    photos_from_paths([face(p) for p in paths]), person, engine, registry=JobRegistry()
                ).profile
                for person, paths in TRAIN.items()
            }
        return cache[engine.name]

    return build


@needs_faces
def test_held_out_photos_match_their_person_and_no_one_else(engine, people):
    profiles = people(engine)
    for person, paths in HELD_OUT.items():
        for result in score([face(p) for p in paths], list(profiles.values()), engine):
            assert len(result.faces) == 1, result.label
            found = result.faces[0]
            assert found.profile_id == profiles[person].id, (result.label, found)
            assert found.similarity >= profiles[person].threshold


@needs_faces
def test_strangers_stay_unknown(engine, people):
    profiles = list(people(engine).values())
    for result in score([face(p) for p in STRANGERS], profiles, engine):
        assert result.faces and all(f.profile_id is None and f.similarity is None for f in result.faces), result.label
        for f in result.faces:
            assert set(f.scores) == {p.id for p in profiles}, "every candidate is scored"


@needs_faces
def test_group_photos_get_every_known_person_and_leave_the_stranger_unknown(engine, people):
    profiles = people(engine)
    for path, group in manifest()["groups"].items():
        result = score([face(path)], list(profiles.values()), engine)[0]
        xs = [f.bbox[0] for f in result.faces]
        assert xs == sorted(xs), "faces are reported left to right"
        assigned = [f.profile_id for f in result.faces if f.profile_id]
        assert assigned == [profiles[p].id for p in group["left_to_right"]], (path, result.faces)
        assert len(result.faces) - len(assigned) == (1 if "third" in group.get("note", "") else 0)


@needs_faces
def test_only_the_profiles_passed_in_are_candidates(engine, people):
    obama = people(engine)["obama"]
    result = score([face("groups/obama_biden_a.jpg")], [obama], engine)[0]
    assert [f.profile_id for f in result.faces] == [obama.id, None], "Biden is unknown when only Obama is asked for"
    assert all(set(f.scores) == {obama.id} for f in result.faces)


def test_assignment_is_optimal_not_greedy():
    # Face 0 resembles both people, slightly more the first; face 1 resembles only the first.
    # Greedy gives face 0 the first person and leaves face 1 unknown; the optimum matches both.
    similarity = np.array([[0.80, 0.70], [0.75, 0.10]], np.float32)
    assert assign(similarity, np.array([0.4, 0.4], np.float32)) == [1, 0]


def test_assignment_respects_each_profiles_own_threshold():
    similarity = np.array([[0.50, 0.45]], np.float32)
    assert assign(similarity, np.array([0.55, 0.40], np.float32)) == [1]
    assert assign(similarity, np.array([0.55, 0.50], np.float32)) == [None]
    assert assign(np.zeros((0, 2), np.float32), np.array([0.4, 0.4])) == []


def test_an_image_without_the_person_scores_everyone_unknown(embedded, tom_profile):
    result = score([T1], [tom_profile], embedded)[0]
    assert len(result.faces) == 6
    assert all(f.profile_id is None for f in result.faces)
    assert result.subject_scores([tom_profile.id]) == {tom_profile.id: 0.0}


def test_annotated_image_marks_every_face(embedded, tom_profile):
    image = load_image(T1)
    result = score([T1], [tom_profile], embedded)[0]
    drawn = annotate(image, result, {tom_profile.id: "Tom Hanks"})
    assert drawn.shape == image.shape
    for f in result.faces:
        x1, y1, x2, y2 = (int(v) for v in f.bbox)
        edge = drawn[y1 + 1 : y2 - 1, x1 + 1]
        assert (np.abs(edge.astype(int) - image[y1 + 1 : y2 - 1, x1 + 1].astype(int)).sum(axis=1) > 0).mean() > 0.9


@needs_faces
def test_files_decoded_at_the_scale_detection_needs_score_as_full_decodes(embedded, people):
    from identity.images import load_reduced
    from identity.scoring import score_files

    profiles = list(people(embedded).values())
    paths = [
        face(p)
        for p in ("groups/biden_obama_b.jpg", "obama/obama3.jpg", "obama/obama6_small.jpg", "alex_lacamoire/alex3.png")
    ]
    assert load_reduced(paths[0], 640).factor == 2.0, "a 2000 px JPEG is decoded at half size"
    full = score(paths, profiles, embedded)
    reduced = score_files([(str(p), p) for p in paths], profiles, embedded)
    for a, b in zip(full, reduced):
        assert (a.width, a.height) == (b.width, b.height) and len(a.faces) == len(b.faces), a.label
        for x, y in zip(a.faces, b.faces):
            assert x.profile_id == y.profile_id, a.label
            assert np.allclose(x.bbox, y.bbox, atol=0.05 * (x.bbox[2] - x.bbox[0])), (a.label, x.bbox, y.bbox)
            assert abs(max(x.scores.values()) - max(y.scores.values())) < 0.05, (a.label, x.scores, y.scores)


@needs_faces
def test_each_face_is_embedded_once_whether_from_the_reduced_or_the_full_decode(embedded, people, monkeypatch):
    """A face too small in a DCT-reduced JPEG is aligned from the full image instead, not embedded twice."""
    from identity.images import load_reduced
    from identity.scoring import score_files

    paths = [face(p) for p in ("groups/biden_obama_b.jpg", "obama/obama3.jpg", "alex_lacamoire/alex3.png")]
    assert [load_reduced(p, 640).factor > 1 for p in paths] == [True, True, False]
    embedded_crops = []
    embed = embedded.recognizer.embed
    monkeypatch.setattr(embedded.recognizer, "embed", lambda crops: embedded_crops.append(len(crops)) or embed(crops))
    results = score_files([(str(p), p) for p in paths], list(people(embedded).values()), embedded)
    assert sum(embedded_crops) == sum(len(r.faces) for r in results) > len(paths), embedded_crops
