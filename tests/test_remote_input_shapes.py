"""Input photos of absurd shapes are refused from their size, in one sentence, before any decode or call: fitting
never enlarges a side past the provider's `max_side` (a 60000×1 photo for DashScope asked for 19.9 GB)."""

from __future__ import annotations

import numpy as np
import pytest

from identity.errors import InvalidRequest
from identity.remote import sizes
from identity.remote.keys import KeyStore
from identity.remote.models import provider_facts
from identity.remote.runner import RemoteRequest, plan


@pytest.mark.parametrize("shape", [(1, 60000), (2000, 1), (1, 400)], ids=["60000x1", "1x2000", "400x1"])
def test_a_photo_of_an_absurd_shape_is_refused_in_a_sentence_before_any_call(people, embedded, shape):
    photo = np.full((*shape, 3), 128, np.uint8)
    request = RemoteRequest(
        operation="edit",
        model="qwen-image-2",
        profiles=[people["Barack Obama"]],
        prompt="[[barack-obama]]",
        inputs=[photo],
    )
    keys = KeyStore(None, environ={"DASHSCOPE_API_KEY": "k" * 24, "IDENTITY_DASHSCOPE_BASE_URL": "http://127.0.0.1:9"})
    with pytest.raises(InvalidRequest, match=rf"an image of {shape[1]}x{shape[0]} is too narrow to send") as error:
        plan(request, keys, embedded)
    assert "\n" not in str(error.value) and error.value.__cause__ is None


@pytest.mark.parametrize("provider", ["gemini", "openai", "dashscope", "bfl", "reve", "phota"])
def test_fitting_never_makes_a_side_longer_than_the_providers_max_side(provider):
    limits = provider_facts(provider).inputs
    photo = np.full((300, 3000), 90, np.uint8).reshape(300, 1000, 3)  # 1000x300: enlarged where min_side is 384
    import io

    from PIL import Image

    width, height = Image.open(io.BytesIO(sizes.fit(photo, limits))).size
    assert max(width, height) <= limits.get("max_side", 10**6) and min(width, height) >= limits.get("min_side", 0)
