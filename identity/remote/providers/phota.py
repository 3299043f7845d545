"""Phota API: its own profiles carry the identity, so no references are sent; `base_model` passes through.

Jobs run asynchronously (`async: true`, `response_mode: "urls"`): submit, poll `/v1/phota/jobs/{job_id}`
until done, download the URLs. `[[profile_id]]` references and `profile_ids` are Phota's own ids.
"""

from __future__ import annotations

from ..call import Call, Generated, b64, body, download, fail
from ..http import Transport
from ..keys import Credentials

DONE = {"succeeded", "succeed", "success", "completed", "complete", "done", "ready"}
FAILED = {"failed", "error", "cancelled", "canceled"}


def payload(call: Call) -> dict:
    common = {"num_output_images": call.outputs, "output_format": "png", "response_mode": "urls", "async": True}
    ids = [*call.external_ids, *(p.id for p in call.subjects if p.id not in call.external_ids)]
    if call.operation == "enhance":
        return {**common, "image": b64(call.inputs[0]), "profile_ids": ids}
    if call.operation == "remix":
        extra = {"prompt": call.prompt} if call.prompt else {}
        return {**common, "input_image": b64(call.inputs[0]), "reference_image": b64(call.inputs[1]), "profile_ids": ids, **extra}
    request = {**common, "prompt": call.prompt, "aspect_ratio": call.aspect_ratio, "resolution": call.resolution,
               "base_model": call.model.via}
    if call.quality and call.quality != "auto":
        request["quality"] = call.quality
    if call.operation == "edit":
        request.update(images=[b64(i) for i in call.inputs], profile_ids=ids)
    return request


async def run(call: Call, transport: Transport, credentials: Credentials) -> list[Generated]:
    headers = {"X-API-Key": credentials.key}
    response = await transport.request("POST", f"{credentials.base_url}/v1/phota/{call.operation}",
                                       json=payload(call), headers=headers)
    data = body(response, "phota")
    request_id = data.get("request_id") or response.headers.get("x-request-id")
    if response.status_code not in (200, 202):
        moderation = str(data.get("type", "")).upper() == "CONTENT_MODERATION"
        detail = data.get("detail") or data.get("message") or ""
        raise fail(response, credentials, detail if isinstance(detail, str) else str(detail), request_id, moderation)
    if response.status_code == 202:
        job_id = data.get("job_id")

        def check(answer):
            job = body(answer, "phota")
            status = str(job.get("status", "")).lower()
            if status in DONE:
                return job
            if status in FAILED:
                moderation = str(job.get("type", job.get("error_type", ""))).upper() == "CONTENT_MODERATION"
                raise fail(answer, credentials, str(job.get("message") or job.get("error") or status), job_id, moderation)
            return None

        poll_url = data.get("poll_url") or f"{credentials.base_url}/v1/phota/jobs/{job_id}"
        if poll_url.startswith("/"):
            poll_url = credentials.base_url + poll_url
        data = await transport.poll(poll_url, check, headers=headers if credentials.trusts(poll_url) else {})
    urls = data.get("download_urls") or (data.get("result") or {}).get("download_urls") or []
    if not urls:
        raise fail(response, credentials, "the finished job lists no download_urls", request_id)
    return [Generated(await download(transport, url, credentials, request_id), request_id) for url in urls]
