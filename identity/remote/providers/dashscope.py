"""DashScope / Qwen Cloud (qwen-image-2): the synchronous multimodal-generation endpoint.

Images go in as data URLs in the message content, 1 to 3 of them; the answer holds image URLs (valid 24 h),
which are downloaded at once. `DataInspectionFailed` is the moderation refusal.
"""

from __future__ import annotations

import math

from ..call import Call, Generated, body, data_url, download, fail, layout
from ..http import Transport
from ..keys import Credentials

AREA = {"1K": 1024 * 1024, "2K": 2048 * 2048}


def size(resolution: str, aspect_ratio: str) -> str:
    """`W*H`, multiples of 16, close to the resolution's area ('auto' is square)."""
    w, h = (1, 1) if aspect_ratio == "auto" else (int(v) for v in aspect_ratio.split(":"))
    scale = math.sqrt(AREA[resolution] / (w * h))
    return f"{int(w * scale // 16 * 16)}*{int(h * scale // 16 * 16)}"


async def run(call: Call, transport: Transport, credentials: Credentials) -> list[Generated]:
    sent = layout(call)
    content = [{"image": data_url(image)} for image in sent.images] + [{"text": sent.text}]
    parameters = {"n": call.outputs, "size": size(call.resolution, call.aspect_ratio), "negative_prompt": " ",
                  "prompt_extend": True, "watermark": False}
    if call.seed is not None:
        parameters["seed"] = call.seed % 2**31
    response = await transport.request(
        "POST", f"{credentials.base_url}/api/v1/services/aigc/multimodal-generation/generation",
        headers={"Authorization": f"Bearer {credentials.key}"},
        json={"model": call.model.api_model, "input": {"messages": [{"role": "user", "content": content}]},
              "parameters": parameters})
    data = body(response, "dashscope")
    request_id = data.get("request_id")
    if response.status_code != 200:
        raise fail(response, credentials, f"{data.get('code', '')} {data.get('message', '')}", request_id,
                   moderation=data.get("code") == "DataInspectionFailed")
    urls = [item["image"] for choice in (data.get("output") or {}).get("choices", [])
            for item in (choice.get("message") or {}).get("content", []) if isinstance(item, dict) and item.get("image")]
    if not urls:
        raise fail(response, credentials, "the answer holds no image URLs", request_id)
    return [Generated(await download(transport, url, credentials, request_id), request_id) for url in urls]
