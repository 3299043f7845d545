"""Training keeps each reference portrait at up to 1024 px where every reference photo has the pixels (what
reference-image models are given), never upscaled; profiles without them still load."""

from __future__ import annotations

import dataclasses
import io

import cv2
import numpy as np
import pytest
from conftest import FACES
from PIL import Image

from identity.errors import ProfileFormatError
from identity.profile import ProfileStore
from identity.remote import references as refs
from identity.remote.runner import RemoteRequest, plan
from identity.training import photos_from_paths, train
from identity.training.jobs import JobRegistry
from identity.training.references import LARGE_SIDE, LARGE_STEP


def test_large_portraits_are_the_references_at_the_photos_resolution(people):
    obama = people["Barack Obama"]
    large = obama.large_portraits
    assert large is not None and len(large) == len(obama.large_references) < len(obama.portraits), (
        "the 320x240 photo among Obama's references has no large portrait"
    )
    side = large.shape[1]
    assert 384 < side <= LARGE_SIDE and side % LARGE_STEP == 0 and large.shape[1:] == (side, side, 3)
    for image, index in zip(large, obama.large_references):
        shrunk = cv2.resize(image, (384, 384), interpolation=cv2.INTER_AREA).astype(np.float32)
        assert np.abs(shrunk - obama.portraits[index]).mean() < 4, "the same head-and-shoulders crop, larger"


def test_small_photos_give_no_large_portraits(embedded):
    small = train(photos_from_paths([FACES / "obama" / "obama6_small.jpg"]), "Small", embedded, registry=JobRegistry())
    assert small.profile.large_portraits is None, "a 320x240 photo has no more than the 384 px portrait"


def test_large_portraits_are_saved_and_older_profiles_load(people, tmp_path):
    store = ProfileStore(tmp_path)
    obama = people["Barack Obama"]
    store.save(obama)
    np.testing.assert_array_equal(store.load(obama.id).large_portraits, obama.large_portraits)
    older = dataclasses.replace(obama, id="older-000000", name="Older", large_portraits=None, large_references=None)
    store.save(older)
    assert store.load("older-000000").large_portraits is None


def test_large_portraits_must_name_the_portraits_they_enlarge(people, tmp_path):
    obama = people["Barack Obama"]
    wrong = dataclasses.replace(obama, large_references=np.full(len(obama.large_portraits), 99, np.int32))
    with pytest.raises(ProfileFormatError, match="inconsistent"):
        wrong.check()


@pytest.mark.parametrize("model", ["nb2", "gpt-image-2", "qwen-image-2", "flux-2", "reve"])
def test_remote_references_are_the_large_portraits_within_the_vendors_limits(people, keys, embedded, model):
    """Every vendor takes a 1024 px reference (identity/remote/models.json `inputs`: Gemini 3072 px, OpenAI 3840 px,
    DashScope 384-3072 px, BFL 4 MP, Reve 2048 px), so the portraits chosen for a request go at the best resolution
    the profile holds, the 384 px one only where its photo had no more."""
    obama = people["Barack Obama"]
    planned = plan(
        RemoteRequest(operation="generate", model=model, profiles=[obama], prompt="[[barack-obama]]"), keys, embedded
    )
    sides = [Image.open(io.BytesIO(encoded)).size for encoded in planned.references[0]]
    chosen = refs.choose(obama, len(sides))
    large = {int(k): len(image) for k, image in zip(obama.large_references, obama.large_portraits)}
    assert sides == [(large.get(k, 384),) * 2 for k in chosen] and any(k in large for k in chosen), sides
