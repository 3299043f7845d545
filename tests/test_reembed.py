"""A profile trained with one engine scores with another: its stored crops are re-embedded."""

from __future__ import annotations

import pytest
from conftest import face, needs_faces, needs_testpack

from identity.images import load_image
from identity.matching import candidate
from identity.scoring import score_images
from identity.training import photos_from_paths, train
from identity.training.jobs import JobRegistry


@needs_faces
@needs_testpack
@pytest.mark.parametrize("trained_with,scored_with", [("testpack", "embedded"), ("embedded", "testpack")])
def test_reembedding_under_another_engine(request, trained_with, scored_with):
    trainer, scorer = request.getfixturevalue(trained_with), request.getfixturevalue(scored_with)
    obama = train(
        photos_from_paths([face(f"obama/obama{i}.jpg") for i in (1, 2, 3)]), "Obama", trainer, registry=JobRegistry()
    ).profile
    biden = train(
        photos_from_paths([face("biden/biden1.jpg"), face("biden/biden2.jpg")]),
        "Biden",
        trainer,
        registry=JobRegistry(),
    ).profile
    seen = candidate(obama, scorer)
    assert seen.reembedded and seen.centroid.shape == (scorer.info.dim,)
    assert seen.threshold >= scorer.info.match_threshold
    assert candidate(obama, scorer) is seen, "re-embedding happens once per profile and engine"
    assert not candidate(obama, trainer).reembedded
    result = score_images([(p, load_image(face(p))) for p in ("groups/obama_biden_a.jpg",)], [obama, biden], scorer)[0]
    assert [f.profile_id for f in result.faces] == [obama.id, biden.id]
    assert obama.engine.name == trainer.name, "the profile itself is not changed"
