"""A closed-model request with identity, from plan to verified outputs.

`plan()` does everything that can fail without the network — the model's limits, the subjects, the reference
budget, the key — so that a wrong combination never costs a call. `execute()` sends the calls (concurrently
where a provider returns one image per call), decodes and verifies every output, re-rolls failed ones while
the re-roll budget (count and cost) lasts, and reports what happened.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import numpy as np
from PIL import Image

from ..errors import Cancelled, IdentityError, ImageError, InvalidRequest, ProviderError
from ..faces import FaceEngine
from ..images import load_image
from ..profile import Profile, ProfileStore
from ..prompt import PROFILE_REF, referenced_ids, resolve_reference
from ..prompt import subjects as request_subjects
from ..targets import best_portrait
from . import references as refs
from . import sizes
from .call import Call, Generated
from .http import Policy, Transport
from .keys import Credentials, KeyStore, scrub
from .models import BaseModel, base_model, provider_facts
from .phota_links import PhotaLinks, check_phota_id, default_links
from .providers import PROVIDERS
from .verify import Check, check_outputs, input_poses

log = logging.getLogger(__name__)

#: Input images each operation takes (min, max).
INPUTS = {"generate": (0, 0), "edit": (1, 10), "enhance": (1, 1), "remix": (2, 2)}


@dataclass(kw_only=True)
class RemoteRequest:
    operation: str
    model: str
    profiles: list[Profile]
    prompt: str = ""
    resolution: str = "1K"
    aspect_ratio: str = "auto"
    quality: str = "auto"
    candidates: list[str] = field(default_factory=list)  # edit: profile ids to look for, besides the [[refs]]
    inputs: list[np.ndarray] = field(default_factory=list)  # RGB uint8
    outputs: int = 1
    rerolls: int = 0  # extra images that may be requested for outputs that fail verification
    max_cost: float = 0.0  # USD; 0 = no cost limit for re-rolls
    seed: int | None = None
    cohort: ProfileStore | None = None  # the store whose other profiles outputs are told apart from (None: not)


@dataclass
class Plan:
    request: RemoteRequest
    model: BaseModel
    resolution: str
    subjects: list[Profile]
    external_ids: list[str]
    references: list[list[bytes]]
    inputs: list[bytes]
    credentials: Credentials
    prompt: str  # as sent: for Phota, local [[refs]] become the linked Phota ids
    ratio: float | None
    input_pixels: int = 0  # of every image sent (BFL charges for them)

    def known(self) -> ProfileStore | None:
        """Whom outputs are told apart from: the store's profiles, the request's that are not its subjects among
        them (the scorer leaves the subjects out); None when the look-alike rule is off."""
        return self.request.cohort

    def call(self, outputs: int, attempt: int) -> Call:
        r = self.request
        seed = None if r.seed is None else r.seed + attempt
        return Call(
            operation=r.operation,
            model=self.model,
            resolution=self.resolution,
            aspect_ratio=r.aspect_ratio,
            quality=r.quality,
            prompt=self.prompt,
            subjects=self.subjects,
            references=self.references,
            inputs=self.inputs,
            outputs=outputs,
            seed=seed,
            external_ids=self.external_ids,
            ratio=self.ratio,
            request_id=uuid.uuid4().hex,
        )

    def estimate(self, images: int) -> float | None:
        return self.model.estimated_cost(self.resolution, images, self.request.operation, self.input_pixels)


@dataclass
class Output:
    image: np.ndarray
    check: Check
    attempt: int
    request_id: str | None


@dataclass
class RemoteResult:
    images: list[np.ndarray]
    scores: list[float]  # per returned image, its weakest subject's similarity
    report: dict


def plan(request: RemoteRequest, keys: KeyStore, engine: FaceEngine, links: PhotaLinks | None = None) -> Plan:
    """Validate everything and prepare the payload parts; raises `InvalidRequest`/`MissingKey`, never calls out."""
    model = base_model(request.model)
    resolution = model.validate(
        request.operation, request.resolution, request.aspect_ratio, request.quality, request.outputs
    )
    low, high = INPUTS[request.operation]
    if not low <= len(request.inputs) <= high:
        wanted = f"exactly {low}" if low == high else f"{low} to {high}"
        raise InvalidRequest(f"{request.operation} takes {wanted} input image(s), got {len(request.inputs)}")
    if request.operation in ("generate", "edit") and not request.prompt.strip():
        raise InvalidRequest(f"{request.operation} needs a prompt")
    if request.rerolls < 0 or not math.isfinite(request.max_cost) or request.max_cost < 0:
        raise InvalidRequest(f"re-rolls and max cost must be 0 or more (got {request.rerolls}, {request.max_cost})")
    prompt = request.prompt
    if model.provider == "phota":
        local, external, prompt = _phota_subjects(request, links or default_links())
    else:
        if not request.profiles:
            raise InvalidRequest("no profile given: a closed-model request carries at least one person's profile")
        local, external = request_subjects(request.prompt, request.profiles, request.candidates), []
    limits = provider_facts(model.provider).inputs
    references: list[list[np.ndarray]] = []
    if model.provider != "phota":
        budget = model.max_input_images - len(request.inputs)
        shares = refs.shares(len(local), budget, model.name, model.max_input_images, len(request.inputs))
        poses = input_poses(request.inputs[0], local, engine) if request.operation == "edit" else {}
        references = [[best_portrait(p, k) for k in refs.choose(p, n, poses.get(p.id))] for p, n in zip(local, shares)]
    count = len(request.inputs) + sum(len(r) for r in references)
    share = limits.get("max_request_bytes", math.inf) * 0.7 / max(count, 1)  # base64 and JSON overhead
    inputs = [sizes.fit(image, limits, share) for image in request.inputs]
    encoded = [[sizes.fit(portrait, limits, share, lossless=False) for portrait in group] for group in references]
    pixels = sum(math.prod(Image.open(io.BytesIO(b)).size) for b in inputs + [b for g in encoded for b in g])
    credentials = keys.credentials(model.provider)
    return Plan(
        request,
        model,
        resolution,
        local,
        external,
        encoded,
        inputs,
        credentials,
        prompt,
        sizes.ratio_of(request.aspect_ratio, request.inputs),
        pixels,
    )


def _phota_subjects(request: RemoteRequest, links: PhotaLinks) -> tuple[list[Profile], list[str], str]:
    """Phota knows only its own profiles: each local person goes as the Phota profile it is linked to (refused
    before any call when unlinked); a reference that is no local profile passes through as a Phota id."""
    linked = links.all()
    local, as_sent = [], {}
    for ref in dict.fromkeys(referenced_ids(request.prompt) + list(request.candidates)):
        try:
            profile = resolve_reference(ref, request.profiles)
        except IdentityError:
            as_sent[ref] = check_phota_id(ref)
            continue
        if profile.id not in {p.id for p in local}:
            local.append(profile)
        as_sent[ref] = _linked(profile, linked)
    if not as_sent:
        local = list(request.profiles)
    external = list(dict.fromkeys([_linked(p, linked) for p in local] + list(as_sent.values())))
    prompt = PROFILE_REF.sub(lambda m: f"[[{as_sent.get(m.group(1), m.group(1))}]]", request.prompt)
    return local, external, prompt


def _linked(profile: Profile, linked: dict[str, str]) -> str:
    """The Phota id `profile` is linked to (`linked`: the links file's contents, read once per plan)."""
    phota_id = linked.get(profile.id)
    if phota_id is None:
        raise InvalidRequest(
            f"profile {profile.name!r} is not linked to a Phota profile, and Phota knows only its own: create one with "
            f"Phota (POST /v1/phota/profiles/add) and link it in ComfyUI's Identity panel (the profile's details) or "
            f"with `python -m identity phota-link {profile.id} PHOTA_PROFILE_ID`, or pick a base model without phota/"
        )
    return phota_id


class Execution:
    """One run of a plan: calls, outputs, spending and the report, with progress pushed to `progress`."""

    def __init__(
        self,
        plan: Plan,
        engine: FaceEngine,
        policy: Policy,
        progress: Callable[[float, str], None],
        check: Callable[[], None],
        pet_engine: Callable | None = None,
    ):
        self.plan, self.engine, self.policy, self.pet_engine = plan, engine, policy, pet_engine
        self.progress, self.check = progress, check
        self.outputs: list[Output] = []
        self.failures: list[dict] = []
        self.retries: list[dict] = []
        self.cost = 0.0
        self.cost_estimated = False
        self.provider_cost: list[dict] = []
        self.notices: list[str] = []  # the provider says the model is deprecated: each once, with the fix
        self.started = time.monotonic()
        self.status = "starting"
        self.stopped: BaseException | None = None  # the one record of a stop: every call checks it

    def _check(self) -> None:
        """Raise the stop, if any: what `check` raised, or what the progress hook raised (ComfyUI raises its
        interrupt from there, a BaseException since v0.20, and clears it as it does: so it is kept, and stops
        every call in flight, not only the first to ask)."""
        if self.stopped is not None:
            raise self.stopped
        try:
            self.check()
        except BaseException as exc:
            self.stopped = exc
            raise

    def _report_progress(self, fraction: float, text: str) -> None:
        try:
            self.progress(fraction, text)
        except BaseException as exc:  # raised on the ticker task, where nothing would see it: kept for `_check`
            self.stopped = exc

    async def run(self) -> RemoteResult:
        """The outputs, best first; whatever `check` raises stops every call in flight and comes out of here."""
        request = self.plan.request
        ticker = asyncio.create_task(self._tick())
        try:
            async with httpx.AsyncClient(follow_redirects=False) as client:  # Transport follows them, keys stay home
                await self._round(client, request.outputs, 0)
                rerolls, attempt, stopped = 0, 0, ""
                while True:
                    passing = sum(o.check.passed for o in self.outputs)
                    if passing >= request.outputs:
                        stopped = (
                            "every subject cleared its threshold" if self.plan.subjects else "no subjects to verify"
                        )
                        break
                    more = min(request.outputs - passing, request.rerolls - rerolls)
                    if more <= 0:
                        stopped = "re-roll budget used" if request.rerolls else "no re-rolls allowed"
                        break
                    next_cost = self.plan.estimate(more) or 0.0
                    if request.max_cost and self.cost + next_cost > request.max_cost:
                        stopped = f"cost budget reached (${self.cost:.3f} spent, ${request.max_cost:.2f} allowed)"
                        break
                    rerolls += more
                    attempt += 1
                    await self._round(client, more, attempt)
        finally:
            ticker.cancel()
        if not self.outputs:
            raise self._first_error()
        ranked = sorted(self.outputs, key=lambda o: (o.check.passed, o.check.weakest), reverse=True)[: request.outputs]
        self._report_progress(1.0, self._status_line("done"))
        return RemoteResult(
            [o.image for o in ranked],
            [round(o.check.weakest, 4) for o in ranked],
            self._report(ranked, rerolls, stopped),
        )

    async def _round(self, client: httpx.AsyncClient, count: int, attempt: int) -> None:
        per_call = self.plan.model.max_outputs_per_request
        sizes = [min(per_call, count - i * per_call) for i in range(math.ceil(count / per_call))]
        self.status = f"{'re-roll ' + str(attempt) + ': ' if attempt else ''}waiting for {count} image(s) from {self.plan.model.name}"
        results = await asyncio.gather(*(self._call(client, n, attempt) for n in sizes), return_exceptions=True)
        for result in results:
            if isinstance(result, (Cancelled, asyncio.CancelledError)):
                raise result
            if isinstance(result, BaseException) and not isinstance(result, IdentityError):
                raise result
        generated = [(g, attempt) for result in results if not isinstance(result, BaseException) for g in result]
        for result in results:
            if isinstance(result, IdentityError):
                self.failures.append(_failure(result, attempt))
        self.status = f"verifying {len(generated)} image(s)"
        decoded = []
        for item, attempt_number in generated:
            self._spend(item)
            try:
                decoded.append((load_image(item.image), item, attempt_number))
            except ImageError as exc:
                self.failures.append(
                    {
                        "attempt": attempt_number,
                        "error": f"{self.plan.model.provider} returned image "
                        f"data that cannot be decoded ({exc.reason})",
                        "request_id": item.request_id,
                    }
                )
        checks = await asyncio.to_thread(
            check_outputs,
            [d[0] for d in decoded],
            self.plan.subjects,
            self.engine,
            self.pet_engine,
            self.plan.known(),
        )
        self.outputs += [Output(image, check, n, item.request_id) for (image, item, n), check in zip(decoded, checks)]

    async def _call(self, client: httpx.AsyncClient, outputs: int, attempt: int) -> list[Generated]:
        provider = self.plan.model.provider
        transport = Transport(provider, client, self.policy, self._check, self.retries)
        call = self.plan.call(outputs, attempt)
        # Providers read answers through `body`/`member`, which turn any shape into a ProviderError; anything
        # else raised here is a bug of this pack and keeps its traceback.
        return await PROVIDERS[provider].run(call, transport, self.plan.credentials)

    def _spend(self, item: Generated) -> None:
        if item.notice and item.notice not in self.notices:
            self.notices.append(item.notice)
            log.warning("%s", item.notice)
        if item.provider_cost:
            self.provider_cost.append(item.provider_cost)
        if item.cost_usd is not None:
            self.cost += item.cost_usd
            return
        estimate = self.plan.estimate(1)
        if estimate is not None:
            self.cost += estimate
            self.cost_estimated = True

    def _first_error(self) -> IdentityError:
        first = self.failures[0] if self.failures else {"error": "no image came back"}
        error = first.get("exception")
        return error if isinstance(error, IdentityError) else ProviderError(first["error"], self.plan.model.provider)

    def _status_line(self, status: str) -> str:
        cost = f"${self.cost:.3f}{' (estimated)' if self.cost_estimated else ''}"
        return f"{status}\nTime elapsed: {time.monotonic() - self.started:.0f} s\nCost so far: {cost}"

    async def _tick(self) -> None:
        wanted = max(self.plan.request.outputs, 1)
        while True:
            passing = sum(o.check.passed for o in self.outputs)
            self._report_progress(min(0.95, passing / wanted), self._status_line(self.status))
            await asyncio.sleep(1.0)

    def _report(self, ranked: list[Output], rerolls: int, stopped: str) -> dict:
        return _scrubbed(self._fields(ranked, rerolls, stopped))  # nothing in it may carry a key

    def _fields(self, ranked: list[Output], rerolls: int, stopped: str) -> dict:
        plan, request = self.plan, self.plan.request
        return {
            "operation": request.operation,
            "model": plan.model.name,
            "provider": plan.model.provider,
            "resolution": plan.resolution,
            "aspect_ratio": request.aspect_ratio,
            "quality": request.quality,
            "subjects": {p.id: p.name for p in plan.subjects},
            "provider_profiles": plan.external_ids,
            "references": {p.id: len(r) for p, r in zip(plan.subjects, plan.references)},
            "outputs": [
                {
                    "rank": rank,
                    "attempt": o.attempt,
                    "request_id": o.request_id,
                    "passed": o.check.passed,
                    "weakest": round(o.check.weakest, 4),
                    "faces": o.check.faces,
                    "scores": {k: round(v, 4) for k, v in o.check.scores.items()},
                    "checked": o.check.checked,
                    "next": o.check.nearest,
                }
                for rank, o in enumerate(ranked, 1)
            ],
            "images_received": len(self.outputs),
            "rerolls": rerolls,
            "stopped": stopped,
            "failures": [{k: v for k, v in f.items() if k != "exception"} for f in self.failures],
            "retries": self.retries,
            "cost_usd": round(self.cost, 4),
            "cost_estimated": self.cost_estimated,
            "provider_cost": self.provider_cost,
            "notices": self.notices,
            "elapsed_s": round(time.monotonic() - self.started, 2),
        }


def _scrubbed(value):
    """`value` with every string in it scrubbed of keys (each string on its own: JSON syntax is never touched)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(str(k)): _scrubbed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrubbed(v) for v in value]
    return value


def _failure(error: IdentityError, attempt: int) -> dict:
    entry = {"attempt": attempt, "error": str(error), "kind": type(error).__name__, "exception": error}
    if isinstance(error, ProviderError):
        entry.update(status=error.status, request_id=error.request_id)
    return entry


async def execute(
    plan: Plan,
    engine: FaceEngine,
    policy: Policy | None = None,
    progress: Callable[[float, str], None] | None = None,
    check: Callable[[], None] | None = None,
    pet_engine: Callable | None = None,
) -> RemoteResult:
    """Run a plan; `check()` is called while waiting and may raise to stop (as `training.train` takes it).
    `pet_engine()` gives the engine that verifies cat and dog subjects (default: the models folder's)."""
    return await Execution(
        plan, engine, policy or Policy(), progress or (lambda f, t: None), check or (lambda: None), pet_engine
    ).run()


def run(request: RemoteRequest, keys: KeyStore, engine: FaceEngine, **options) -> RemoteResult:
    """Plan and execute in a fresh event loop (CLI, scripts, tests); nodes await `execute` instead."""
    return asyncio.run(execute(plan(request, keys, engine), engine, **options))
