"""HTTP for the providers: retries, timeouts per provider and operation, polling, redirects, cancellation.

One `Transport` per request of the layer. It retries 408/429/5xx and connections that failed before the
request went out, waits what a `Retry-After` asks (within reason), and stops at once when the user interrupts.
A paid generation is never silently sent twice: after a read timeout or a connection dropped once the request
was sent, it is re-sent only where the provider documents an idempotency key (and the caller sent one);
otherwise the error says it may have been charged. Redirects are followed by hand: a GET that leaves the origin
loses every credential header (httpx itself strips only `Authorization`), and a request with a body (photos) is
not sent to another origin at all. httpx's own log lines lose any key or URL user-info before they are written.

Every answer is read within a byte budget (counted after decompression, so a gzip bomb is refused as it
inflates, not after) and within a deadline for the whole request: a read timeout alone lets a server that
trickles a byte now and then hold a call open for ever.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpcore  # noqa: F401  (imported here so that its loggers exist when they get their filters)
import httpx

from ..errors import ProviderError
from .keys import origin as origin_of
from .keys import scrub
from .models import ProviderFacts, provider_facts

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
#: Headers that carry a provider credential: dropped whenever a redirect leaves the origin.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-goog-api-key", "x-key", "x-api-key", "cookie"}
)
#: Failures after which the provider may have received the whole request (and may charge for it).
AFTER_SEND = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)
#: Headers about the encoded body, dropped from an answer once it is read and decoded.
_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
_TICK = 0.2  # seconds between interrupt checks
_MIB = 1024 * 1024
#: Largest answer read, per kind of request, after decompression: four 4K PNGs in base64 JSON fit a generate
#: answer; a poll answer is a few hundred bytes of JSON.
ANSWER_BYTES = {"generate": 256 * _MIB, "download": 64 * _MIB, "poll": 4 * _MIB}


class ScrubbedLog(logging.Filter):
    """Blanks keys and URL user-info in the log records of the HTTP libraries (httpx logs every URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def scrub_http_logs() -> None:
    """A `ScrubbedLog` on every logger of the HTTP libraries. Each logger needs its own: a logger's filters see only
    the records logged to it, not those of its children (`httpcore.http11` logs the headers an answer echoes)."""
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in ("httpx", "httpcore")]
    for name in {"httpx", "httpcore", *names}:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ScrubbedLog) for f in logger.filters):
            logger.addFilter(ScrubbedLog())


scrub_http_logs()


@dataclass(frozen=True)
class Policy:
    attempts: int = 4  # tries per HTTP request, the first included
    base_delay: float = 1.0  # backoff: base_delay × 2^(try-1), jittered, capped by max_delay
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # a longer Retry-After is not waited out: the request fails instead
    read_timeout: float | None = None  # one read timeout for every operation; None: the provider's own (models.json)
    poll_interval: float = 2.0
    poll_budget: float | None = None  # seconds an asynchronous job may take; None: the provider's own
    deadline: float | None = None  # seconds one whole request may take; None: the provider's timeout for it
    max_answer_bytes: int | None = None  # the largest answer read; None: ANSWER_BYTES for the kind of request


class MayHaveBeenCharged(ProviderError):
    """A paid request went out and no answer came back; it was not re-sent, because that could charge twice."""


@dataclass
class Transport:
    provider: str
    client: httpx.AsyncClient
    policy: Policy = field(default_factory=Policy)
    check: Callable[[], None] = lambda: None  # raises to stop (the user cancelled); called every few tenths of a second
    retries: list = field(default_factory=list)  # {"status"|"error", "waited_s"} per retry, for the report
    facts: ProviderFacts | None = None

    def __post_init__(self):
        self.facts = self.facts or provider_facts(self.provider)

    def timeout(self, kind: str) -> httpx.Timeout:
        """`kind`: generate (the paid call), poll, download."""
        timeouts = self.facts.timeouts
        read = self.policy.read_timeout or timeouts.get(kind) or timeouts["generate"]
        return httpx.Timeout(read, connect=timeouts["connect"])

    def deadline(self, kind: str) -> float:
        """Seconds the whole request (connect, send, every read) may take: the provider's documented timeout."""
        timeouts = self.facts.timeouts
        return self.policy.deadline or timeouts.get(kind) or timeouts["generate"]

    async def request(
        self,
        method: str,
        url: str,
        *,
        kind: str = "generate",
        paid: bool = False,
        idempotent: bool = False,
        request_id: str | None = None,
        **kwargs,
    ) -> httpx.Response:
        """The provider's final answer, after retrying what is safe to retry; raises on transport failure.

        `paid`: this request may be charged; `idempotent`: it carries the provider's idempotency key, so a
        re-send returns the original job; `request_id`: ours, named in a "may have been charged" error.
        """
        timeout, deadline = self.timeout(kind), self.deadline(kind)
        budget = self.policy.max_answer_bytes or ANSWER_BYTES.get(kind, ANSWER_BYTES["generate"])
        for attempt in range(1, self.policy.attempts + 1):
            try:
                response = await self.wait_for(
                    asyncio.wait_for(self._follow(method, url, timeout, budget, paid, request_id, **kwargs), deadline)
                )
            except (httpx.TransportError, asyncio.TimeoutError) as exc:
                sent = isinstance(exc, (*AFTER_SEND, asyncio.TimeoutError))
                problem = (
                    f"took longer than {deadline:g} s"
                    if isinstance(exc, asyncio.TimeoutError)
                    else f"timed out after {timeout.read:.0f} s"
                    if isinstance(exc, httpx.ReadTimeout)
                    else "timed out"
                    if isinstance(exc, httpx.TimeoutException)
                    else f"connection failed ({type(exc).__name__})"
                )
                if sent and paid and not idempotent:
                    raise MayHaveBeenCharged(
                        f"{self.provider} {problem} once the request was sent; it may have been charged, so it was not "
                        f"sent again (request id {request_id or 'none'}): check the provider's dashboard before retrying",
                        self.provider,
                        None,
                        request_id,
                    ) from None
                if attempt == self.policy.attempts:
                    raise ProviderError(
                        f"{self.provider} {problem} on each of {attempt} attempts; try again later",
                        self.provider,
                        None,
                        request_id,
                    ) from None
                await self._pause({"error": problem}, self._backoff(attempt))
                continue
            if response.status_code == 504 and paid and not idempotent and not self.facts.refunds_gateway_timeouts:
                # A gateway timeout: the provider may still finish, and charge, the first one. Said here, where the
                # request id is known, whatever the body (gateways answer with HTML).
                raise MayHaveBeenCharged(
                    f"{gateway_timeout(self.provider)}, so it was not sent again (request id {request_id or 'none'}): "
                    "check the provider's dashboard before retrying",
                    self.provider,
                    504,
                    request_id,
                )
            if self.should_retry(response) and attempt < self.policy.attempts:
                wait = retry_after(response)
                if wait is not None and wait > self.policy.max_retry_after:
                    return response  # the caller reports the rate limit with the time the provider asked for
                await self._pause({"status": response.status_code}, self._backoff(attempt) if wait is None else wait)
                continue
            return response
        raise AssertionError("unreachable")

    def should_retry(self, response: httpx.Response) -> bool:
        """The provider's own rule: a header that says whether to (OpenAI's servers do), else the statuses it
        documents as passing."""
        said = response.headers.get(self.facts.retry_header) if self.facts.retry_header else None
        if said in ("true", "false"):
            return said == "true"
        return response.status_code in self.facts.retry_statuses

    async def _follow(
        self,
        method: str,
        url: str,
        timeout: httpx.Timeout,
        budget: int,
        paid: bool,
        request_id: str | None,
        headers: dict | None = None,
        **kwargs,
    ) -> httpx.Response:
        """Send, following redirects by hand: a hop to another origin loses every credential header."""
        headers = dict(headers or {})
        origin = origin_of(url)
        for _ in range(MAX_REDIRECTS + 1):
            request = self.client.build_request(method, url, headers=headers, timeout=timeout, **kwargs)
            response = await self.client.send(request, stream=True, follow_redirects=False)
            location = response.headers.get("location")
            if response.status_code not in REDIRECTS or not location:
                return await self._read(response, budget, paid, request_id)
            await response.aclose()
            target = response.url.join(location)
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, kwargs = (
                    "GET",
                    {k: v for k, v in kwargs.items() if k not in ("json", "data", "files", "content")},
                )
            if origin_of(target) != origin:
                if method != "GET":
                    raise ProviderError(
                        f"{self.provider} redirected the request to another origin ({target.host}); "
                        "not followed, so that neither the key nor the photos go there",
                        self.provider,
                    )
                headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
            url = str(target)
        raise ProviderError(f"{self.provider} redirected more than {MAX_REDIRECTS} times", self.provider)

    async def _read(self, response: httpx.Response, budget: int, paid: bool, request_id: str | None) -> httpx.Response:
        """The answer read whole, within `budget` bytes as decoded (the count stops a compressed bomb early)."""
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > budget or response.num_bytes_downloaded > budget:
                    raise self._unusable(f"sent an answer larger than {budget / _MIB:.0f} MB", paid, request_id)
        except httpx.DecodingError:
            encoding = response.headers.get("content-encoding", "")
            raise self._unusable(
                f"sent an answer that cannot be decompressed (Content-Encoding {encoding!r})", paid, request_id
            ) from None
        finally:
            await response.aclose()
        decoded = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS]
        return httpx.Response(response.status_code, headers=decoded, content=bytes(body), request=response.request)

    def _unusable(self, problem: str, paid: bool, request_id: str | None) -> ProviderError:
        """An answer that came but cannot be used; after a paid request it may still have been charged."""
        charged = "; it may have been charged, check the provider's dashboard before retrying" if paid else ""
        kind = MayHaveBeenCharged if paid else ProviderError
        return kind(
            f"{self.provider} {problem}, so it was not read (request id {request_id or 'none'}){charged}",
            self.provider,
            None,
            request_id,
        )

    async def poll(self, url: str, check: Callable[[httpx.Response], Awaitable[object] | object], **kwargs):
        """GET `url` until `check(response)` returns something other than None (or raises), within the budget."""
        budget = self.policy.poll_budget or self.facts.timeouts.get("job", 600)
        deadline = time.monotonic() + budget
        while True:
            result = check(await self.request("GET", url, kind="poll", **kwargs))
            if asyncio.iscoroutine(result):
                result = await result
            if result is not None:
                return result
            if time.monotonic() > deadline:
                raise ProviderError(f"{self.provider} did not finish the job within {budget:.0f} s", self.provider)
            await self.sleep(self.policy.poll_interval)

    async def wait_for(self, awaitable):
        """Await, calling `check` every few tenths of a second; what it raises cancels the request."""
        task = asyncio.ensure_future(awaitable)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=_TICK)
                if done:
                    return task.result()
                self.check()
        finally:
            if not task.done():
                task.cancel()

    async def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.check()
            await asyncio.sleep(min(_TICK, left))

    async def _pause(self, what: dict, seconds: float) -> None:
        self.retries.append({**what, "waited_s": round(seconds, 2)})
        await self.sleep(seconds)

    def _backoff(self, attempt: int) -> float:
        return min(self.policy.max_delay, self.policy.base_delay * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)


def gateway_timeout(provider: str) -> str:
    """What an HTTP 504 means for the user's money, as the provider documents it."""
    if provider_facts(provider).refunds_gateway_timeouts:
        return f"{provider} timed out (HTTP 504); it refunds requests that time out, so nothing was charged"
    return f"{provider}'s gateway timed out (HTTP 504); the request may still have been charged"


def retry_after(response: httpx.Response) -> float | None:
    """Seconds asked for by `Retry-After` (seconds or an HTTP date) or `retry-after-ms`; None when absent."""
    milliseconds = response.headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000.0)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
