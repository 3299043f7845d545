"""Reve API: `remix` carries identity (reference images, `<img>N</img>` tags in the prompt); `create` and
`edit` serve requests without people to keep. A moderation refusal is HTTP 200 with `content_violation: true`.
"""

from __future__ import annotations

from ..call import Call, Generated, b64, body, decode_b64, fail, layout, member, message
from ..http import Transport
from ..keys import Credentials


async def run(call: Call, transport: Transport, credentials: Credentials) -> list[Generated]:
    sent = layout(call, tags=True)
    ratio = {} if call.aspect_ratio == "auto" else {"aspect_ratio": call.aspect_ratio}
    if call.subjects or len(sent.images) > 1:
        endpoint, payload = "remix", {"prompt": sent.text, "reference_images": [b64(i) for i in sent.images], **ratio}
    elif sent.images:
        endpoint, payload = "edit", {"edit_instruction": sent.text, "reference_image": b64(sent.images[0])}
    else:
        endpoint, payload = "create", {"prompt": sent.text, **ratio}
    response = await transport.request(
        "POST",
        f"{credentials.base_url}/v1/image/{endpoint}",
        json=payload,
        paid=True,
        request_id=call.request_id,
        headers={"Authorization": f"Bearer {credentials.key}", "Accept": "application/json"},
    )
    data = body(response, credentials)
    request_id = member(data, "request_id", kind=str) or response.headers.get("x-reve-request-id")
    if response.status_code != 200:
        raise fail(response, credentials, message(data.get("message") or data.get("error")), request_id)
    if data.get("content_violation") is True:
        raise fail(response, credentials, "content_violation", request_id, moderation=True)
    image = member(data, "image", kind=str)
    if not image:
        raise fail(response, credentials, "the answer holds no image", request_id)
    credits = {k: data[k] for k in ("credits_used", "credits_remaining") if isinstance(data.get(k), (int, float))}
    return [Generated(decode_b64(image, "reve"), request_id, None, credits or None)]
