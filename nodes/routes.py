"""HTTP routes behind the Identity panel: parse the request, call `identity/`, answer JSON.

Every route lives under `/identity/` on ComfyUI's own server (and, as ComfyUI mirrors its routes, under
`/api/identity/`). Failures answer `{"error": "<one sentence>"}` with 400 (bad input), 404 (unknown profile
or job), 408 (an upload that stalls), 409 (exists / training running) or 413 (too large). Ids are validated
before any path is built; uploads are checked as they stream (`identity.uploads`) and never written to disk. Training progress is
pushed to every browser over ComfyUI's websocket as `identity.training` events, and can be polled.
Blocking work (file reads, training start) runs in threads so that ComfyUI's event loop keeps serving.
`/identity/profiles/{id}/phota` reads, makes (once Phota knows the id) and removes a profile's Phota link.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from urllib.parse import quote

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from server import PromptServer

from ..identity.errors import (
    IdentityError,
    InvalidProfileId,
    ProfileExists,
    ProfileNotFound,
    TrainingBusy,
    UploadRefused,
    UploadStalled,
    UploadTooLarge,
)
from ..identity.images import encode_jpeg
from ..identity.profile import clean_name, picker_labels, validate_id
from ..identity.remote.phota_links import default_links, phota_status
from ..identity.training import JOBS, KINDS, Status, start_training
from ..identity.training.verdicts import ACCEPTED, PENDING, REJECTED
from ..identity.uploads import MAX_UPLOAD_BYTES, UploadBatch
from .glue import cancel_check, key_store, profile_store, shown_path, training_engine

log = logging.getLogger(__name__)

EVENT = "identity.training"
UPLOAD_READ_BYTES = 256 * 1024  # one read of an uploaded part: aiohttp's own chunk size is 8 kB; fewer awaits
MAX_FIELD_BYTES = 4096
#: An upload that sends nothing for this long, or is not done after UPLOAD_SECONDS, is answered 408 and let go
#: (a stalled one would otherwise hold up to MAX_UPLOAD_BYTES of memory for ever).
IDLE_SECONDS = 30
UPLOAD_SECONDS = 600
MAX_PORTRAIT_DIGITS = 4
#: Uploads received at once (each holds up to MAX_UPLOAD_BYTES in memory until its photos are trained) and trainings
#: waiting or running; past either, a new upload is answered 503 / 429 with Retry-After before its body is read.
MAX_UPLOADS_AT_ONCE = 2
MAX_UNFINISHED_TRAININGS = 4
_receiving = 0
STATUS = (
    (InvalidProfileId, 400),
    (ProfileNotFound, 404),
    (ProfileExists, 409),
    (TrainingBusy, 409),
    (UploadStalled, 408),
    (UploadTooLarge, 413),
    (IdentityError, 400),
)


def register_routes(routes: web.RouteTableDef | None = None) -> None:
    routes = routes if routes is not None else PromptServer.instance.routes
    routes.get("/identity/profiles")(list_profiles)
    routes.post("/identity/profiles")(create_profile)
    routes.get("/identity/profiles/{profile_id}")(get_profile)
    routes.delete("/identity/profiles/{profile_id}")(delete_profile)
    routes.post("/identity/profiles/{profile_id}/rename")(rename_profile)
    routes.get("/identity/profiles/{profile_id}/thumbnail")(get_thumbnail)
    routes.get("/identity/profiles/{profile_id}/references/{index}")(get_reference)
    routes.get("/identity/jobs/{job_id}")(get_job)
    routes.get("/identity/profiles/{profile_id}/phota")(get_phota_link)
    routes.post("/identity/profiles/{profile_id}/phota")(link_phota)
    routes.delete("/identity/profiles/{profile_id}/phota")(unlink_phota)
    routes.get("/identity/constants")(get_constants)


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def busy(status: int, message: str, retry_after: int) -> web.Response:
    """Too much at once: the client is told when to try again (Retry-After, seconds)."""
    answer = error(status, message)
    answer.headers["Retry-After"] = str(retry_after)
    return answer


def answers_json(handler):
    """Turns the library's errors into `{"error": ...}` answers with the HTTP status that fits them."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except IdentityError as exc:
            return error(next(code for kind, code in STATUS if isinstance(exc, kind)), str(exc))
        except web.HTTPException:
            raise
        except Exception as exc:  # a bug: logged with its traceback, answered in one line
            log.exception("identity route %s failed", request.path)
            return error(
                500, f"internal error in the Identity Layer ({type(exc).__name__}); ComfyUI's log has the details"
            )

    return wrapped


def thumbnail_url(summary: dict) -> str:
    """Changes when a profile is retrained (new `created`), so browsers never show a stale cached image."""
    return f"/identity/profiles/{summary['id']}/thumbnail?v={quote(summary.get('created') or '')}"


@answers_json
async def list_profiles(request: web.Request) -> web.Response:
    """Each profile with its picker label and its former names (the nodes map a workflow saved with one onto the
    id)."""
    store = profile_store()
    summaries, former = await asyncio.to_thread(lambda: (store.summaries(), store.former_names()))
    labels = picker_labels(summaries)
    profiles = [
        {
            **s,
            "label": labels[s["id"]],
            "thumbnail": thumbnail_url(s),
            "former_names": [key for key, profile_id in former.items() if profile_id == s["id"]],
        }
        for s in summaries
    ]
    jobs = [job.snapshot() for job in JOBS.all() if not job.status.finished]
    return web.json_response({"profiles": profiles, "jobs": jobs})


@answers_json
async def get_profile(request: web.Request) -> web.Response:
    profile_id = validate_id(request.match_info["profile_id"])
    details = (await asyncio.to_thread(profile_store().load, profile_id)).details()
    details["thumbnail"] = thumbnail_url(details)
    details["report"] = {
        **details["report"],
        "photos": [{**p, "path": shown_path(p.get("path"))} for p in details["report"].get("photos", [])],
    }
    for portrait in details["portraits"]:
        portrait["photo"] = shown_path(portrait["photo"])
        portrait["url"] = (
            f"/identity/profiles/{profile_id}/references/{portrait['index']}?v={quote(details['created'])}"
        )
    job = JOBS.for_profile(profile_id)
    details["job"] = job.snapshot() if job else None
    return web.json_response(details)


async def portrait_response(profile_id: str, index: int) -> web.Response:
    body = await asyncio.to_thread(lambda: encode_jpeg(profile_store().portrait(profile_id, index)))
    return web.Response(body=body, content_type="image/jpeg", headers={"Cache-Control": "no-cache"})


@answers_json
async def get_thumbnail(request: web.Request) -> web.Response:
    return await portrait_response(request.match_info["profile_id"], 0)


@answers_json
async def get_reference(request: web.Request) -> web.Response:
    index = request.match_info["index"]
    if not (index.isascii() and index.isdigit() and len(index) <= MAX_PORTRAIT_DIGITS):
        raise ProfileNotFound(f"no reference portrait {index[:12]!r}; portraits are numbered 0, 1, 2 …")
    return await portrait_response(request.match_info["profile_id"], int(index))


@answers_json
async def create_profile(request: web.Request) -> web.Response:
    """Multipart `name`, `overwrite`, `kind` (optional: person, cat, dog or pet) and `photos` (repeated) → 202 with
    the training job, which runs on, and the files refused (`refused`: index, name and reason of each)."""
    if not request.content_type.startswith("multipart/"):
        raise UploadRefused("send the photos as multipart/form-data with the fields name, overwrite and photos")
    if (request.content_length or 0) > MAX_UPLOAD_BYTES + 1024 * 1024:
        raise UploadTooLarge(
            f"the upload is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB; upload fewer or smaller photos"
        )
    global _receiving
    if JOBS.unfinished() >= MAX_UNFINISHED_TRAININGS:
        return busy(429, f"{MAX_UNFINISHED_TRAININGS} trainings are waiting or running; try again when one is done", 30)
    if _receiving >= MAX_UPLOADS_AT_ONCE:
        return busy(503, f"{_receiving} uploads are being received; try again in a few seconds", 5)
    _receiving += 1
    try:
        batch, fields = await asyncio.wait_for(read_upload(request), UPLOAD_SECONDS)
    except asyncio.TimeoutError:  # not the builtin TimeoutError on Python 3.10
        raise UploadStalled(
            f"the upload took over {UPLOAD_SECONDS // 60} minutes; upload fewer or smaller photos"
        ) from None
    except (ValueError, KeyError, HttpProcessingError) as exc:  # aiohttp's multipart parser refusing the body
        log.info("identity upload refused as malformed: %s", exc)
        raise UploadRefused(
            "the upload is not well-formed multipart/form-data (no or another boundary, a part header "
            "over 8 kB, or a cut-off body); send the form as a browser does"
        ) from None
    finally:
        _receiving -= 1
    photos = batch.finish()
    overwrite = wants_overwrite(fields)
    server = PromptServer.instance

    def push(job) -> None:
        server.send_sync(EVENT, job.snapshot())  # thread-safe: it hands the message to the event loop

    try:
        kind = fields.get("kind", "person").strip() or "person"
        job = await asyncio.to_thread(
            lambda: start_training(
                photos,
                fields.get("name", ""),
                training_engine(kind),
                profile_store(),
                overwrite=overwrite,
                on_update=push,
                check=cancel_check(),
                kind=kind,
            )
        )
    except ProfileExists as exc:
        raise ProfileExists(f"{exc}; to retrain it, send overwrite=true (the panel's 'Retrain' box)") from None
    return web.json_response({"job": job.snapshot(), "refused": batch.refused}, status=202)


async def read_upload(request: web.Request) -> tuple[UploadBatch, dict[str, str]]:
    """The photos and fields of a multipart upload; the name is checked as soon as it arrives."""
    batch, fields = UploadBatch(), {}
    reader = await request.multipart()
    first_photo = True
    while (part := await idle_bound(reader.next())) is not None:
        name = getattr(part, "name", None)
        if name == "photos":
            if first_photo and "name" in fields and not wants_overwrite(fields):
                await asyncio.to_thread(refuse_taken_name, fields["name"])  # before any photo is read
            first_photo = False
            batch.begin(part.filename)
            while chunk := await idle_bound(part.read_chunk(UPLOAD_READ_BYTES)):
                batch.feed(chunk)
            await asyncio.to_thread(batch.end)
        elif name in ("name", "overwrite", "kind"):
            fields[name] = await read_field(part)
            if name == "name":
                clean_name(fields[name])
        else:
            raise UploadRefused(f"unexpected form field {str(name)[:40]!r}; send name, overwrite, kind and photos")
    return batch, fields


def wants_overwrite(fields: dict[str, str]) -> bool:
    return fields.get("overwrite", "").strip().lower() in ("1", "true", "on", "yes")


def refuse_taken_name(name: str) -> None:
    taken = profile_store().named(name)
    if taken is not None:
        raise ProfileExists(
            f"a profile named {clean_name(name)!r} already exists ({taken}); to retrain it, send overwrite=true "
            "(the panel's 'Retrain' box)"
        )


async def idle_bound(read):
    """One read of the upload, given up after IDLE_SECONDS of silence from the sender."""
    try:
        return await asyncio.wait_for(read, IDLE_SECONDS)
    except asyncio.TimeoutError:
        raise UploadStalled(f"the upload stalled (nothing received for {IDLE_SECONDS} s); try again") from None


async def read_small(read, too_large: IdentityError) -> bytes:
    """At most MAX_FIELD_BYTES from `read(n)` (a form part's or the body's), each read bound by IDLE_SECONDS;
    `too_large` is raised past that."""
    data = b""
    while chunk := await idle_bound(read(MAX_FIELD_BYTES + 1 - len(data))):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise too_large
    return data


async def read_field(part) -> str:
    data = await read_small(part.read_chunk, UploadRefused(f"form field {part.name!r} is over {MAX_FIELD_BYTES} bytes"))
    return data.decode("utf-8", errors="replace")


async def read_json(request: web.Request) -> object:
    """A small JSON body, or None: bounded in size, and a deeply nested one is refused like malformed JSON."""
    data = await read_small(
        request.content.read,
        UploadTooLarge(f"the request body is over {MAX_FIELD_BYTES} bytes; send only the fields asked for"),
    )
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


@answers_json
async def get_job(request: web.Request) -> web.Response:
    job = JOBS.get(request.match_info["job_id"])
    if job is None:
        return error(
            404, f"no training job {request.match_info['job_id'][:40]!r} (jobs are kept until ComfyUI restarts)"
        )
    return web.json_response(job.snapshot())


@answers_json
async def rename_profile(request: web.Request) -> web.Response:
    """JSON `{"name": "New name"}`; the id stays, so workflows that name the id keep working."""
    profile_id = validate_id(request.match_info["profile_id"])
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise IdentityError('send a JSON body with the new name, like {"name": "Alice Smith"}')
    refuse_while_training(profile_id)
    training = JOBS.training_name(clean_name(body["name"]))
    if training is not None and training.profile_id != profile_id:
        raise TrainingBusy(f"a profile named {training.name!r} is being trained right now; choose another name")
    profile = await asyncio.to_thread(profile_store().rename, profile_id, body["name"])
    return web.json_response({"profile": profile.summary()})


@answers_json
async def delete_profile(request: web.Request) -> web.Response:
    profile_id = validate_id(request.match_info["profile_id"])
    refuse_while_training(profile_id)
    await asyncio.to_thread(profile_store().delete, profile_id)
    return web.json_response({"deleted": profile_id})


async def existing_profile(request: web.Request) -> str:
    profile_id = validate_id(request.match_info["profile_id"])
    if not await asyncio.to_thread(profile_store().exists, profile_id):
        raise ProfileNotFound(f"no profile {profile_id!r}")
    return profile_id


@answers_json
async def get_phota_link(request: web.Request) -> web.Response:
    """`{"phota_id": null}`, or the linked id with Phota's training status now (or why it cannot be had)."""
    profile_id = await existing_profile(request)
    phota_id = await asyncio.to_thread(default_links().get, profile_id)
    if phota_id is None:
        return web.json_response({"phota_id": None})
    try:
        state = await phota_status(key_store().credentials("phota"), phota_id)
    except IdentityError as exc:
        return web.json_response({"phota_id": phota_id, "error": str(exc)})
    return phota_answer(phota_id, state)


@answers_json
async def link_phota(request: web.Request) -> web.Response:
    """JSON `{"phota_id": "…"}`: linked once Phota knows the id on this account (its status is the answer)."""
    profile_id = await existing_profile(request)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("phota_id"), str):
        raise IdentityError('send a JSON body with the Phota profile id, like {"phota_id": "3f9c2a1b7e44"}')
    phota_id = body["phota_id"].strip()
    return phota_answer(
        phota_id, await default_links().link_checked(profile_id, phota_id, key_store().credentials("phota"))
    )


def phota_answer(phota_id: str, state: dict) -> web.Response:
    return web.json_response({"phota_id": phota_id, "status": state["status"], "message": state.get("message") or ""})


@answers_json
async def unlink_phota(request: web.Request) -> web.Response:
    profile_id = await existing_profile(request)
    return web.json_response({"unlinked": await asyncio.to_thread(default_links().unlink, profile_id)})


def refuse_while_training(profile_id: str) -> None:
    job = JOBS.running(profile_id)
    if job is not None:
        raise TrainingBusy(
            f"profile {profile_id!r} is being trained right now ({job.status.value}); "
            "wait until it is READY, then try again"
        )


#: How the panel names a profile kind in its form ("Of a") and on a card (its tooltip), where the kind's own name
#: does not say enough; an animal species is compared by appearance unless a re-identification model is installed.
KIND_LABELS = {"pet": "Cat or dog (detect which)"}
KIND_NOTES = {"person": "a person, recognised by face", "pet": "a cat or a dog, the species detected"}


def kind_note(kind: str) -> str:
    return KIND_NOTES.get(
        kind,
        f"a {kind}: scores measure appearance similarity, not identity, unless a re-identification model is in "
        "models/pet_reid/",
    )


async def get_constants(request: web.Request) -> web.Response:
    """The names the panel's JavaScript acts on, from where the Python defines them, so that it repeats none:
    the websocket event, the job statuses in lifecycle order (and which ones end a job), the profile kinds and the
    photo verdicts."""
    return web.json_response(
        {
            "event": EVENT,
            "statuses": {status.name: status.value for status in Status},
            "finished": [status.value for status in Status if status.finished],
            "kinds": [
                {"kind": kind, "label": KIND_LABELS.get(kind, kind.capitalize()), "note": kind_note(kind)}
                for kind in KINDS
            ],
            "verdicts": {"accepted": ACCEPTED, "rejected": REJECTED, "pending": PENDING},
        }
    )
