"""OpenAI Images API (gpt-image-2): `generations` for prompt-only calls, `edits` (multipart) with images.

Identity references are images, so a generate with subjects goes through `edits` too. Several outputs come
from one call (`n`). The charge is token-metered; `usage` gives the tokens.
"""

from __future__ import annotations

from ..call import Call, Generated, body, decode_b64, fail, layout, mime
from ..http import Transport
from ..keys import Credentials

LONG_SIDE = {"1K": 1024, "2K": 2048, "4K": 3840}


def size(resolution: str, aspect_ratio: str) -> str:
    """`WxH` with both sides divisible by 16, within 3840×2160 (long×short), or `auto`."""
    if aspect_ratio == "auto":
        return "auto"
    w, h = (int(v) for v in aspect_ratio.split(":"))
    long_side = LONG_SIDE[resolution]
    short_side = min(long_side * min(w, h) / max(w, h), 2160)
    long_side = min(long_side, short_side * max(w, h) / min(w, h))
    long_px, short_px = int(long_side // 16 * 16), int(short_side // 16 * 16)
    return f"{long_px}x{short_px}" if w >= h else f"{short_px}x{long_px}"


def cost(usage: dict, prices: dict) -> float | None:
    if not usage:
        return None
    details = usage.get("input_tokens_details") or {}
    text_in = details.get("text_tokens", usage.get("input_tokens", 0) - details.get("image_tokens", 0))
    total = (text_in * prices["text_in"] + details.get("image_tokens", 0) * prices["image_in"]
             + usage.get("output_tokens", 0) * prices["image_out"]) / 1_000_000
    return round(total, 6)


async def run(call: Call, transport: Transport, credentials: Credentials) -> list[Generated]:
    sent = layout(call)
    fields = {"model": call.model.api_model, "prompt": sent.text, "n": call.outputs,
              "size": size(call.resolution, call.aspect_ratio), "quality": call.quality or "auto", "output_format": "png"}
    headers = {"Authorization": f"Bearer {credentials.key}"}
    if sent.images:
        files = [("image[]", (f"image_{i}.{mime(image).split('/')[1]}", image, mime(image)))
                 for i, image in enumerate(sent.images, 1)]
        response = await transport.request("POST", f"{credentials.base_url}/v1/images/edits", headers=headers,
                                           data={k: str(v) for k, v in fields.items()}, files=files)
    else:
        response = await transport.request("POST", f"{credentials.base_url}/v1/images/generations", headers=headers,
                                           json=fields)
    data = body(response, "openai")
    request_id = response.headers.get("x-request-id")
    if response.status_code != 200:
        error = data.get("error") or {}
        raise fail(response, credentials, error.get("message", ""), request_id,
                   moderation=error.get("code") == "moderation_blocked")
    items = [item for item in data.get("data") or [] if isinstance(item, dict) and item.get("b64_json")]
    if not items:
        raise fail(response, credentials, "the answer holds no images", request_id)
    total = cost(data.get("usage") or {}, call.model.prices)
    share = None if total is None else round(total / len(items), 6)
    return [Generated(decode_b64(item["b64_json"], "openai"), request_id, share, data.get("usage")) for item in items]
