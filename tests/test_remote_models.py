"""Base models as data: every combination a model cannot take is refused before any network call."""

from __future__ import annotations

import pytest

from identity.errors import InvalidRequest
from identity.remote.models import BASE_MODELS, base_model


@pytest.mark.parametrize("model,operation,resolution,ratio,quality,outputs,allowed", [
    ("nb2", "generate", "8K", "1:1", "auto", 1, "1K, 2K, 4K"),
    ("qwen-image-2", "generate", "4K", "1:1", "auto", 1, "1K, 2K"),
    ("flux-2", "generate", "4K", "1:1", "auto", 1, "1K, 2K"),
    ("reve", "generate", "2K", "1:1", "auto", 1, "allowed resolutions: 1K"),
    ("nb2", "generate", "1K", "1:1", "high", 1, "quality applies only to gpt-image-2"),
    ("gpt-image-2", "generate", "1K", "1:1", "ultra", 1, "auto, low, medium, high"),
    ("gpt-image-2", "enhance", "2K", "auto", "auto", 1, "generate, edit, remix"),
    ("reve", "generate", "1K", "21:9", "auto", 1, "16:9, 9:16"),
    ("nb2", "generate", "1K", "1:1", "auto", 5, "1 to 4"),
    ("phota/reve", "remix", "1K", "auto", "auto", 1, "generate, edit"),
])
def test_invalid_combinations_name_the_allowed_values(model, operation, resolution, ratio, quality, outputs, allowed):
    with pytest.raises(InvalidRequest, match=allowed.replace("(", r"\(")):
        base_model(model).validate(operation, resolution, ratio, quality, outputs)


def test_the_registry_holds_what_the_issue_lists():
    assert {"nb2", "gpt-image-2", "qwen-image-2", "flux-2", "reve"} <= set(BASE_MODELS)
    assert BASE_MODELS["nb2"].resolutions == ("1K", "2K", "4K") == BASE_MODELS["gpt-image-2"].resolutions
    assert BASE_MODELS["qwen-image-2"].resolutions == ("1K", "2K") == BASE_MODELS["flux-2"].resolutions
    assert BASE_MODELS["reve"].resolutions == ("1K",)
    assert [m for m, spec in BASE_MODELS.items() if spec.qualities and spec.provider != "phota"] == ["gpt-image-2"]
    assert {spec.prices["kind"] for spec in BASE_MODELS.values()} == {"per_image", "tokens", "per_megapixel", "per_operation"}
    assert all(spec.max_input_images >= 3 and spec.max_outputs_per_request >= 1 for spec in BASE_MODELS.values())


def test_enhance_is_pinned_to_2k_on_nb2():
    assert base_model("nb2").validate("enhance", "1K", "auto", "auto", 1) == "2K"
    assert base_model("nb2").validate("generate", "1K", "auto", "auto", 1) == "1K"


def test_unknown_model():
    with pytest.raises(InvalidRequest, match="unknown base model 'dall-e'; choose one of: nb2"):
        base_model("dall-e")
