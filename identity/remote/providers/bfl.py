"""Black Forest Labs API (flux-2): submit, then poll the returned `polling_url` until the job is Ready.

Input images are `input_image`, `input_image_2` … `input_image_8` (base64). Moderation arrives as a job status
(`Request Moderated`, `Content Moderated`). The result `sample` is a URL valid for minutes, downloaded at once.
The key is sent only to the configured host and BFL's own hosts (the polling URL may be regional).
"""

from __future__ import annotations

from ..call import Call, Generated, b64, body, download, fail, layout
from ..http import Transport
from ..keys import Credentials

SIDE = {"1K": 1024, "2K": 2048}
MODERATED = {"Request Moderated", "Content Moderated"}


def dimensions(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """(width, height), multiples of 16, about the resolution's megapixels; (0, 0) lets the input decide."""
    if aspect_ratio == "auto":
        return (0, 0) if resolution == "1K" else (SIDE[resolution], SIDE[resolution])
    w, h = (int(v) for v in aspect_ratio.split(":"))
    scale = SIDE[resolution] / (w * h) ** 0.5
    return int(w * scale // 16 * 16), int(h * scale // 16 * 16)


def _key_for(url: str, credentials: Credentials) -> dict:
    return {"x-key": credentials.key} if credentials.trusts(url) else {}


async def run(call: Call, transport: Transport, credentials: Credentials) -> list[Generated]:
    sent = layout(call)
    width, height = dimensions(call.resolution, call.aspect_ratio)
    payload = {"prompt": sent.text, "output_format": "png", "safety_tolerance": 2, "width": width, "height": height}
    for number, image in enumerate(sent.images, 1):
        payload["input_image" if number == 1 else f"input_image_{number}"] = b64(image)
    if call.seed is not None:
        payload["seed"] = call.seed
    url = f"{credentials.base_url}/v1/{call.model.api_model}"
    response = await transport.request("POST", url, json=payload, headers={"x-key": credentials.key})
    data = body(response, "bfl")
    if response.status_code != 200:
        detail = data.get("detail")
        raise fail(response, credentials, detail if isinstance(detail, str) else str(detail or ""))
    job_id, polling_url = data.get("id"), data.get("polling_url")
    if not polling_url:
        raise fail(response, credentials, "the answer has no polling_url", job_id)

    def check(answer):
        result = body(answer, "bfl")
        status = result.get("status")
        if status == "Ready":
            return result
        if status in MODERATED:
            raise fail(answer, credentials, f"job {status.lower()}", job_id, moderation=True)
        if status in ("Error", "Task not found", "Failed"):
            raise fail(answer, credentials, f"job ended with status {status!r}", job_id)
        return None  # Pending

    result = await transport.poll(polling_url, check, headers=_key_for(polling_url, credentials))
    sample = (result.get("result") or {}).get("sample")
    if not sample:
        raise fail(response, credentials, "the finished job has no result sample", job_id)
    image = await download(transport, sample, credentials, job_id, _key_for(sample, credentials))
    reported = {k: data[k] for k in ("cost", "input_mp", "output_mp") if k in data}
    return [Generated(image, job_id, None, reported or None)]
