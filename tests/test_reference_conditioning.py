"""Reference latents reach ComfyUI's Flux, and prompts name profiles by their reference image (the references
themselves: tests/test_reference_targets.py, tests/test_edit_conditioning.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from identity.errors import IdentityError
from identity.prompt import PROFILE_REF, referenced_ids
from identity.reference import reference_prompt


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
    referenced = [
        [tokens, {**options, "reference_latents": [torch.randn(1, 16, 6, 4, generator=generator)]}]
        for tokens, options in conditioning
    ]

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
    """What the prompt functions read of a profile."""

    id: str
    name: str
    kind: str = "person"
    former_names: tuple[str, ...] = ()


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
