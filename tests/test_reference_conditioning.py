"""Reference conditioning for FLUX.2 / Kontext / Qwen-Image-Edit: reference images, reference latents, prompts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from identity.errors import IdentityError
from identity.prompt import PROFILE_REF, referenced_ids
from identity.reference import MAX_PROFILES, portrait_side, reference_images, reference_prompt, with_references


def with_portraits(profile, count: int, name: str):
    portraits = np.stack([np.full((384, 384, 3), 40 * (i + 1), np.uint8) for i in range(count)])
    return dataclasses.replace(
        profile, id=name.lower(), name=name, portraits=portraits, reference_photos=np.arange(count, dtype=np.int32)
    )


def test_each_profile_becomes_one_reference_image_of_its_best_portraits(tom_profile):
    alice, bob = with_portraits(tom_profile, 3, "Alice"), with_portraits(tom_profile, 1, "Bob")
    images = reference_images([alice, bob], portraits=2, side=256)
    assert [image.shape for image in images] == [(256, 512, 3), (256, 256, 3)]
    assert images[0][0, 0, 0] == 40 and images[0][0, 256, 0] == 80, "best portraits first, left to right"


def test_reference_count_and_size_are_bounded(tom_profile):
    alice = with_portraits(tom_profile, 4, "Alice")
    assert reference_images([alice], portraits=4, side=1024)[0].shape == (512, 2048, 3), "at most 1 megapixel"
    assert portrait_side(1000, 1) == 992, "sides are multiples of 16"
    with pytest.raises(IdentityError, match=f"at most {MAX_PROFILES} profiles"):
        reference_images([alice] * (MAX_PROFILES + 1), portraits=1, side=384)
    with pytest.raises(IdentityError, match="portraits must be 1-4"):
        reference_images([alice], portraits=5, side=384)
    with pytest.raises(IdentityError, match="at least one profile"):
        reference_images([], portraits=1, side=384)


def test_profile_references_come_first_and_the_rest_is_kept():
    text = torch.zeros(1, 4, 8)
    scene, alice, bob = torch.ones(1, 16, 4, 4), torch.full((1, 16, 2, 2), 2.0), torch.full((1, 16, 2, 4), 3.0)
    conditioning = [[text, {"guidance": 3.5, "reference_latents": [scene]}], [text, {}]]
    out = with_references(conditioning, [alice, bob])
    assert out[0][1]["reference_latents"] == [alice, bob, scene] and out[0][1]["guidance"] == 3.5
    assert out[1][1]["reference_latents"] == [alice, bob] and out[0][0] is text
    assert conditioning[0][1]["reference_latents"] == [scene], "the input conditioning is not modified"


@pytest.mark.comfyui
def test_reference_latents_reach_comfyuis_flux():
    """ComfyUI's Flux turns `reference_latents` into extra image tokens: the output changes, its shape does not."""
    from tiny_models import load_comfy, toy_flux

    load_comfy()
    import comfy.sample

    flux = toy_flux()
    generator = torch.Generator().manual_seed(0)
    conditioning = [
        [torch.randn(1, 6, 32, generator=generator), {"pooled_output": torch.randn(1, 32, generator=generator)}]
    ]
    noise = torch.randn(1, 16, 8, 8, generator=generator)
    referenced = with_references(conditioning, [torch.randn(1, 16, 6, 4, generator=generator)])

    def sample(positive):
        return comfy.sample.sample(
            flux,
            noise,
            2,
            1.0,
            "euler",
            "simple",
            positive,
            conditioning,
            torch.zeros(1, 16, 8, 8),
            seed=0,
            disable_pbar=True,
        )

    plain, with_reference = sample(conditioning), sample(referenced)
    assert with_reference.shape == plain.shape and not torch.equal(with_reference, plain)


# ----- [[profile_id]] ---------------------------------------------------------------------------------------


def test_referenced_ids_are_unique_in_order_of_appearance():
    prompt = "[[bob-1a2b3c]] hugs [[alice_x]], then [[bob-1a2b3c]] waves; [[Not-An-Id]] and [[-x]] are text"
    assert referenced_ids(prompt) == ["bob-1a2b3c", "alice_x"]
    assert PROFILE_REF.fullmatch("[[" + "a" * 64 + "]]") and not PROFILE_REF.fullmatch("[[" + "a" * 65 + "]]")


@dataclasses.dataclass
class Subject:
    id: str
    name: str
    kind: str = "person"


def test_reference_prompt_names_each_subject_by_its_reference_image():
    subjects = [Subject("alice-3f9a2c", "Alice"), Subject("bob-1a2b3c", "Bob")]
    compiled = reference_prompt("[[bob-1a2b3c]] hands [[alice]] a cup", subjects)
    assert compiled == "the person in reference image 2 (Bob) hands the person in reference image 1 (Alice) a cup"
    assert reference_prompt("a quiet street", subjects) == "a quiet street"


def test_reference_prompt_names_an_unknown_profile():
    with pytest.raises(
        IdentityError, match=r"\[\[carol-000000\]\], which is not among the supplied profiles \(supplied: alice-3f9a2c"
    ):
        reference_prompt("[[alice-3f9a2c]] and [[carol-000000]]", [Subject("alice-3f9a2c", "Alice")])
