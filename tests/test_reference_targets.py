"""References for each target model: its image count refused before anything runs, with the limit named; sizes
fitted, never upscaled; the prompt naming images the way that model's node does; a report of who is where."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from identity.errors import IdentityError
from identity.targets import TARGETS, references_for


def person(profile, n: int, side: int, portraits: int = 2, kind: str = "person"):
    large = np.stack([np.full((side, side, 3), 10 * n + i, np.uint8) for i in range(portraits)])
    return dataclasses.replace(profile, id=f"p-{n}", name=f"Person {n}", kind=kind, large_portraits=large)


@pytest.mark.parametrize("key", list(TARGETS))
def test_each_targets_image_count_is_refused_with_its_limit_named(tom_profile, key):
    target = TARGETS[key]
    profiles = [person(tom_profile, n, 512) for n in range(target.max_images + 1)]
    with pytest.raises(IdentityError, match=rf"takes at most {target.max_images} images \({target.source}"):
        references_for(profiles, key, "")
    fitting = references_for(profiles[: target.max_images - 1], key, "", own_images=1)
    assert len(fitting.images) == target.max_images - 1
    with pytest.raises(IdentityError, match="lower 'portraits'"):
        references_for(profiles[: target.max_images - 1], key, "", portraits=2, own_images=1)


@pytest.mark.parametrize(
    ("key", "named"),
    [
        ("qwen-image-edit", "the person in Picture 2 (Person 1) hugs the person in Picture 3 (Person 2)"),
        ("qwen-image-api", "the person in @Image2 (Person 1) hugs the person in @Image3 (Person 2)"),
        ("gemini", "the person in image 2 (Person 1) hugs the person in image 3 (Person 2)"),
        ("generic", "the person in reference image 2 (Person 1) hugs the person in reference image 3 (Person 2)"),
    ],
)
def test_the_prompt_names_images_as_the_targets_node_does(tom_profile, key, named):
    profiles = [person(tom_profile, 1, 512), person(tom_profile, 2, 512)]
    found = references_for(profiles, key, "[[p-1]] hugs [[person-2]]", own_images=1)
    assert found.prompt == named
    assert found.report[0].endswith("your own image") and "Person 2 (p-2)" in found.report[2]


def test_several_portraits_of_a_profile_are_named_together(tom_profile):
    found = references_for([person(tom_profile, 1, 512)], "gpt-image", "[[p-1]] waves", portraits=2)
    assert found.prompt == "the person in image 1 and image 2 (Person 1) waves"
    assert [image[0, 0, 0] for image in found.images] == [10, 11], "best portraits first"
    fewer = [person(tom_profile, 1, 512, portraits=2), person(tom_profile, 2, 512, portraits=1)]
    with pytest.raises(IdentityError, match="give 3 reference"):
        references_for(fewer, "qwen-image-edit", "", portraits=2, own_images=1)
    assert len(references_for(fewer, "qwen-image-edit", "", portraits=2).images) == 3, "each gives what it holds"


def test_sizes_are_fitted_down_to_the_smallest_never_up(tom_profile):
    big, small = person(tom_profile, 1, 1024, portraits=1), person(tom_profile, 2, 640, portraits=1)
    found = references_for([big, small], "flux2", "")
    assert [image.shape for image in found.images] == [(640, 640, 3)] * 2
    old = dataclasses.replace(tom_profile, large_portraits=None)  # trained before large portraits were kept
    assert references_for([old], "flux2", "").images[0].shape == tom_profile.portraits.shape[1:]


def test_bad_input_is_one_sentence_naming_the_fix(tom_profile):
    with pytest.raises(IdentityError, match="connect Profile Load"):
        references_for([], "flux2", "")
    with pytest.raises(IdentityError, match="mix kinds"):
        references_for([person(tom_profile, 1, 512), person(tom_profile, 2, 512, kind="cat")], "flux2", "")
    with pytest.raises(IdentityError, match="unknown reference target"):
        references_for([tom_profile], "sdxl", "")
    with pytest.raises(IdentityError, match="not among the supplied profiles"):
        references_for([tom_profile], "flux2", "[[somebody-else]]")
