"""Reve API: `remix` carries identity (reference images, `<img>N</img>` tags in the prompt); `create` and
`edit` serve requests without people to keep. A moderation refusal is HTTP 200 with `content_violation: true`.

Reve's V2 (`api_model` "v2", Reve's own SDK `reve.v2.image.create`) is one endpoint, `/v2/image/create`: the
prompt and its reference images (`references: [{"data": base64}]`), the photo to edit first. Each endpoint has
its own price; the call reports what it cost.
"""

from __future__ import annotations

from ..call import Call, Generated, b64, body, decode_b64, deprecation, fail, layout, member, message
from ..http import Transport
from ..keys import Credentials


def request(call: Call) -> tuple[str, dict]:
    """(path, JSON body) for `call`."""
    sent = layout(call, tags=True)
    ratio = {} if call.aspect_ratio == "auto" else {"aspect_ratio": call.aspect_ratio}
    if call.model.api_model == "v2":
        references = {"references": [{"data": b64(i)} for i in sent.images]} if sent.images else {}
        return "v2/image/create", {"prompt": sent.text, **references, **ratio}
    if call.subjects or len(sent.images) > 1:
        return "v1/image/remix", {"prompt": sent.text, "reference_images": [b64(i) for i in sent.images], **ratio}
    if sent.images:
        return "v1/image/edit", {"edit_instruction": sent.text, "reference_image": b64(sent.images[0])}
    return "v1/image/create", {"prompt": sent.text, **ratio}


async def run(call: Call, transport: Transport, credentials: Credentials) -> list[Generated]:
    path, payload = request(call)
    response = await transport.request(
        "POST",
        f"{credentials.base_url}/{path}",
        json=payload,
        paid=True,
        request_id=call.request_id,
        headers={"Authorization": f"Bearer {credentials.key}", "Accept": "application/json"},
    )
    data = body(response, credentials)
    request_id = member(data, "request_id", kind=str) or response.headers.get("x-reve-request-id")
    if response.status_code != 200:
        raise fail(
            response, credentials, message(data.get("message") or data.get("error")), request_id, model=call.model
        )
    if data.get("content_violation") is True:
        raise fail(response, credentials, "content_violation", request_id, moderation=True)
    image = member(data, "image", kind=str)
    if not image:
        raise fail(response, credentials, "the answer holds no image", request_id)
    credits = {k: data[k] for k in ("credits_used", "credits_remaining") if isinstance(data.get(k), (int, float))}
    price = (call.model.prices.get("usd") or {}).get(path.rsplit("/", 1)[1])
    return [Generated(decode_b64(image, "reve"), request_id, price, credits or None, deprecation(response, call))]
