"""Phota API: its own profiles carry the identity, so no references are sent; `base_model` passes through.

Phota knows only its own profile ids (made with `POST /v1/phota/profiles/add`): a local profile goes to Phota
as the Phota profile it is linked to (see `phota_links.py`), never as its local id, and every id is checked
READY with Phota's status endpoint before the paid call. Jobs run asynchronously (`async: true`,
`response_mode: "urls"`) with a `client_request_id`, which Phota documents as idempotent: a submit whose answer
was lost is re-sent safely and returns the original job.
"""

from __future__ import annotations

from urllib.parse import quote

from ...errors import InvalidRequest
from ..call import Call, Generated, b64, body, download, fail, member, message
from ..http import Transport
from ..keys import Credentials

DONE = {"succeeded", "succeed", "success", "completed", "complete", "done", "ready"}
FAILED = {"failed", "error", "cancelled", "canceled"}
PENDING = {"pending", "queued", "queuing", "running", "in_progress", "processing", "validating"}
PROFILE_STATES = ("VALIDATING", "QUEUING", "IN_PROGRESS", "READY", "ERROR", "INACTIVE")


def payload(call: Call) -> dict:
    common = {"num_output_images": call.outputs, "output_format": "png", "response_mode": "urls", "async": True}
    if call.request_id:
        common["client_request_id"] = call.request_id
    ids = list(call.external_ids)
    if call.operation == "enhance":
        return {**common, "image": b64(call.inputs[0]), "profile_ids": ids}
    if call.operation == "remix":
        extra = {"prompt": call.prompt} if call.prompt else {}
        return {
            **common,
            "input_image": b64(call.inputs[0]),
            "reference_image": b64(call.inputs[1]),
            "profile_ids": ids,
            **extra,
        }
    request = {
        **common,
        "prompt": call.prompt,
        "aspect_ratio": call.aspect_ratio,
        "resolution": call.resolution,
        "base_model": call.model.via,
    }
    if call.quality and call.quality != "auto":
        request["quality"] = call.quality
    if call.operation == "edit":
        request.update(images=[b64(i) for i in call.inputs], profile_ids=ids)
    return request


async def profile_status(transport: Transport, credentials: Credentials, profile_id: str) -> dict:
    """Phota's `{profile_id, status, message}` for one of its profiles; raises when Phota does not know it."""
    url = f"{credentials.base_url}/v1/phota/profiles/{quote(profile_id, safe='')}/status"
    response = await transport.request("GET", url, kind="poll", headers={"X-API-Key": credentials.key})
    data = body(response, credentials)
    if response.status_code == 404:
        raise InvalidRequest(
            f"Phota has no profile {profile_id!r} on this account; create it with Phota "
            "(POST /v1/phota/profiles/add) and link that id"
        )
    if response.status_code != 200:
        raise fail(response, credentials, message(data.get("detail") or data.get("message")))
    status = member(data, "status", kind=str)
    if status not in PROFILE_STATES:
        raise fail(response, credentials, f"profile status {status or 'missing'!r} is not one Phota documents")
    return data


async def run(call: Call, transport: Transport, credentials: Credentials) -> list[Generated]:
    for profile_id in call.external_ids:
        state = await profile_status(transport, credentials, profile_id)
        if state["status"] != "READY":
            raise InvalidRequest(
                f"Phota profile {profile_id!r} is {state['status']}, not READY"
                f"{': ' + message(state.get('message')) if state.get('message') else ''}; "
                "training takes about 20 minutes, try again when it is READY"
            )
    headers = {"X-API-Key": credentials.key}
    response = await transport.request(
        "POST",
        f"{credentials.base_url}/v1/phota/{call.operation}",
        json=payload(call),
        headers=headers,
        paid=True,
        idempotent=bool(call.request_id),
        request_id=call.request_id,
    )
    data = body(response, credentials)
    request_id = member(data, "request_id", kind=str) or response.headers.get("x-request-id") or call.request_id
    if response.status_code not in (200, 202):
        moderation = member(data, "type", kind=str).upper() == "CONTENT_MODERATION"
        raise fail(response, credentials, message(data.get("detail") or data.get("message")), request_id, moderation)
    if response.status_code == 202:
        job_id = member(data, "job_id", kind=str)
        if not job_id:
            raise fail(response, credentials, "the accepted job has no job_id", request_id)

        def check(answer):
            job = body(answer, credentials)
            if answer.status_code != 200:
                raise fail(answer, credentials, message(job.get("detail") or job.get("message")), job_id)
            status = member(job, "status", kind=str).lower()
            if status in DONE:
                return job
            if status in FAILED:
                kind = member(job, "type", kind=str) or member(job, "error_type", kind=str)
                raise fail(
                    answer,
                    credentials,
                    message(job.get("message") or job.get("error")) or status,
                    job_id,
                    kind.upper() == "CONTENT_MODERATION",
                )
            if status in PENDING:
                return None
            raise fail(
                answer,
                credentials,
                f"the job's answer has {'status ' + repr(status) if status else 'no status'}",
                job_id,
            )

        poll_url = member(data, "poll_url", kind=str) or f"/v1/phota/jobs/{quote(job_id, safe='')}"
        if poll_url.startswith("/"):
            poll_url = credentials.base_url + poll_url
        data = await transport.poll(poll_url, check, headers=headers if credentials.trusts(poll_url) else {})
    urls = member(data, "download_urls", kind=list) or member(data, "result", "download_urls", kind=list)
    urls = [url for url in urls if isinstance(url, str) and url]
    if not urls:
        raise fail(response, credentials, "the finished job lists no download_urls", request_id)
    return [Generated(await download(transport, url, credentials, request_id), request_id) for url in urls]
