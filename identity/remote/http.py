"""HTTP for the providers: retries with backoff that honours Retry-After, timeouts, polling, cancellation.

One `Transport` per request of the layer. It retries 408/429/5xx and dropped connections, waits what a
`Retry-After` asks (within reason), gives up with a message that says what happened, and stops at once when
the user interrupts (checked several times a second, also while waiting). Every retry is recorded for the
report. Nothing here ever logs or returns a header, so a key cannot leak from this layer.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import httpx

from ..errors import Cancelled, ProviderError

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_TICK = 0.2  # seconds between interrupt checks


@dataclass(frozen=True)
class Policy:
    attempts: int = 4  # tries per HTTP request, the first included
    base_delay: float = 1.0  # backoff: base_delay × 2^(try-1), jittered, capped by max_delay
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # a longer Retry-After is not waited out: the request fails instead
    connect_timeout: float = 10.0
    read_timeout: float = 180.0
    poll_interval: float = 2.0
    poll_budget: float = 600.0  # seconds an asynchronous job may take

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)


@dataclass
class Transport:
    provider: str
    client: httpx.AsyncClient
    policy: Policy = field(default_factory=Policy)
    cancelled: Callable[[], bool] = lambda: False
    retries: list = field(default_factory=list)  # {"status"|"error", "waited_s"} per retry, for the report

    async def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        """The provider's final answer, after retrying what is worth retrying; raises on transport failure."""
        for attempt in range(1, self.policy.attempts + 1):
            try:
                response = await self.wait_for(self.client.request(method, url, **kwargs))
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                problem = "timed out" if isinstance(exc, httpx.TimeoutException) else f"connection failed ({type(exc).__name__})"
                if attempt == self.policy.attempts:
                    raise ProviderError(f"{self.provider} {problem} on each of {attempt} attempts; try again later",
                                        self.provider) from None
                await self._pause({"error": problem}, self._backoff(attempt))
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.policy.attempts:
                wait = retry_after(response)
                if wait is not None and wait > self.policy.max_retry_after:
                    return response  # the caller reports the rate limit with the time the provider asked for
                await self._pause({"status": response.status_code}, self._backoff(attempt) if wait is None else wait)
                continue
            return response
        raise AssertionError("unreachable")

    async def poll(self, url: str, check: Callable[[httpx.Response], Awaitable[object] | object], **kwargs):
        """GET `url` until `check(response)` returns something other than None (or raises), within the budget."""
        deadline = time.monotonic() + self.policy.poll_budget
        while True:
            result = check(await self.request("GET", url, **kwargs))
            if asyncio.iscoroutine(result):
                result = await result
            if result is not None:
                return result
            if time.monotonic() > deadline:
                raise ProviderError(f"{self.provider} did not finish the job within {self.policy.poll_budget:.0f} s", self.provider)
            await self.sleep(self.policy.poll_interval)

    async def wait_for(self, awaitable):
        """Await, checking for an interrupt every few tenths of a second; an interrupt cancels the request."""
        task = asyncio.ensure_future(awaitable)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=_TICK)
                if done:
                    return task.result()
                if self.cancelled():
                    raise Cancelled(f"{self.provider} request stopped by the user")
        finally:
            if not task.done():
                task.cancel()

    async def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.cancelled():
                raise Cancelled(f"{self.provider} request stopped by the user")
            await asyncio.sleep(min(_TICK, left))

    async def _pause(self, what: dict, seconds: float) -> None:
        self.retries.append({**what, "waited_s": round(seconds, 2)})
        await self.sleep(seconds)

    def _backoff(self, attempt: int) -> float:
        return min(self.policy.max_delay, self.policy.base_delay * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)


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
