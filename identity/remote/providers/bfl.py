"""Black Forest Labs API (flux-2): submit, then poll the returned `polling_url` until the job is Ready.

Input images are `input_image`, `input_image_2` … `input_image_8` (base64). Width and height are at least
64, multiples of 16, at most 2048 each and about 4 MP in all. A job reports its progress in its status: `Ready`
ends it, as do moderation (`Request Moderated`, `Content Moderated`) and failure (`Error`, `Task not found`);
every other status (`Pending`, `Reasoning`, `Generating`, and whatever BFL adds) means it is still running, as
ComfyUI's own BFL client reads them. The result `sample` is a URL valid for minutes, downloaded at once. The key is sent only
to the configured host and BFL's own hosts (the polling URL may be regional), and never across a redirect.
"""

from __future__ import annotations

from ..call import Call, Generated, b64, body, deprecation, download, fail, layout, member, message
from ..http import Transport
from ..keys import Credentials
from ..sizes import dimensions

READY = "Ready"
MODERATED = {"Request Moderated", "Content Moderated"}
FAILED = {"Error", "Task not found", "Failed"}


def _key_for(url: str, credentials: Credentials) -> dict:
    return {"x-key": credentials.key} if credentials.trusts(url) else {}


async def run(call: Call, transport: Transport, credentials: Credentials) -> list[Generated]:
    sent = layout(call)
    width, height = dimensions(call.resolution, call.ratio or 1.0, call.model.pixels)
    payload = {"prompt": sent.text, "output_format": "png", "safety_tolerance": 2, "width": width, "height": height}
    for number, image in enumerate(sent.images, 1):
        payload["input_image" if number == 1 else f"input_image_{number}"] = b64(image)
    if call.seed is not None:
        payload["seed"] = call.seed
    url = f"{credentials.base_url}/v1/{call.model.api_model}"
    response = await transport.request(
        "POST", url, json=payload, headers={"x-key": credentials.key}, paid=True, request_id=call.request_id
    )
    data = body(response, credentials)
    if response.status_code != 200:
        raise fail(response, credentials, message(data.get("detail")), model=call.model)
    job_id = member(data, "id", kind=str) or None
    polling_url = member(data, "polling_url", kind=str)
    if not polling_url:
        raise fail(response, credentials, "the answer has no polling_url", job_id)

    def check(answer):
        result = body(answer, credentials)
        status = member(result, "status", kind=str)
        if answer.status_code != 200:
            raise fail(answer, credentials, message(result.get("detail")), job_id)
        if not status:
            raise fail(answer, credentials, "the job's answer has no status, which BFL does not document", job_id)
        if status == READY:
            return result
        if status in MODERATED:
            raise fail(answer, credentials, f"job {status.lower()} (request id {job_id})", job_id, moderation=True)
        if status in FAILED:
            raise fail(answer, credentials, f"job ended with status {status!r} (request id {job_id})", job_id)
        return None  # still running: Pending, Reasoning, Generating …

    result = await transport.poll(polling_url, check, headers=_key_for(polling_url, credentials))
    sample = member(result, "result", "sample", kind=str)
    if not sample:
        raise fail(response, credentials, "the finished job has no result sample", job_id)
    image = await download(transport, sample, credentials, job_id, _key_for(sample, credentials))
    reported = {k: data[k] for k in ("cost", "input_mp", "output_mp") if isinstance(data.get(k), (int, float))}
    return [Generated(image, job_id, None, reported or None, deprecation(response, call))]
