"""Fake image providers on 127.0.0.1 that speak each provider's documented format, and can misbehave.

Each fake checks a request the way the real API would (auth header, required fields, image encoding) and
answers in the documented shape. Its images are real: it composes a scene from the reference photo of each
requested person (read from the request, grouped by what the prompt says each image shows), or — with
`stranger_rate` — from a stranger's photo, so verification and best-of-N meet real face scoring. `faults` is a
queue of misbehaviours for the next requests: "429" (Retry-After: 1), "429long" (Retry-After: 1 hour), "500",
"503", "timeout", "slow", "moderation", "malformed", "bad_image", "no_image" (Gemini), "stranger" (every person
in the image is a stranger). `delay` holds each call that long; `max_in_flight` shows how many overlapped.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import random
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from aiohttp import web
from PIL import Image, ImageFilter

KEYS = {p: f"test-key-{p}-0123456789" for p in ("gemini", "openai", "dashscope", "bfl", "reve", "phota")}
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


class Fake:
    """All six providers, each on its own port, served from one background event loop."""

    def __init__(self, strangers: list[np.ndarray], seed: int = 0):
        self.strangers = strangers
        self.rng = random.Random(seed)
        self.requests: list[Recorded] = []
        self.faults: list[str] = []
        self.stranger_rate = 0.0
        self.stall_seconds = 3.0  # how long a "timeout" fault keeps the client waiting
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.urls: dict[str, str] = {}
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, dict] = {}
        self._loop = asyncio.new_event_loop()
        self._runners = []

    # ----- life cycle ----------------------------------------------------------------------------------

    def start(self) -> "Fake":
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
        self.max_in_flight = 0

    def keys_file(self, folder: Path) -> Path:
        """A keys file pointing every provider at this fake."""
        path = Path(folder) / "keys.json"
        variables = {"gemini": "GEMINI_API_KEY", "openai": "OPENAI_API_KEY", "dashscope": "DASHSCOPE_API_KEY",
                     "bfl": "BFL_API_KEY", "reve": "REVE_API_KEY", "phota": "PHOTA_API_KEY"}
        path.write_text(json.dumps({**{variables[p]: k for p, k in KEYS.items()}, "base_urls": self.urls}))
        return path

    def posts(self, provider: str) -> list[Recorded]:
        """The calls (POSTs) a provider received, without polls and downloads."""
        return [r for r in self.requests if r.provider == provider and (r.json is not None or r.form is not None)]

    # ----- scenes ------------------------------------------------------------------------------------------

    def scene(self, people: list[np.ndarray], background: np.ndarray | None, size=(768, 512), strangers: bool = False) -> bytes:
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
                    entry.files.append((part.name, part.filename, part.headers.get("Content-Type"), await part.read()))
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
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if fault in ("429", "429long", "500", "503"):
            headers = {"Retry-After": "1" if fault == "429" else "3600"} if fault.startswith("429") else {}
            return web.json_response(error_body, status=int(fault[:3]), headers=headers)
        if fault == "timeout":
            await asyncio.sleep(self.stall_seconds)
            return web.json_response(error_body, status=504)
        if fault == "malformed":
            return web.Response(text='{"candidates": [ {"content": ', content_type="application/json")
        return None

    async def _slowly(self, request: web.Request, payload: dict) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        data = json.dumps(payload).encode()
        for start in range(0, len(data), max(1, len(data) // 6)):
            await response.write(data[start : start + max(1, len(data) // 6)])
            await asyncio.sleep(0.2)
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
        return web.Response(body=data, content_type="image/png") if data else web.Response(status=404)

    # ----- the providers -----------------------------------------------------------------------------------

    def _routes(self) -> dict[str, list]:
        return {
            "gemini": [web.post("/v1beta/models/{call}", self.gemini)],
            "openai": [web.post("/v1/images/generations", self.openai), web.post("/v1/images/edits", self.openai)],
            "dashscope": [web.post("/api/v1/services/aigc/multimodal-generation/generation", self.dashscope),
                          web.get("/files/{name}", self._file)],
            "bfl": [web.post("/v1/{model}", self.bfl), web.get("/v1/get_result", self.bfl_poll),
                    web.get("/files/{name}", self._file)],
            "reve": [web.post("/v1/image/{endpoint}", self.reve)],
            "phota": [web.post("/v1/phota/{endpoint}", self.phota), web.get("/v1/phota/jobs/{job_id}", self.phota_poll),
                      web.get("/files/{name}", self._file)],
        }

    async def gemini(self, request: web.Request) -> web.Response:
        entry = await self._record("gemini", request)
        if (denied := self._check_key("gemini", entry.headers.get("x-goog-api-key"))):
            return denied
        fault = self._fault()
        error = {"error": {"code": int(fault[:3]) if fault and fault[:3].isdigit() else 500, "message": "fake", "status": "UNAVAILABLE"}}
        if (response := await self._misbehave(fault, request, error)):
            return response
        model, _, action = request.match_info["call"].partition(":")
        body = entry.json
        parts = body["contents"][0]["parts"]
        config = body["generationConfig"]
        assert action == "generateContent" and config["responseModalities"] == ["IMAGE"], body
        assert config["imageConfig"]["imageSize"] in ("1K", "2K", "4K"), config
        images = [base64.b64decode(p["inlineData"]["data"]) for p in parts if "inlineData" in p]
        text = " ".join(p["text"] for p in parts if "text" in p)
        if fault == "moderation":
            return web.json_response({"candidates": [{"finishReason": "IMAGE_SAFETY", "content": {"parts": []}}],
                                      "responseId": "r-mod"})
        if fault == "no_image":
            return web.json_response({"candidates": [{"finishReason": "NO_IMAGE", "content": {"parts": []}}]})
        png = self._image_or_junk(fault, self.compose(images, _numbered_groups(text), fault))
        payload = {"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png",
                                                                          "data": base64.b64encode(png).decode()}}]},
                                   "finishReason": "STOP"}], "responseId": uuid.uuid4().hex}
        return await self._slowly(request, payload) if fault == "slow" else web.json_response(payload)

    async def openai(self, request: web.Request) -> web.Response:
        entry = await self._record("openai", request)
        if (denied := self._check_key("openai", (entry.headers.get("authorization") or "").removeprefix("Bearer "))):
            return denied
        fault = self._fault()
        if (response := await self._misbehave(fault, request, {"error": {"message": "fake", "type": "server_error"}})):
            return response
        fields = entry.form if entry.form is not None else entry.json
        assert fields["model"] == "gpt-image-2" and 1 <= int(fields["n"]) <= 10, fields
        assert re.fullmatch(r"auto|\d+x\d+", fields["size"]) and fields["quality"] in ("auto", "low", "medium", "high")
        images = [f[3] for f in entry.files]
        assert all(f[0] == "image[]" and f[2] in ("image/png", "image/jpeg") for f in entry.files), entry.files
        if fault == "moderation":
            return web.json_response({"error": {"message": "Your request was rejected by the safety system.",
                                                "type": "image_generation_user_error", "code": "moderation_blocked"}},
                                     status=400)
        groups = _numbered_groups(fields["prompt"])
        data = [{"b64_json": base64.b64encode(self._image_or_junk(fault, self.compose(images, groups, fault))).decode()}
                for _ in range(int(fields["n"]))]
        usage = {"input_tokens": 1000, "input_tokens_details": {"image_tokens": 800, "text_tokens": 200},
                 "output_tokens": 4000, "total_tokens": 5000}
        return web.json_response({"created": 1, "data": data, "usage": usage}, headers={"x-request-id": uuid.uuid4().hex})

    async def dashscope(self, request: web.Request) -> web.Response:
        entry = await self._record("dashscope", request)
        if (denied := self._check_key("dashscope", (entry.headers.get("authorization") or "").removeprefix("Bearer "))):
            return denied
        fault = self._fault()
        error = {"code": "InternalError", "message": "fake", "request_id": "d-1"}
        if (response := await self._misbehave(fault, request, error)):
            return response
        body = entry.json
        content = body["input"]["messages"][0]["content"]
        images = []
        for item in content:
            if "image" in item:
                assert item["image"].startswith("data:image/"), "images go as data URLs"
                images.append(base64.b64decode(item["image"].split(",", 1)[1]))
        assert 0 <= len(images) <= 3 and re.fullmatch(r"\d+\*\d+", body["parameters"]["size"]), body
        if fault == "moderation":
            return web.json_response({"code": "DataInspectionFailed", "message": "Input data may contain inappropriate content.",
                                      "request_id": "d-mod"}, status=400)
        text = " ".join(item["text"] for item in content if "text" in item)
        urls = [self._store("dashscope", self._image_or_junk(fault, self.compose(images, _numbered_groups(text), fault)))
                for _ in range(body["parameters"].get("n", 1))]
        return web.json_response({"output": {"choices": [{"finish_reason": "stop", "message": {
            "content": [{"image": u} for u in urls]}}]}, "usage": {"image_count": len(urls)}, "request_id": uuid.uuid4().hex})

    async def bfl(self, request: web.Request) -> web.Response:
        entry = await self._record("bfl", request)
        if (denied := self._check_key("bfl", entry.headers.get("x-key"))):
            return denied
        fault = self._fault()
        if (response := await self._misbehave(fault, request, {"detail": "fake"})):
            return response
        body = entry.json
        numbers = sorted(int(k.rsplit("_", 1)[1]) if k != "input_image" else 1 for k in body if k.startswith("input_image"))
        assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) <= 8, body.keys()
        images = [base64.b64decode(body["input_image" if n == 1 else f"input_image_{n}"]) for n in numbers]
        job = uuid.uuid4().hex
        self.jobs[job] = {"polls": 0, "fault": fault,
                          "png": None if fault == "moderation" else self._image_or_junk(fault, self.compose(images, _numbered_groups(body["prompt"]), fault))}
        return web.json_response({"id": job, "polling_url": f"{self._host('bfl')}/v1/get_result?id={job}",
                                  "cost": 3.0, "input_mp": 1.0, "output_mp": 1.0})

    async def bfl_poll(self, request: web.Request) -> web.Response:
        self._note("bfl", request)
        if request.headers.get("x-key") != KEYS["bfl"]:
            return web.json_response({"detail": "unauthorized"}, status=401)
        job = self.jobs.get(request.query.get("id", ""))
        if job is None:
            return web.json_response({"status": "Task not found"})
        job["polls"] += 1
        if job["polls"] < 2:
            return web.json_response({"id": request.query["id"], "status": "Pending", "progress": 0.5})
        if job["fault"] == "moderation":
            return web.json_response({"id": request.query["id"], "status": "Content Moderated"})
        return web.json_response({"id": request.query["id"], "status": "Ready",
                                  "result": {"sample": self._store("bfl", job["png"])}})

    async def reve(self, request: web.Request) -> web.Response:
        entry = await self._record("reve", request)
        if (denied := self._check_key("reve", (entry.headers.get("authorization") or "").removeprefix("Bearer "))):
            return denied
        fault = self._fault()
        if (response := await self._misbehave(fault, request, {"error_code": "INTERNAL", "message": "fake"})):
            return response
        assert entry.headers.get("accept") == "application/json"
        endpoint, body = request.match_info["endpoint"], entry.json
        if endpoint == "remix":
            images = [base64.b64decode(i) for i in body["reference_images"]]
            assert 1 <= len(images) <= 6, len(images)
            groups = [[int(n) + 1 for n in re.findall(r"<img>(\d+)</img>", g)] for g in SUBJECT_TAGS.findall(body["prompt"])]
        elif endpoint == "edit":
            images, groups = [base64.b64decode(body["reference_image"])], []
        else:
            images, groups = [], []
        if fault == "moderation":
            return web.json_response({"image": None, "content_violation": True, "request_id": "v-mod",
                                      "credits_used": 0, "credits_remaining": 100})
        png = self._image_or_junk(fault, self.compose(images, groups, fault) if images else self.scene([], None))
        return web.json_response({"image": base64.b64encode(png).decode(), "version": "reve-fake", "content_violation": False,
                                  "request_id": uuid.uuid4().hex, "credits_used": 12, "credits_remaining": 88})

    async def phota(self, request: web.Request) -> web.Response:
        entry = await self._record("phota", request)
        if (denied := self._check_key("phota", entry.headers.get("x-api-key"))):
            return denied
        fault = self._fault()
        if (response := await self._misbehave(fault, request, {"detail": "fake", "request_id": "p-1"})):
            return response
        body = entry.json
        assert body.get("async") is True and body.get("response_mode") == "urls", body
        if fault == "moderation":
            return web.json_response({"type": "CONTENT_MODERATION", "detail": "refused", "request_id": "p-mod"}, status=400)
        endpoint = request.match_info["endpoint"]
        inputs = {"edit": body.get("images", []), "enhance": [body.get("image")] if body.get("image") else [],
                  "remix": [body.get("input_image")]}.get(endpoint, [])
        background = np.asarray(Image.open(io.BytesIO(base64.b64decode(inputs[0]))).convert("RGB")) if inputs else None
        people = [self.rng.choice(self.strangers)] if self.strangers and background is None else []
        job = uuid.uuid4().hex
        self.jobs[job] = {"polls": 0, "urls": [self._store("phota", self.scene(people, background))
                                               for _ in range(body.get("num_output_images", 1))]}
        return web.json_response({"job_id": job, "poll_url": f"/v1/phota/jobs/{job}"}, status=202)

    async def phota_poll(self, request: web.Request) -> web.Response:
        self._note("phota", request)
        if request.headers.get("x-api-key") != KEYS["phota"]:
            return web.json_response({"detail": "unauthorized"}, status=401)
        job = self.jobs[request.match_info["job_id"]]
        job["polls"] += 1
        if job["polls"] < 2:
            return web.json_response({"status": "running"})
        return web.json_response({"status": "completed", "download_urls": job["urls"]})


def _numbered_groups(text: str) -> list[list[int]]:
    """Image numbers per person, from sentences like 'Images 2 and 3 show Barack Obama.'"""
    return [[int(n) for n in re.findall(r"\d+", match)] for match in NUMBERED.findall(text)]

