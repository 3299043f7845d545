"""Fake image providers on 127.0.0.1 that speak each provider's documented format, and can misbehave.

Each fake checks a request the way the real API would (auth header, required fields, image encoding) and
answers in the documented shape. Its images are real: it composes a scene with each requested person (read from
the request, grouped by what the prompt says each image shows) — drawn from `StandIns`, another photo of whoever
the reference shows, never the reference itself, so verification must recognise the person, not the picture — or — with
`stranger_rate` — from a stranger's photo, so verification and best-of-N meet real face scoring. `faults` is a
queue of misbehaviours for the next requests: "429" (Retry-After: 1), "429long" (Retry-After: 1 hour), "500",
"503", "409" (OpenAI's lock timeout), "500_no_retry" (with `x-should-retry: false`), "timeout", "slow", "moderation", "malformed", "bad_image", "no_image" and "text_only" (Gemini), "stranger" (every person
in the image is a stranger), and the hostile ones: "drop" (reads the whole request, then closes the connection
without answering), "echo_key_text" (a non-JSON error body that echoes every header), "echo_key_late" (a JSON error
whose text reaches the key at character ~290),
"error_string" (`error` as a string), "inline_no_data" (Gemini `inlineData` without `data`), "json_list" (a
JSON array for a body), "redirect_away" (307 to another origin, `evil`), "redirect_poll" (BFL's polling URL
redirects to `evil`), "poll_elsewhere" (BFL's polling URL is on `evil`), "no_status" (a BFL poll answer without `status`), "moderation_algo" (DashScope's
`InternalError.Algo.DataInspectionFailed`), the hostile bodies: "gzip_bomb" (1.5 MB inflating to 1.5 GiB),
"gzip_invalid" (marked gzip, not gzip), "huge" (a 3 GiB body), "trickle" (a byte every 0.2 s), "gateway_html" (a
504 error page in HTML), "echo_key_encoded" (the key less its last character, JSON-escaped and URL-encoded, in
headers and body). `get_faults` gives GETs a hostile body ("download": result files, "status": Phota's
profile status). `delay` holds each call that long; `max_in_flight` shows how many overlapped.
Also "thought" (Gemini answers a `thought` draft of a stranger before its
image), "deprecated" (a success with `Deprecation` and `Sunset` headers), "bfl_error" and "task_not_found" (the
BFL job ends so). `delay` holds each call that long; `max_in_flight` shows how many overlapped. A BFL job reports
`Pending`, `Reasoning`, `Generating`, then `Ready`, as BFL's running jobs do.

`listed` holds the ids each vendor's models listing answers (Gemini `GET /v1beta/models`, two pages; OpenAI
`GET /v1/models`); a test takes one out to play a vendor that moved.

The fakes refuse what the real services document refusing, in each provider's own error shape: retired or
unknown model ids, sizes outside the documented bounds, too many or too large input images, and (Phota) any
request that breaks its OpenAPI document (tests/data/phota/openapi.json, see openapi_contract.py); every answer the
Phota fake gives is checked against that document too, and a breach is kept in `breaches` (conftest fails the test).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import io
import json
import random
import re
import struct
import threading
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from aiohttp import web
from openapi_contract import Contract
from PIL import Image, ImageFilter

#: One key per provider, random-looking like a real one (no word of the provider's name in it, so that a test can
#: look for any 8-character run of it in what the layer shows).
KEYS = {
    p: "tk-" + hashlib.sha256(p.encode()).hexdigest()[:32]
    for p in ("gemini", "openai", "dashscope", "bfl", "reve", "phota")
}
PHOTA = Contract(Path(__file__).parent / "data" / "phota" / "openapi.json")
# gemini-3.1-flash-image was shut down on 2026-10-29 (its -preview on 2026-06-25): both are unknown ids now.
GEMINI_MODELS = {"gemini-nano-banana-2.1", "gemini-3-pro-image", "gemini-3.1-flash-lite-image"}
GEMINI_RATIOS = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1", "1:8", "8:1"}
GEMINI_SIZES = {"gemini-3.1-flash-lite-image": {"1K"}}  # Nano Banana 2 Lite: 1K only; the others 1K, 2K, 4K
GEMINI_PRO_RATIOS = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"}
OPENAI_MODELS = {"gpt-image-2", "gpt-image-2-2026-04-21"} | {
    f"gpt-image-2.5-{v}{d}" for v in ("sunburst", "flare") for d in ("", "-2026-09-08")
}
OPENAI_QUALITIES = {"auto", "low", "medium", "high"}  # gpt-image-2.5-* add xhigh and max
QWEN_MODELS = {
    "qwen-image-2.0-pro",
    "qwen-image-2.0",
    "qwen-image-2.0-pro-2026-03-03",
    "qwen-image-edit-max",
    "qwen-image-3.0-pro",
    "qwen-image-3.0",
}
BFL_MODELS = {"flux-2-pro", "flux-2-flex", "flux-2-max", "flux-2-pro-preview"}
BFL_RUNNING = ("Pending", "Reasoning", "Generating")  # a job's statuses before Ready, in order
REVE_V2_RATIOS = {"4:1", "3:1", "21:9", "2:1", "17:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3"} | {
    "9:16",
    "1:2",
    "1:3",
    "1:4",
}
NUMBERED = re.compile(r"(Images? [\d, and]+?) shows? ")
SUBJECT_TAGS = re.compile(r"((?:<img>\d+</img>\s*)+)(?!\s*(?:is|are) the)")  # tag groups not introducing an input


@dataclass
class Recorded:
    provider: str
    path: str
    headers: dict
    json: dict | None = None
    form: dict | None = None
    files: list = field(default_factory=list)  # (field name, filename, content type, bytes)


class StandIns:
    """Photos of the tests' people that no profile was trained on; `for_reference` picks the one whose face looks
    most like a reference's (real face scoring), so the fake's people come from what was sent, not copies of it."""

    def __init__(self, engine, photos: list[np.ndarray]):
        self.engine = engine
        found = engine.analyze(photos)
        self.photos = [
            (max(faces, key=lambda f: f.size).embedding, photo) for faces, photo in zip(found, photos) if faces
        ]
        self.chosen: dict[str, np.ndarray | None] = {}

    def for_reference(self, reference: np.ndarray) -> np.ndarray:
        key = hashlib.sha256(reference.tobytes()).hexdigest()  # the same portraits come with every request
        if key not in self.chosen:
            faces = self.engine.analyze([reference])[0]
            wanted = max(faces, key=lambda f: f.size).embedding if faces else None
            self.chosen[key] = None if wanted is None else max(self.photos, key=lambda e: float(e[0] @ wanted))[1]
        chosen = self.chosen[key]
        return reference if chosen is None else chosen


STALL_SECONDS = 3.0
HUGE_BYTES = 3 << 30


class Fake:
    """All six providers, each on its own port, served from one background event loop."""

    def __init__(self, strangers: list[np.ndarray], seed: int = 0, stand_ins: StandIns | None = None):
        self.strangers = strangers
        self.stand_ins = stand_ins  # None (no fixture photos): the reference itself is drawn
        self.rng = random.Random(seed)
        self.requests: list[Recorded] = []
        self.faults: list[str] = []
        self.stranger_rate = 0.0
        self.stall_seconds = STALL_SECONDS  # how long a "timeout" fault keeps the client waiting
        self.huge_bytes = HUGE_BYTES  # the body of a "huge" fault
        self.get_faults: dict[str, str] = {}  # a hostile body for every GET of a kind: {"download"|"status": fault}
        self.delay = 0.0
        self.round = 0  # bumped by reset: calls still held from an earlier test do not count as in flight
        self.in_flight = 0
        self.max_in_flight = 0
        self.urls: dict[str, str] = {}
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, dict] = {}
        self.phota_profiles: dict[str, str] = {}  # Phota's own profile ids and their training status
        self.phota_jobs_by_client_id: dict[str, str] = {}
        self.charged = 0  # paid submits that created work (an idempotent re-send does not)
        self.breaches: list[str] = []  # answers of a fake outside its provider's published shapes
        self.listed = {
            "gemini": set(GEMINI_MODELS) | {"gemini-3.8-flash", "gemini-2.5-flash-image"},
            "openai": set(OPENAI_MODELS) | {"gpt-5", "dall-e-3"},
        }
        self._loop = asyncio.new_event_loop()
        self._runners = []

    # ----- life cycle ----------------------------------------------------------------------------------

    def start(self) -> Fake:
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(30)
        return self

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def boot():
            for provider, routes in self._routes().items():
                app = web.Application(client_max_size=200 * 1024 * 1024)
                app.add_routes(routes)
                runner = web.AppRunner(app, shutdown_timeout=0.5)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                port = site._server.sockets[0].getsockname()[1]
                self.urls[provider] = f"http://127.0.0.1:{port}"
                self._runners.append(runner)

        self._loop.run_until_complete(boot())
        ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        async def down():
            for runner in self._runners:
                await runner.cleanup()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()  # handlers still holding a stalled answer

        asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def reset(self, stranger_rate: float = 0.0, faults: list[str] | None = None, delay: float = 0.0) -> None:
        self.requests.clear()
        self.faults = list(faults or [])
        self.stranger_rate = stranger_rate
        self.delay = delay
        self.round += 1
        self.in_flight = self.max_in_flight = 0
        self.charged = 0
        self.phota_jobs_by_client_id.clear()
        self.get_faults = {}
        self.stall_seconds, self.huge_bytes = STALL_SECONDS, HUGE_BYTES

    def keys_file(self, folder: Path) -> Path:
        """A keys file pointing every provider at this fake."""
        path = Path(folder) / "keys.json"
        variables = {
            "gemini": "GEMINI_API_KEY",
            "openai": "OPENAI_API_KEY",
            "dashscope": "DASHSCOPE_API_KEY",
            "bfl": "BFL_API_KEY",
            "reve": "REVE_API_KEY",
            "phota": "PHOTA_API_KEY",
        }
        path.write_text(json.dumps({**{variables[p]: k for p, k in KEYS.items()}, "base_urls": self.urls}))
        return path

    def received(self, provider: str) -> list[Recorded]:
        return [r for r in self.requests if r.provider == provider]

    def posts(self, provider: str) -> list[Recorded]:
        """The calls (POSTs) a provider received, without polls and downloads."""
        return [r for r in self.requests if r.provider == provider and (r.json is not None or r.form is not None)]

    # ----- scenes ------------------------------------------------------------------------------------------

    def scene(
        self, people: list[np.ndarray], background: np.ndarray | None, size=(768, 512), strangers: bool = False
    ) -> bytes:
        """People side by side on a background (the input photo for edits), as PNG."""
        width, height = size
        canvas = Image.new("RGB", size, (225, 225, 220))
        if background is not None:  # the edited photo's colours, its own faces blurred away: only `people` count
            canvas = Image.fromarray(background).resize(size).filter(ImageFilter.GaussianBlur(24))
        slot = width // max(len(people), 1)
        for index, person in enumerate(people):
            if self.strangers and (strangers or self.rng.random() < self.stranger_rate):
                person = self.rng.choice(self.strangers)
            tile = Image.fromarray(person)
            tile.thumbnail((int(slot * 0.9), int(height * 0.9)))
            canvas.paste(tile, (index * slot + (slot - tile.width) // 2, (height - tile.height) // 2))
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        return buffer.getvalue()

    def compose(self, images: list[bytes], groups: list[list[int]], fault: str | None = None) -> bytes:
        """Each group (1-based image numbers showing one person) contributes its first image."""
        decoded = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in images]
        people = [decoded[g[0] - 1] for g in groups if g]
        if self.stand_ins is not None:
            people = [self.stand_ins.for_reference(person) for person in people]
        referenced = {n for g in groups for n in g}
        inputs = [decoded[i] for i in range(len(decoded)) if i + 1 not in referenced]
        return self.scene(people, inputs[0] if inputs and people else None, strangers=fault == "stranger")

    # ----- shared behaviour --------------------------------------------------------------------------------

    def _fault(self) -> str | None:
        return self.faults.pop(0) if self.faults else None

    async def _record(self, provider: str, request: web.Request) -> Recorded:
        headers = {k.lower(): v for k, v in request.headers.items()}
        entry = Recorded(provider, request.path_qs, headers)
        if request.content_type == "multipart/form-data":
            entry.form, reader = {}, await request.multipart()
            async for part in reader:
                if part.filename:
                    entry.files.append(
                        (part.name, part.filename, part.headers.get("Content-Type"), bytes(await part.read()))
                    )
                else:
                    entry.form[part.name] = (await part.read()).decode()
        else:
            text = await request.text()
            try:
                entry.json = json.loads(text) if text else {}
            except ValueError:
                entry.json = {"_invalid": text[:100]}
        self.requests.append(entry)
        return entry

    async def _misbehave(self, fault: str | None, request: web.Request, error_body: dict):
        """The common faults; returns a response to send instead of the normal one, or None."""
        round_ = self.round
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            if round_ == self.round:
                self.in_flight -= 1
        if fault == "409":  # OpenAI's lock timeout, which openai-python retries
            return web.json_response(error_body, status=409)
        if fault == "500_no_retry":  # a server error the server says not to retry (OpenAI's x-should-retry)
            return web.json_response(error_body, status=500, headers={"x-should-retry": "false"})
        if fault in ("429", "429long", "500", "503"):
            headers = {"Retry-After": "1" if fault == "429" else "3600"} if fault.startswith("429") else {}
            return web.json_response(error_body, status=int(fault[:3]), headers=headers)
        if fault == "timeout":
            await asyncio.sleep(self.stall_seconds)
            return web.json_response(error_body, status=504)
        if fault == "malformed":
            return web.Response(text='{"candidates": [ {"content": ', content_type="application/json")
        if fault == "drop":
            self.charged += 1  # the work was accepted: a re-send would be charged again
            request.transport.close()
            return web.Response(status=200)  # never reaches the client
        if fault == "echo_key_text":
            # A proxy's plain-text error that echoes every header it got.
            headers = sorted(
                request.headers.items(), key=lambda kv: not ("key" in kv[0].lower() or "auth" in kv[0].lower())
            )
            echoed = " ".join(f"{k}={v}" for k, v in headers)
            return web.Response(text="upstream refused: " + echoed, status=400, content_type="text/plain")
        if fault == "echo_key_late":
            # A JSON error without the provider's usual fields whose text reaches the key at character 290,
            # so that a 300-character cut made before redaction would keep the key's first ten characters.
            key = next(
                v.removeprefix("Bearer ")
                for k, v in request.headers.items()
                if "key" in k.lower() or k.lower() == "authorization"
            )
            head = '{"note": "'
            return web.Response(
                text=head + "x" * (290 - len(head)) + key + '"}', status=400, content_type="application/json"
            )
        if fault == "echo_key_encoded":
            # A proxy that echoes the key in part and encoded: less its last character in a header and the body,
            # as JSON \\u escapes and URL-encoded (in a Location header too), in fields no provider reads.
            key = next(
                v.removeprefix("Bearer ")
                for k, v in request.headers.items()
                if "key" in k.lower() or k.lower() == "authorization"
            )
            escaped = "".join(f"\\u{ord(c):04x}" for c in key)
            encoded = "".join(f"%{ord(c):02X}" for c in key)
            return web.Response(
                text=f'{{"note": "{key[:-1]} / {escaped} / https://x.test/?k={encoded}"}}',
                status=400,
                content_type="application/json",
                headers={"X-Echo": key[:-1], "Location": f"https://x.test/?k={encoded}"},
            )
        if fault == "json_list":
            return web.json_response(["unexpected", "array"], status=200)
        if fault in ("gzip_bomb", "gzip_invalid", "huge", "trickle"):
            return await self._hostile_body(request, fault)
        if fault == "gateway_html":  # a load balancer's own error page, no request id in it
            return web.Response(
                text="<html><body><h1>504 Gateway Time-out</h1></body></html>", status=504, content_type="text/html"
            )
        if fault == "redirect_away":
            return web.Response(status=307, headers={"Location": f"{self.urls['evil']}{request.path_qs}"})
        return None

    async def _hostile_body(self, request: web.Request, fault: str) -> web.StreamResponse:
        """A 200 whose body is the attack: "gzip_bomb" (1.5 MB inflating to 1.5 GiB), "gzip_invalid" (marked
        gzip, not gzip), "huge" (`huge_bytes` of JSON-looking bytes), "trickle" (a byte every 0.2 s, for ever)."""
        headers = {"Content-Type": "application/json"}
        if fault.startswith("gzip"):
            headers["Content-Encoding"] = "gzip"
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        try:
            if fault == "gzip_bomb":
                bomb = gzip_bomb()
                for start in range(0, len(bomb), 65536):
                    await response.write(bomb[start : start + 65536])
            elif fault == "gzip_invalid":
                await response.write(b'{"this is": "not gzip"}')
            elif fault == "huge":
                await response.write(b'{"padding": "')
                piece = b"x" * (1 << 20)
                for _ in range(self.huge_bytes >> 20):
                    await response.write(piece)
            else:
                for _ in range(600):
                    await response.write(b" ")
                    await asyncio.sleep(0.2)
            await response.write_eof()
        except (ConnectionError, RuntimeError):  # the client gave up on it: what the test wants
            pass
        return response

    async def _slowly(self, request: web.Request, payload: dict) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        data = json.dumps(payload).encode()
        step = max(1, -(-len(data) // 12))
        for start in range(0, len(data), step):
            await response.write(data[start : start + step])
            await asyncio.sleep(0.25)
        await response.write_eof()
        return response

    def _image_or_junk(self, fault: str | None, png: bytes) -> bytes:
        return b"<html>not an image</html>" if fault == "bad_image" else png

    def _check_key(self, provider: str, value: str | None) -> web.Response | None:
        if value != KEYS[provider]:
            # Echo what arrived, as some real APIs do: the client must never show it.
            return web.json_response({"error": {"message": f"invalid key {value}", "code": 401}}, status=401)
        return None

    def _host(self, provider: str) -> str:
        return self.urls[provider]

    def _store(self, provider: str, png: bytes) -> str:
        name = f"{uuid.uuid4().hex}.png"
        self.files[name] = png
        return f"{self._host(provider)}/files/{name}"

    def _note(self, provider: str, request: web.Request) -> None:
        """Record a GET (a poll or a download)."""
        self.requests.append(Recorded(provider, request.path_qs, {k.lower(): v for k, v in request.headers.items()}))

    async def _file(self, request: web.Request) -> web.Response:
        self._note(next(p for p, url in self.urls.items() if url.endswith(f":{request.url.port}")), request)
        data = self.files.get(request.match_info["name"])
        if data and "download" in self.get_faults:
            return await self._hostile_body(request, self.get_faults["download"])
        return web.Response(body=data, content_type="image/png") if data else web.Response(status=404)

    # ----- the providers -----------------------------------------------------------------------------------

    def _routes(self) -> dict[str, list]:
        return {
            "gemini": [web.post("/v1beta/models/{call}", self.gemini), web.get("/v1beta/models", self.gemini_models)],
            "openai": [
                web.post("/v1/images/generations", self.openai),
                web.post("/v1/images/edits", self.openai),
                web.get("/v1/models", self.openai_models),
            ],
            "dashscope": [
                web.post("/api/v1/services/aigc/multimodal-generation/generation", self.dashscope),
                web.get("/files/{name}", self._file),
            ],
            "bfl": [
                web.post("/v1/{model}", self.bfl),
                web.get("/v1/get_result", self.bfl_poll),
                web.get("/files/{name}", self._file),
            ],
            "reve": [web.post("/v1/image/{endpoint}", self.reve), web.post("/v2/image/create", self.reve_v2)],
            "phota": [
                web.get("/v1/phota/profiles/{profile_id}/status", self.phota_profile_status),
                web.post("/v1/phota/{endpoint}", self.phota),
                web.get("/v1/phota/jobs/{job_id}", self.phota_poll),
                web.get("/files/{name}", self._file),
            ],
            # Another origin: whatever reaches it (a redirect target) is recorded, credentials included.
            "evil": [web.route("*", "/{tail:.*}", self.evil)],
        }

    async def evil(self, request: web.Request) -> web.Response:
        await self._record("evil", request)
        return web.json_response({"detail": "not here"}, status=404)

    async def gemini(self, request: web.Request) -> web.Response:
        entry = await self._record("gemini", request)
        if denied := self._check_key("gemini", entry.headers.get("x-goog-api-key")):
            return denied
        fault = self._fault()
        error = {
            "error": {
                "code": int(fault[:3]) if fault and fault[:3].isdigit() else 500,
                "message": "fake",
                "status": "UNAVAILABLE",
            }
        }
        if response := await self._misbehave(fault, request, error):
            return response
        model, _, action = request.match_info["call"].partition(":")
        if model not in GEMINI_MODELS:
            return _google_error(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported for generateContent.",
            )
        if request.content_length and request.content_length > 100_000_000:
            return _google_error(400, "INVALID_ARGUMENT", "Request payload size exceeds the limit: 104857600 bytes.")
        body = entry.json
        parts = body["contents"][0]["parts"]
        config = body["generationConfig"]
        assert action == "generateContent" and config["responseModalities"] == ["IMAGE"], body
        image_config = config.get("imageConfig", {})
        ratios = GEMINI_PRO_RATIOS if model == "gemini-3-pro-image" else GEMINI_RATIOS
        if (
            image_config.get("imageSize", "1K") not in GEMINI_SIZES.get(model, {"1K", "2K", "4K"})
            or image_config.get("aspectRatio", "1:1") not in ratios
        ):
            return _google_error(400, "INVALID_ARGUMENT", f"Invalid image config {image_config} for {model}.")
        if model == "gemini-3-pro-image" and "thinkingConfig" in config:
            return _google_error(400, "INVALID_ARGUMENT", "Thinking level is not supported for this model.")
        inline = [p["inlineData"] for p in parts if "inlineData" in p]
        if len(inline) > 14:
            return _google_error(400, "INVALID_ARGUMENT", "Too many images: at most 14 are supported.")
        images = [
            base64.urlsafe_b64decode(i["data"].replace("+", "-").replace("/", "_")) for i in inline
        ]  # proto JSON: either alphabet
        text = " ".join(p["text"] for p in parts if "text" in p)
        if fault == "moderation":
            return web.json_response(
                {"candidates": [{"finishReason": "IMAGE_SAFETY", "content": {"parts": []}}], "responseId": "r-mod"}
            )
        if fault == "text_only":
            return web.json_response(
                {
                    "candidates": [
                        {
                            "content": {"role": "model", "parts": [{"text": "I can't create images of real people."}]},
                            "finishReason": "STOP",
                        }
                    ],
                    "responseId": "r-text",
                }
            )
        if fault == "no_image":
            return web.json_response({"candidates": [{"finishReason": "NO_IMAGE", "content": {"parts": []}}]})
        if fault == "error_string":
            return web.json_response({"error": "request body is malformed"}, status=400)
        if fault == "inline_no_data":
            return web.json_response(
                {
                    "candidates": [
                        {"content": {"parts": [{"inlineData": {"mimeType": "image/png"}}]}, "finishReason": "STOP"}
                    ],
                    "responseId": "r-nodata",
                }
            )
        png = self._image_or_junk(fault, self.compose(images, _numbered_groups(text), fault))
        answer = [{"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}}]
        if fault == "thought":  # a draft while thinking, of someone else: never the answer
            draft = base64.b64encode(self.scene([self.rng.choice(self.strangers)], None)).decode()
            answer = [{"inlineData": {"mimeType": "image/png", "data": draft}, "thought": True}, *answer]
        payload = {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": answer,
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "responseId": uuid.uuid4().hex,
            "modelVersion": model,
            "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 1290, "totalTokenCount": 2290},
        }
        if fault == "slow":
            return await self._slowly(request, payload)
        return web.json_response(payload, headers=_deprecation_headers(fault))

    async def gemini_models(self, request: web.Request) -> web.Response:
        """`models.list`: every id the key may call, in pages of at most `pageSize` (here: two pages)."""
        self._note("gemini", request)
        if denied := self._check_key("gemini", request.headers.get("x-goog-api-key")):
            return denied
        names = sorted(self.listed["gemini"])
        half = len(names) // 2
        page = names[half:] if request.query.get("pageToken") == "page-2" else names[:half]
        models = [
            {"name": f"models/{n}", "displayName": n, "supportedGenerationMethods": ["generateContent"]} for n in page
        ]
        return web.json_response(
            {"models": models, **({} if request.query.get("pageToken") else {"nextPageToken": "page-2"})}
        )

    async def openai_models(self, request: web.Request) -> web.Response:
        self._note("openai", request)
        if denied := self._check_key("openai", (request.headers.get("authorization") or "").removeprefix("Bearer ")):
            return denied
        data = [{"id": n, "object": "model", "created": 1, "owned_by": "openai"} for n in sorted(self.listed["openai"])]
        return web.json_response({"object": "list", "data": data})

    async def openai(self, request: web.Request) -> web.Response:
        entry = await self._record("openai", request)
        if denied := self._check_key("openai", (entry.headers.get("authorization") or "").removeprefix("Bearer ")):
            return denied
        fault = self._fault()
        if response := await self._misbehave(fault, request, {"error": {"message": "fake", "type": "server_error"}}):
            return response
        fields = entry.form if entry.form is not None else entry.json
        if fields.get("model") not in OPENAI_MODELS:
            return _openai_error(404, f"The model `{fields.get('model')}` does not exist.", "model", "model_not_found")
        if not 1 <= int(fields.get("n", 1)) <= 10:
            return _openai_error(400, f"Invalid 'n': {fields['n']}; expected 1 to 10.", "n", "integer_out_of_range")
        if problem := _openai_size_problem(fields.get("size", "auto")):
            return _openai_error(400, f"Invalid size '{fields['size']}': {problem}.", "size", "invalid_value")
        qualities = OPENAI_QUALITIES | ({"xhigh", "max"} if fields["model"].startswith("gpt-image-2.5-") else set())
        if fields.get("quality", "auto") not in qualities:
            return _openai_error(400, f"Invalid quality '{fields['quality']}'.", "quality", "invalid_value")
        images = [f[3] for f in entry.files]
        if (
            any(f[0] not in ("image", "image[]") for f in entry.files)
            or len(images) > 16
            or any(len(i) >= 50_000_000 for i in images)
            or any(f[2] not in ("image/png", "image/jpeg", "image/webp") for f in entry.files)
        ):
            return _openai_error(
                400, "Invalid image: at most 16 png, webp or jpg files under 50MB each.", "image", "invalid_image"
            )
        if fault == "moderation":
            return web.json_response(
                {
                    "error": {
                        "message": "Your request was rejected by the safety system.",
                        "type": "image_generation_user_error",
                        "param": None,
                        "code": "moderation_blocked",
                    }
                },
                status=400,
            )
        if fault == "error_string":
            return web.json_response({"error": "Something went wrong"}, status=400)
        groups = _numbered_groups(fields["prompt"])
        data = [
            {"b64_json": base64.b64encode(self._image_or_junk(fault, self.compose(images, groups, fault))).decode()}
            for _ in range(int(fields.get("n", 1)))
        ]
        usage = {
            "input_tokens": 1000,
            "input_tokens_details": {"image_tokens": 800, "text_tokens": 200},
            "output_tokens": 4000,
            "output_tokens_details": {"image_tokens": 3500, "text_tokens": 500},
            "total_tokens": 5000,
        }
        return web.json_response(
            {
                "created": 1,
                "data": data,
                "usage": usage,
                "output_format": "png",
                "quality": fields.get("quality", "auto"),
                "size": fields.get("size", "auto"),
            },
            headers={"x-request-id": uuid.uuid4().hex, **_deprecation_headers(fault)},
        )

    async def dashscope(self, request: web.Request) -> web.Response:
        entry = await self._record("dashscope", request)
        if denied := self._check_key("dashscope", (entry.headers.get("authorization") or "").removeprefix("Bearer ")):
            return denied
        fault = self._fault()
        error = {"code": "InternalError", "message": "fake", "request_id": "d-1"}
        if response := await self._misbehave(fault, request, error):
            return response
        body = entry.json
        if body.get("model") not in QWEN_MODELS:
            return _dashscope_error(400, "InvalidParameter", f"Model not exist: {body.get('model')}")
        content = body["input"]["messages"][0]["content"]
        images = []
        for item in content:
            if "image" in item:
                assert item["image"].startswith("data:image/"), "images go as data URLs"
                images.append(base64.b64decode(item["image"].split(",", 1)[1]))
        if len(images) > 3:
            return _dashscope_error(400, "InvalidParameter", "The number of input images must be between 1 and 3.")
        for image in images:
            width, height = Image.open(io.BytesIO(image)).size
            if len(image) > 10_000_000 or not (384 <= width <= 3072 and 384 <= height <= 3072):
                return _dashscope_error(
                    400,
                    "InvalidParameter",
                    f"The input image ({width}x{height}, {len(image)} bytes) "
                    "must be 384-3072 px per side and at most 10 MB.",
                )
        size = body["parameters"].get("size")
        if size is not None:
            match = re.fullmatch(r"(\d+)\*(\d+)", size)
            largest, ratio = (2560, 8) if body["model"].startswith("qwen-image-3") else (2048, 3)
            width, height = (int(match[1]), int(match[2])) if match else (0, 1)
            if (
                not match
                or not 512 * 512 <= width * height <= largest**2
                or max(width, height) > ratio * min(width, height)
            ):
                return _dashscope_error(400, "InvalidParameter", f"The size {size} is not supported.")
        if fault == "moderation":
            return _dashscope_error(400, "DataInspectionFailed", "Input data may contain inappropriate content.")
        if fault == "moderation_algo":
            return _dashscope_error(
                400, "InternalError.Algo.DataInspectionFailed", "Output data may contain inappropriate content."
            )
        text = " ".join(item["text"] for item in content if "text" in item)
        urls = [
            self._store("dashscope", self._image_or_junk(fault, self.compose(images, _numbered_groups(text), fault)))
            for _ in range(body["parameters"].get("n", 1))
        ]
        return web.json_response(
            {
                "status_code": 200,
                "request_id": uuid.uuid4().hex,
                "code": "",
                "message": "",
                "output": {
                    "choices": [
                        {
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": [{"image": u} for u in urls]},
                        }
                    ]
                },
                "usage": {"width": 1024, "height": 1024, "image_count": len(urls)},
            }
        )

    async def bfl(self, request: web.Request) -> web.Response:
        entry = await self._record("bfl", request)
        if denied := self._check_key("bfl", entry.headers.get("x-key")):
            return denied
        fault = self._fault()
        if response := await self._misbehave(fault, request, {"detail": "fake"}):
            return response
        if request.match_info["model"] not in BFL_MODELS:
            return web.json_response({"detail": "Not Found"}, status=404)
        body = entry.json
        problems = [
            {
                "loc": ["body", side],
                "msg": f"Input should be a multiple of 16 and at least 64 (got {body[side]})",
                "type": "value_error",
            }
            for side in ("width", "height")
            if side in body and (not isinstance(body[side], int) or body[side] < 64 or body[side] % 16)
        ]
        problems += [
            {"loc": ["body", side], "msg": f"Input should be at most 2048 (got {body[side]})", "type": "value_error"}
            for side in ("width", "height")
            if not problems and body.get(side, 0) > 2048
        ]
        if not problems and "width" in body and "height" in body and body["width"] * body["height"] > 4_000_000:
            problems = [{"loc": ["body"], "msg": "width * height must be at most 4 megapixels", "type": "value_error"}]
        numbers = sorted(
            int(k.rsplit("_", 1)[1]) if k != "input_image" else 1 for k in body if k.startswith("input_image")
        )
        if numbers != list(range(1, len(numbers) + 1)) or len(numbers) > 8:
            problems.append(
                {
                    "loc": ["body", "input_image"],
                    "msg": "input_image, input_image_2 … input_image_8",
                    "type": "value_error",
                }
            )
        if problems:
            return web.json_response({"detail": problems}, status=422)
        images = [base64.b64decode(body["input_image" if n == 1 else f"input_image_{n}"]) for n in numbers]
        job = uuid.uuid4().hex
        self.jobs[job] = {
            "polls": 0,
            "fault": fault,
            "png": None
            if fault == "moderation"
            else self._image_or_junk(fault, self.compose(images, _numbered_groups(body["prompt"]), fault)),
        }
        poll = f"{self._host('bfl')}/v1/get_result?id={job}" + ("&redirect=1" if fault == "redirect_poll" else "")
        if fault == "poll_elsewhere":  # a polling URL on another origin (same host name, another port)
            poll = f"{self.urls['evil']}/v1/get_result?id={job}"
        return web.json_response({"id": job, "polling_url": poll, "cost": 3.0, "input_mp": 1.0, "output_mp": 1.0})

    async def bfl_poll(self, request: web.Request) -> web.Response:
        self._note("bfl", request)
        if request.headers.get("x-key") != KEYS["bfl"]:
            return web.json_response({"detail": "unauthorized"}, status=401)
        if request.query.get("redirect"):  # the regional host moved: the key must not follow
            return web.Response(
                status=302, headers={"Location": f"{self.urls['evil']}/v1/get_result?id={request.query['id']}"}
            )
        job = self.jobs.get(request.query.get("id", ""))
        if job is None:
            return web.json_response({"status": "Task not found"})
        job["polls"] += 1
        if job["fault"] == "no_status":
            return web.json_response({"id": request.query["id"], "progress": 0.5})
        if job["polls"] <= len(BFL_RUNNING):
            status = BFL_RUNNING[job["polls"] - 1]
            return web.json_response({"id": request.query["id"], "status": status, "progress": job["polls"] / 4})
        if job["fault"] == "moderation":
            return web.json_response({"id": request.query["id"], "status": "Content Moderated"})
        if job["fault"] in ("bfl_error", "task_not_found"):
            status = "Error" if job["fault"] == "bfl_error" else "Task not found"
            return web.json_response({"id": request.query["id"], "status": status})
        return web.json_response(
            {"id": request.query["id"], "status": "Ready", "result": {"sample": self._store("bfl", job["png"])}}
        )

    async def reve(self, request: web.Request) -> web.Response:
        entry = await self._record("reve", request)
        if denied := self._check_key("reve", (entry.headers.get("authorization") or "").removeprefix("Bearer ")):
            return denied
        fault = self._fault()
        if response := await self._misbehave(fault, request, {"error_code": "INTERNAL", "message": "fake"}):
            return response
        raw = (entry.headers.get("accept") or "").startswith("image/")  # bytes, metadata in X-Reve-* headers
        assert raw or entry.headers.get("accept") == "application/json"
        endpoint, body = request.match_info["endpoint"], entry.json
        text = body.get("prompt", body.get("edit_instruction", ""))
        if (
            endpoint not in ("create", "edit", "remix")
            or not text
            or len(text) > 2560
            or body.get("aspect_ratio", "1:1") not in ("16:9", "9:16", "3:2", "2:3", "4:3", "3:4", "1:1")
            or (endpoint == "edit" and "aspect_ratio" in body)
        ):
            return web.json_response(
                {"error_code": "INVALID_PARAMETER_VALUE", "message": "invalid request", "request_id": uuid.uuid4().hex},
                status=400,
            )
        if endpoint == "remix":
            images = [base64.b64decode(i) for i in body["reference_images"]]
            if not 1 <= len(images) <= 6:
                return web.json_response(
                    {"error_code": "INVALID_PARAMETER_VALUE", "message": "reference_images takes 1 to 6 images"},
                    status=400,
                )
            groups = [
                [int(n) + 1 for n in re.findall(r"<img>(\d+)</img>", g)] for g in SUBJECT_TAGS.findall(body["prompt"])
            ]
        elif endpoint == "edit":
            images, groups = [base64.b64decode(body["reference_image"])], []
        else:
            images, groups = [], []
        if fault == "moderation":
            answer = {"image": None, "content_violation": True, "request_id": "v-mod", "credits_used": 0}
        else:
            png = self._image_or_junk(fault, self.compose(images, groups, fault) if images else self.scene([], None))
            answer = {
                "image": base64.b64encode(png).decode(),
                "version": "reve-fake",
                "content_violation": False,
                "request_id": uuid.uuid4().hex,
                "credits_used": 12,
                "credits_remaining": 88,
            }
        if raw:
            headers = {f"X-Reve-{k.replace('_', '-').title()}": str(v) for k, v in answer.items() if k != "image"}
            return web.Response(body=base64.b64decode(answer["image"] or ""), content_type="image/png", headers=headers)
        return web.json_response(answer)

    async def reve_v2(self, request: web.Request) -> web.Response:
        """`/v2/image/create` (Reve's SDK `reve.v2.image.create`): prompt, references [{data}], aspect_ratio."""
        entry = await self._record("reve", request)
        if denied := self._check_key("reve", (entry.headers.get("authorization") or "").removeprefix("Bearer ")):
            return denied
        fault = self._fault()
        if response := await self._misbehave(fault, request, {"error_code": "INTERNAL", "message": "fake"}):
            return response
        body = entry.json
        references = body.get("references", [])
        if (
            not body.get("prompt")
            or body.get("aspect_ratio", "auto") not in REVE_V2_RATIOS | {"auto"}
            or len(references) > 6
            or any(set(r) != {"data"} for r in references)
        ):
            return web.json_response(
                {"error_code": "INVALID_PARAMETER_VALUE", "message": "invalid request", "request_id": uuid.uuid4().hex},
                status=400,
            )
        images = [base64.b64decode(r["data"]) for r in references]
        groups = [
            [int(n) + 1 for n in re.findall(r"<img>(\d+)</img>", g)] for g in SUBJECT_TAGS.findall(body["prompt"])
        ]
        if fault == "moderation":
            return web.json_response({"image": None, "content_violation": True, "request_id": "v-mod"})
        png = self._image_or_junk(fault, self.compose(images, groups, fault) if images else self.scene([], None))
        return web.json_response(
            {
                "image": base64.b64encode(png).decode(),
                "version": "reve-v2-fake",
                "content_violation": False,
                "request_id": uuid.uuid4().hex,
                "credits_used": 15,
                "credits_remaining": 85,
            }
        )

    def _phota_answer(self, request: web.Request, status: int, body: dict) -> web.Response:
        """An answer in Phota's documented shape; one that is not is a breach (the fake is wrong, not the client)."""
        if breaches := PHOTA.response_problems(request.method, request.path, status, body):
            self.breaches += [f"{request.method} {request.path}: {breach}" for breach in breaches]
        return web.json_response(body, status=status)

    def _phota_error(self, request: web.Request, status: int, detail) -> web.Response:
        return self._phota_answer(request, status, {"detail": detail, "request_id": uuid.uuid4().hex})

    def _phota_denied(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("x-api-key")
        if key is None:
            return self._phota_error(request, 403, "Missing X-API-Key header.")
        return None if key == KEYS["phota"] else self._phota_error(request, 401, f"Invalid API key {key}")

    async def phota(self, request: web.Request) -> web.Response:
        entry = await self._record("phota", request)
        if denied := self._phota_denied(request):
            return denied
        fault = self._fault()
        if response := await self._misbehave(fault, request, {"detail": "fake", "request_id": "p-1"}):
            return response
        endpoint, body = request.match_info["endpoint"], entry.json
        if endpoint not in ("generate", "edit", "enhance", "remix"):
            return web.json_response({"detail": "Not Found"}, status=404)
        problems = PHOTA.request_problems("POST", request.path, body) + _phota_async_problems(body)
        if problems:
            return self._phota_answer(request, 422, {"detail": problems})
        base = body.get("base_model", "nb2")
        if (
            body.get("resolution") == "4K"
            and base in ("qwen-image-2", "flux-2", "reve")
            or body.get("resolution") == "2K"
            and base == "reve"
        ):
            return self._phota_error(request, 400, f"resolution {body['resolution']} is not supported by {base}")
        if "quality" in body and base != "gpt-image-2":
            return self._phota_error(request, 400, "quality is only supported when base_model is gpt-image-2")
        unknown = [
            p
            for p in body.get("profile_ids", []) + re.findall(r"\[\[([^\]]+)\]\]", body.get("prompt") or "")
            if p not in self.phota_profiles
        ]
        if unknown:
            return self._phota_error(request, 404, f"Profile not found: {unknown[0]}")
        assert body.get("async") is True and body.get("response_mode") == "urls", body
        if (client_id := body.get("client_request_id")) in self.phota_jobs_by_client_id:
            job = self.phota_jobs_by_client_id[client_id]  # idempotent: the original job, not a second charge
            return self._phota_answer(request, 202, {"job_id": job, "poll_url": f"/v1/phota/jobs/{job}"})
        if fault == "moderation":
            return self._phota_answer(
                request, 400, {"type": "CONTENT_MODERATION", "detail": "refused", "request_id": "p-mod"}
            )
        inputs = {
            "edit": body.get("images", []),
            "enhance": [body.get("image")] if body.get("image") else [],
            "remix": [body.get("input_image")],
        }.get(endpoint, [])
        background = np.asarray(Image.open(io.BytesIO(base64.b64decode(inputs[0]))).convert("RGB")) if inputs else None
        people = [self.rng.choice(self.strangers)] if self.strangers and background is None else []
        job = uuid.uuid4().hex
        self.charged += 1
        if client_id:
            self.phota_jobs_by_client_id[client_id] = job
        self.jobs[job] = {
            "polls": 0,
            "urls": [
                self._store("phota", self.scene(people, background)) for _ in range(body.get("num_output_images", 1))
            ],
        }
        if fault == "timeout_after_accept":  # the job exists, but the answer is late: the client gives up on it
            await asyncio.sleep(self.stall_seconds)
        return self._phota_answer(request, 202, {"job_id": job, "poll_url": f"/v1/phota/jobs/{job}"})

    async def phota_poll(self, request: web.Request) -> web.Response:
        self._note("phota", request)
        if denied := self._phota_denied(request):
            return denied
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            return self._phota_error(request, 404, "Job not found")
        job["polls"] += 1
        if job["polls"] < 2:
            return self._phota_answer(request, 200, {"job_id": request.match_info["job_id"], "status": "running"})
        return self._phota_answer(
            request, 200, {"job_id": request.match_info["job_id"], "status": "completed", "download_urls": job["urls"]}
        )

    async def phota_profile_status(self, request: web.Request) -> web.Response:
        self._note("phota", request)
        if denied := self._phota_denied(request):
            return denied
        profile_id = request.match_info["profile_id"]
        if "status" in self.get_faults:
            return await self._hostile_body(request, self.get_faults["status"])
        if profile_id not in self.phota_profiles:
            return self._phota_error(request, 404, f"Profile not found: {profile_id}")
        status = self.phota_profiles[profile_id]
        return self._phota_answer(
            request,
            200,
            {
                "profile_id": profile_id,
                "status": status,
                "message": "ready to use" if status == "READY" else "training",
            },
        )


@functools.lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """1.5 GiB of zeros as one valid gzip stream (1.6 MB): a full-flushed deflate block of 1 MiB of zeros is
    the same bytes every time, so it is made once and repeated."""
    zeros, packer = bytes(1 << 20), zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(1536):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + block * 1536 + packer.flush() + struct.pack("<II", crc, (1536 << 20) & 0xFFFFFFFF)


def _phota_async_problems(body) -> list[dict]:
    """The rules the release notes and the async guide state across fields (v0.7.0), in FastAPI's 422 shape."""
    if not isinstance(body, dict):
        return []
    if body.get("async") is True and body.get("response_mode") != "urls":
        return [
            {
                "type": "value_error",
                "loc": ["body", "response_mode"],
                "msg": "async needs response_mode 'urls'",
                "input": body.get("response_mode"),
            }
        ]
    if body.get("callback_url") is not None and (
        body.get("async") is not True or not str(body["callback_url"]).startswith("https://")
    ):
        return [
            {
                "type": "value_error",
                "loc": ["body", "callback_url"],
                "msg": "callback_url must be an HTTPS URL and needs async",
                "input": body["callback_url"],
            }
        ]
    return []


def _deprecation_headers(fault: str | None) -> dict:
    """RFC 9745 `Deprecation` and RFC 8594 `Sunset`, as a vendor announces a model going away."""
    return {"Deprecation": "@1790726400", "Sunset": "Thu, 29 Oct 2026 00:00:00 GMT"} if fault == "deprecated" else {}


def _google_error(code: int, status: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "status": status}}, status=code)


def _openai_error(code: int, message: str, param: str | None, error_code: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": error_code}},
        status=code,
    )


def _dashscope_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "request_id": uuid.uuid4().hex}, status=status)


def _openai_size_problem(size: str) -> str | None:
    """gpt-image-2's size rules (auto, or WxH: edges ÷16, ratio ≤ 3:1, 655,360-8,294,400 px, edges ≤ 3840)."""
    if size == "auto":
        return None
    match = re.fullmatch(r"(\d+)x(\d+)", size)
    if not match:
        return "expected 'auto' or WIDTHxHEIGHT"
    width, height = int(match[1]), int(match[2])
    if width % 16 or height % 16:
        return "both edges must be multiples of 16"
    if max(width, height) > 3 * min(width, height):
        return "the ratio of the long to the short edge must be at most 3:1"
    if not 655_360 <= width * height <= 8_294_400:
        return "the total pixels must be between 655,360 and 8,294,400"
    if max(width, height) > 3840:
        return "each edge at most 3840"
    return None


def _numbered_groups(text: str) -> list[list[int]]:
    """Image numbers per person, from sentences like 'Images 2 and 3 show Barack Obama.'"""
    return [[int(n) for n in re.findall(r"\d+", match)] for match in NUMBERED.findall(text)]
