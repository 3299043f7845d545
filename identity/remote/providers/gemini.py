"""Gemini image models (nb2, "Nano Banana 2"): `generateContent`, one image per call.

Refusals come back as HTTP 200: no candidates and a `promptFeedback.blockReason`, or a candidate whose
`finishReason` is a safety reason and that holds no image.
"""

from __future__ import annotations

from ..call import Call, Generated, b64, body, decode_b64, fail, layout, mime
from ..http import Transport
from ..keys import Credentials

SAFETY = {"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"}


def request_body(call: Call) -> dict:
    sent = layout(call)
    parts = []
    for number, image in enumerate(sent.images, 1):
        parts += [{"text": f"Image {number}:"}, {"inlineData": {"mimeType": mime(image), "data": b64(image)}}]
    parts.append({"text": sent.text})
    image_config = {"imageSize": call.resolution}
    if call.aspect_ratio != "auto":
        image_config["aspectRatio"] = call.aspect_ratio
    return {
        "contents": [{"role": "user", "parts": parts}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": image_config,
                             "thinkingConfig": {"thinkingLevel": "MINIMAL"}},
    }


async def run(call: Call, transport: Transport, credentials: Credentials) -> list[Generated]:
    url = f"{credentials.base_url}/v1beta/models/{call.model.api_model}:generateContent"
    response = await transport.request("POST", url, json=request_body(call),
                                       headers={"x-goog-api-key": credentials.key})
    data = body(response, "gemini")
    if response.status_code != 200:
        error = data.get("error") or {}
        raise fail(response, credentials, f"{error.get('status', '')} {error.get('message', '')}")
    request_id = data.get("responseId")
    candidates = data.get("candidates") or []
    if not candidates:
        reason = (data.get("promptFeedback") or {}).get("blockReason")
        if reason:
            raise fail(response, credentials, f"prompt blocked ({reason})", request_id, moderation=True)
        raise fail(response, credentials, "the answer holds no candidates", request_id)
    images = [decode_b64(part["inlineData"]["data"], "gemini")
              for candidate in candidates for part in (candidate.get("content") or {}).get("parts", [])
              if isinstance(part, dict) and "inlineData" in part]
    if not images:
        reason = candidates[0].get("finishReason", "unknown")
        raise fail(response, credentials, f"no image returned (finishReason {reason})", request_id,
                   moderation=reason in SAFETY)
    return [Generated(image, request_id) for image in images[:1]]
