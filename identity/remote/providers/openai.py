"""OpenAI Images API (gpt-image-2): `generations` for prompt-only calls, `edits` (multipart) with images.

Identity references are images, so a generate with subjects goes through `edits` too. Several outputs come
from one call (`n`). The charge is token-metered; `usage` gives the tokens.
"""

from __future__ import annotations

from ..call import Call, Generated, body, decode_b64, deprecation, fail, layout, member, message, mime
from ..http import Transport
from ..keys import Credentials
from ..sizes import dimensions


def size(call: Call) -> str:
    """`WxH` within the model's documented bounds; `auto` only where nothing asks otherwise (1K, no shape)."""
    if call.ratio is None and call.resolution == "1K":
        return "auto"
    width, height = dimensions(call.resolution, call.ratio or 1.0, call.model.pixels)
    return f"{width}x{height}"


def cost(usage: dict, prices: dict) -> float | None:
    """USD for the tokens `usage` reports: input text and images, output images and (where the answer details
    them) output text, each at its own rate."""
    if not usage:
        return None
    rates, details = prices["usd_per_million"], member(usage, "input_tokens_details")
    image_in = _count(details, "image_tokens")
    text_in = _count(details, "text_tokens", _count(usage, "input_tokens") - image_in)
    out = member(usage, "output_tokens_details")
    text_out = _count(out, "text_tokens")
    image_out = _count(out, "image_tokens", _count(usage, "output_tokens") - text_out)
    total = (
        text_in * rates["text_in"]
        + image_in * rates["image_in"]
        + image_out * rates["image_out"]
        + text_out * rates.get("text_out", rates["image_out"])
    )
    return round(total / 1_000_000, 6)


def _count(data: dict, key: str, default: int = 0) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


async def run(call: Call, transport: Transport, credentials: Credentials) -> list[Generated]:
    sent = layout(call)
    fields = {
        "model": call.model.api_model,
        "prompt": sent.text,
        "n": call.outputs,
        "size": size(call),
        "quality": call.quality or "auto",
        "output_format": "png",
    }
    headers = {"Authorization": f"Bearer {credentials.key}"}
    if call.request_id:
        headers["X-Client-Request-Id"] = call.request_id
    options = {"headers": headers, "paid": True, "request_id": call.request_id}
    if sent.images:
        files = [
            ("image[]", (f"image_{i}.{mime(image).split('/')[1]}", image, mime(image)))
            for i, image in enumerate(sent.images, 1)
        ]
        response = await transport.request(
            "POST",
            f"{credentials.base_url}/v1/images/edits",
            data={k: str(v) for k, v in fields.items()},
            files=files,
            **options,
        )
    else:
        response = await transport.request(
            "POST", f"{credentials.base_url}/v1/images/generations", json=fields, **options
        )
    data = body(response, credentials)
    request_id = response.headers.get("x-request-id") or call.request_id
    if response.status_code != 200:
        raise fail(
            response,
            credentials,
            message(data.get("error")),
            request_id,
            moderation=member(data, "error", "code", kind=str) == "moderation_blocked",
            model=call.model,
        )
    items = [member(item, "b64_json", kind=str) for item in member(data, "data", kind=list)]
    items = [item for item in items if item]
    if not items:
        raise fail(response, credentials, "the answer holds no images", request_id)
    usage = member(data, "usage")
    total = cost(usage, call.model.prices)
    share = None if total is None else round(total / len(items), 6)
    notice = deprecation(response, call)
    return [Generated(decode_b64(item, "openai"), request_id, share, usage or None, notice) for item in items]


async def served(transport: Transport, credentials: Credentials) -> set[str]:
    """The model ids this key may call (`GET /v1/models`); no paid call."""
    response = await transport.request(
        "GET", f"{credentials.base_url}/v1/models", kind="poll", headers={"Authorization": f"Bearer {credentials.key}"}
    )
    data = body(response, credentials)
    if response.status_code != 200:
        raise fail(response, credentials, message(data.get("error")))
    return {member(m, "id", kind=str) for m in member(data, "data", kind=list)} - {""}
