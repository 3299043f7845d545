"""DashScope / Qwen Cloud (qwen-image-2): the synchronous multimodal-generation endpoint.

Images go in as data URLs in the message content, 1 to 3 of them; the answer holds image URLs (valid 24 h),
which are downloaded at once. Moderation arrives as `DataInspectionFailed` or a code ending in it
(`InternalError.Algo.DataInspectionFailed`).
"""

from __future__ import annotations

from ..call import Call, Generated, body, data_url, deprecation, download, fail, layout, member
from ..http import Transport
from ..keys import Credentials
from ..sizes import dimensions


def size(call: Call) -> str:
    """`W*H` at the resolution's area in the requested shape (`auto`: the input photo's; square without one)."""
    width, height = dimensions(call.resolution, call.ratio or 1.0, call.model.pixels)
    return f"{width}*{height}"


def moderated(code: str) -> bool:
    return code.split(".")[-1] == "DataInspectionFailed"


async def run(call: Call, transport: Transport, credentials: Credentials) -> list[Generated]:
    sent = layout(call)
    content = [{"image": data_url(image)} for image in sent.images] + [{"text": sent.text}]
    parameters = {
        "n": call.outputs,
        "size": size(call),
        "negative_prompt": " ",
        "prompt_extend": True,
        "watermark": False,
    }
    if call.seed is not None:
        parameters["seed"] = call.seed % 2**31
    response = await transport.request(
        "POST",
        f"{credentials.base_url}/api/v1/services/aigc/multimodal-generation/generation",
        headers={"Authorization": f"Bearer {credentials.key}"},
        paid=True,
        request_id=call.request_id,
        json={
            "model": call.model.api_model,
            "input": {"messages": [{"role": "user", "content": content}]},
            "parameters": parameters,
        },
    )
    data = body(response, credentials)
    request_id = member(data, "request_id", kind=str) or None
    code = member(data, "code", kind=str)
    if response.status_code != 200 or code:
        raise fail(
            response,
            credentials,
            f"{code} {member(data, 'message', kind=str)}".strip(),
            request_id,
            moderation=moderated(code),
            model=call.model,
        )
    urls = [
        member(item, "image", kind=str)
        for choice in member(data, "output", "choices", kind=list)
        for item in member(choice, "message", "content", kind=list)
    ]
    urls = [url for url in urls if url]
    if not urls:
        raise fail(response, credentials, "the answer holds no image URLs", request_id)
    notice = deprecation(response, call)
    return [
        Generated(await download(transport, url, credentials, request_id), request_id, notice=notice) for url in urls
    ]
