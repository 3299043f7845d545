"""Sizes each provider accepts: output sizes inside the documented bounds at every resolution and shape, `auto`
following the input photo, and input photos fitted to the providers' byte and pixel limits with their faces
still verifiable. The fakes refuse what the real services refuse."""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import numpy as np
import pytest
from conftest import FAST, T1, face, needs_faces
from PIL import Image

from identity.images import encode_png
from identity.remote.call import Call
from identity.remote.http import Transport
from identity.remote.models import base_model
from identity.remote.providers import PROVIDERS
from identity.remote.runner import RemoteRequest, run
from identity.remote.sizes import ratio_of
from identity.scoring import score_images


def send(fake, keys, model: str, resolution: str, aspect_ratio: str, inputs: list[np.ndarray] = ()):
    """One call straight through the provider module (no references), as the runner would make it."""
    provider = base_model(model).provider
    call = Call(
        operation="edit" if inputs else "generate",
        model=base_model(model),
        resolution=resolution,
        aspect_ratio=aspect_ratio,
        quality="auto",
        prompt="A quiet harbour.",
        subjects=[],
        references=[],
        inputs=[encode_png(i) for i in inputs],
        outputs=1,
        seed=None,
        ratio=ratio_of(aspect_ratio, list(inputs)),
    )

    async def go():
        async with httpx.AsyncClient() as client:
            return await PROVIDERS[provider].run(call, Transport(provider, client, FAST), keys.credentials(provider))

    fake.reset()
    asyncio.run(go())
    return fake.posts(provider)[0]


@pytest.mark.parametrize("resolution", ["1K", "2K"])
@pytest.mark.parametrize("aspect_ratio", ["auto", "1:1", "16:9", "9:16", "21:9", "4:5"])
@pytest.mark.parametrize("model", ["flux-2", "flux-2-max"])
def test_flux_2_sizes_are_within_bfls_bounds(fake, keys, model, resolution, aspect_ratio):
    sent = send(fake, keys, model, resolution, aspect_ratio).json  # the fake answers 422 outside them
    width, height = sent["width"], sent["height"]
    assert width >= 64 and height >= 64 and width % 16 == 0 and height % 16 == 0 and width * height <= 4_000_000
    assert max(width, height) <= 2048, "each side at most 2048, as ComfyUI's FLUX.2 nodes take"
    if resolution == "2K" and aspect_ratio == "16:9":
        assert (width, height) == (2048, 1152), "as large as the bounds allow (was 2656x1488)"
    if aspect_ratio != "auto":
        w, h = (int(v) for v in aspect_ratio.split(":"))
        assert abs(width / height - w / h) < 0.05


@pytest.mark.parametrize("resolution", ["1K", "2K", "4K"])
@pytest.mark.parametrize("aspect_ratio", ["auto", "1:1", "16:9", "9:16", "3:2", "2:3", "4:3", "3:4"])
def test_gpt_image_2_sizes_are_within_openais_bounds(fake, keys, resolution, aspect_ratio):
    size = send(fake, keys, "gpt-image-2", resolution, aspect_ratio).json["size"]  # the fake answers 400 outside
    if size != "auto":
        width, height = (int(v) for v in size.split("x"))
        assert 655_360 <= width * height <= 8_294_400 and max(width, height) <= 3840
        if resolution == "4K":
            assert width * height >= 7_500_000, f"4K asks about 8.3 MP, not {width}x{height} (the old 2160 cap)"


@pytest.mark.parametrize("resolution", ["1K", "2K"])
@pytest.mark.parametrize("aspect_ratio", ["1:1", "16:9", "9:16", "3:4"])
def test_qwen_image_3_sizes_are_within_dashscopes_bounds(fake, keys, resolution, aspect_ratio):
    size = send(fake, keys, "qwen-image-3", resolution, aspect_ratio).json["parameters"]["size"]  # 400 outside
    width, height = (int(v) for v in size.split("*"))
    assert 512 * 512 <= width * height <= 2560 * 2560


def test_auto_follows_the_input_photo_at_the_chosen_resolution(fake, keys):
    photo = np.asarray(Image.open(T1).convert("RGB").resize((900, 600)))  # 3:2 landscape
    for model, field in (("gpt-image-2", "size"), ("qwen-image-2", "size"), ("flux-2", None)):
        sent = send(fake, keys, model, "2K" if model != "qwen-image-2" else "1K", "auto", [photo])
        body = sent.form or sent.json
        if field:
            width, height = (
                (
                    int(v)
                    for v in body["parameters" if model == "qwen-image-2" else "size"]["size"]
                    .replace("*", "x")
                    .split("x")
                )
                if model == "qwen-image-2"
                else (int(v) for v in body["size"].split("x"))
            )
        else:
            width, height = body["width"], body["height"]
        assert abs(width / height - 1.5) < 0.05, f"{model}: {width}x{height} is not the photo's 3:2"
        if model == "gpt-image-2":
            assert width * height > 3_000_000, f"{model}: 2K asked, {width}x{height} sent"
        if model == "flux-2":
            assert max(width, height) == 2048, f"{model}: 2K asked, as large as 2048 per side allows"


@needs_faces
def test_a_large_photo_is_fitted_to_dashscopes_limits_and_its_faces_stay_verifiable(fake, keys, people, embedded):
    group = Image.open(face("groups/obama_biden_a.jpg")).convert("RGB")
    scale = 4600 / max(group.size)
    big = np.asarray(group.resize((round(group.width * scale), round(group.height * scale)), Image.BICUBIC)).copy()
    noise = np.random.default_rng(0).integers(0, 6, big.shape, dtype=np.uint8)  # sensor noise: PNG does not shrink it
    big = np.clip(big.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    assert len(encode_png(big)) > 10_000_000, "as PNG this photo is over DashScope's 10 MB"
    request = RemoteRequest(
        operation="edit",
        model="qwen-image-2",
        profiles=list(people.values()),
        prompt="Give [[barack-obama]] a hat",
        inputs=[big],
    )
    result = run(request, keys, embedded, policy=FAST)
    sent = fake.posts("dashscope")[0].json["input"]["messages"][0]["content"][0]["image"]
    data = base64.b64decode(sent.split(",", 1)[1])
    image = Image.open(io.BytesIO(data))
    assert len(data) <= 10_000_000 and max(image.size) <= 3072
    scored = score_images([("sent", np.asarray(image.convert("RGB")))], list(people.values()), embedded)[0]
    assert {f.profile_id for f in scored.faces} >= {p.id for p in people.values()}, "both faces still verify"
    assert result.report["outputs"][0]["passed"]


def test_a_photo_goes_as_jpeg_where_png_would_exceed_the_byte_limit_and_never_shrinks_below_face_size():
    from identity.errors import InvalidRequest
    from identity.remote.sizes import fit

    noisy = np.random.default_rng(1).integers(0, 255, (1500, 2000, 3), dtype=np.uint8)
    data = fit(noisy, {"max_side": 3072, "max_image_bytes": 3_000_000})
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and len(data) <= 3_000_000 and image.size == (2000, 1500), "JPEG first, size kept"
    small = fit(noisy, {"max_image_bytes": 400_000})
    assert len(small) <= 400_000 and min(Image.open(io.BytesIO(small)).size) >= 512, "then downscaled, not below 512"
    with pytest.raises(InvalidRequest, match="faces too small to verify"):
        fit(noisy, {"max_image_bytes": 20_000})
