"""Identity References inside the real ComfyUI: a trained profile's large portraits as an IMAGE, the prompt in the
target's convention, the report; a count over the target's limit stops the prompt before the next node runs."""

from __future__ import annotations

import pytest
from conftest import needs_faces
from PIL import Image

from identity.profile import ProfileStore

pytestmark = needs_faces


@pytest.fixture(scope="module")
def biden(comfyui):
    prompt = {
        "1": {"class_type": "IdentityFaceEngine", "inputs": {"pack": "embedded", "provider": "auto"}},
        "2": {
            "class_type": "IdentityProfileTrain",
            "inputs": {"name": "Joe Biden", "folder": "identity/biden", "overwrite": True, "face_engine": ["1", 0]},
        },
    }
    run = comfyui.client.run(prompt)
    assert run.status == "success", run.error
    store = ProfileStore(comfyui.base / "models" / "identity_profiles")
    return store.load(store.resolve("Joe Biden"))


def references_prompt(target: str, portraits: int = 1, own_images: int = 0) -> dict:
    return {
        "1": {"class_type": "IdentityProfileLoad", "inputs": {"profile": "Joe Biden"}},
        "2": {
            "class_type": "IdentityReferences",
            "inputs": {
                "profiles": ["1", 0],
                "target": target,
                "prompt": "[[joe-biden]] reads a newspaper",
                "portraits": portraits,
                "own_images": own_images,
            },
        },
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "references/biden"}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["2", 1]}},
    }


def test_references_are_the_profiles_large_portraits_with_the_prompt_in_the_targets_words(comfyui, biden):
    run = comfyui.client.run(references_prompt("qwen-image-api", portraits=2, own_images=1))
    assert run.status == "success", run.error
    count, side = min(2, len(biden.large_portraits)), biden.large_portraits.shape[1]
    named = " and ".join(f"@Image{n}" for n in range(2, 2 + count))
    assert run.outputs["4"]["text"] == [f"the person in {named} (Joe Biden) reads a newspaper"]
    assert run.outputs["2"]["text"][0].splitlines() == ["@Image1: your own image"] + [
        f"@Image{n}: Joe Biden ({biden.id}), {side}x{side} px" for n in range(2, 2 + count)
    ]
    saved = run.outputs["3"]["images"]
    assert len(saved) == count
    for image in saved:
        with Image.open(comfyui.base / "output" / image["subfolder"] / image["filename"]) as file:
            assert file.size == (side, side), "the large portraits, as kept, not the 384 px ones upscaled"


def test_more_images_than_the_target_takes_stop_before_the_next_node(comfyui, biden):
    run = comfyui.client.run(references_prompt("qwen-image-edit", own_images=3))
    assert run.status == "error"
    assert "takes at most 3 images (comfy_extras/nodes_qwen.py" in run.error["exception_message"]
    assert "3" not in run.outputs and "4" not in run.outputs
