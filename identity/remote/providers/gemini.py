"""Gemini image models (nb2, "Nano Banana 2", and its siblings): `generateContent`, one image per call.

Refusals come back as HTTP 200: no candidates and a `promptFeedback.blockReason`, or a candidate whose
`finishReason` is a safety reason and that holds no image, or a candidate that answers only in words
(`finishReason STOP`: "I can't create images of …"). Parts marked `thought` are the model's drafts while
it thinks, not its answer: they are skipped, as ComfyUI does. `GET /v1beta/models` lists the ids a key may call.
"""

from __future__ import annotations

from ..call import Call, Generated, b64, body, decode_b64, deprecation, fail, layout, member, message, mime
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
    config = {"responseModalities": ["IMAGE"], "imageConfig": image_config}
    if call.model.options.get("thinking_level"):  # Nano Banana Pro thinks as it will: it takes no level
        config["thinkingConfig"] = {"thinkingLevel": call.model.options["thinking_level"]}
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


async def run(call: Call, transport: Transport, credentials: Credentials) -> list[Generated]:
    url = f"{credentials.base_url}/v1beta/models/{call.model.api_model}:generateContent"
    response = await transport.request(
        "POST",
        url,
        json=request_body(call),
        paid=True,
        request_id=call.request_id,
        headers={"x-goog-api-key": credentials.key},
    )
    data = body(response, credentials)
    if response.status_code != 200:
        error = data.get("error")
        raise fail(
            response,
            credentials,
            " ".join(filter(None, (member(data, "error", "status", kind=str), message(error)))),
            model=call.model,
        )
    request_id = member(data, "responseId", kind=str) or None
    candidates = [c for c in member(data, "candidates", kind=list) if isinstance(c, dict)]
    if not candidates:
        reason = member(data, "promptFeedback", "blockReason", kind=str)
        if reason:
            raise fail(response, credentials, f"prompt blocked ({reason})", request_id, moderation=True)
        raise fail(response, credentials, "the answer holds no candidates", request_id)
    inline = [
        member(part, "inlineData")
        for candidate in candidates
        for part in member(candidate, "content", "parts", kind=list)
        if member(part, "inlineData") and not (isinstance(part, dict) and part.get("thought") is True)
    ]
    images = [decode_b64(member(i, "data", kind=str), "gemini") for i in inline if member(i, "data", kind=str)]
    if not images:
        words = [
            member(part, "text", kind=str)
            for candidate in candidates
            for part in member(candidate, "content", "parts", kind=list)
        ]
        if not inline and any(w.strip() for w in words):  # a refusal in words, under finishReason STOP
            said = " ".join(w.strip() for w in words if w.strip())
            raise fail(response, credentials, f"it answered in words, not an image: {said}", request_id, True)
        reason = member(candidates, 0, "finishReason", kind=str) or "unknown"
        problem = "image parts without data" if inline else f"no image returned (finishReason {reason})"
        raise fail(response, credentials, problem, request_id, moderation=not inline and reason in SAFETY)
    notice = deprecation(response, call)
    return [Generated(image, request_id, notice=notice) for image in images[:1]]


async def served(transport: Transport, credentials: Credentials) -> set[str]:
    """The model ids this key may call (`GET /v1beta/models`, every page); no paid call."""
    ids, token = set(), ""
    while True:
        params = {"pageSize": 1000, **({"pageToken": token} if token else {})}
        response = await transport.request(
            "GET",
            f"{credentials.base_url}/v1beta/models",
            kind="poll",
            params=params,
            headers={"x-goog-api-key": credentials.key},
        )
        data = body(response, credentials)
        if response.status_code != 200:
            raise fail(response, credentials, message(data.get("error")))
        ids |= {member(m, "name", kind=str).removeprefix("models/") for m in member(data, "models", kind=list)} - {""}
        token = member(data, "nextPageToken", kind=str)
        if not token:
            return ids
