"""Provider faults over real HTTP: retries honour Retry-After, timeouts, moderation, malformed answers, interrupts."""

from __future__ import annotations

import threading
import time
import types

import pytest
from conftest import FAST, face

from identity.errors import Cancelled, ModerationRefused, ProviderError
from identity.images import load_image
from identity.remote.http import Policy
from identity.remote.keys import KeyStore
from identity.remote.phota_links import PhotaLinks
from identity.remote.runner import RemoteRequest, execute, plan, run


@pytest.fixture(autouse=True)
def obama_linked_on_phota(fake, keys, people, tmp_path):
    """Short stalls, and Obama linked to a Phota profile in the test's user folder (the `keys` fixture's)."""
    fake.stall_seconds = 2.0
    fake.phota_profiles["ph0bama"] = "READY"
    PhotaLinks(tmp_path / "phota_links.json").link(people["Barack Obama"].id, "ph0bama")


def request(people, model="nb2", operation="generate", **extra) -> RemoteRequest:
    inputs = {"generate": [], "edit": [load_image(face("groups/obama_biden_a.jpg"))]}[operation]
    return RemoteRequest(
        operation=operation,
        model=model,
        profiles=list(people.values()),
        prompt="[[barack-obama]] in the rain",
        inputs=inputs,
        **extra,
    )


def test_429_waits_what_retry_after_asks(fake, keys, people, embedded):
    fake.faults = ["429"]
    started = time.monotonic()
    result = run(request(people), keys, embedded, policy=FAST)
    assert time.monotonic() - started >= 1.0, "Retry-After: 1 was honoured, not the 0.05 s backoff"
    assert result.report["retries"] == [{"status": 429, "waited_s": 1.0}]
    assert result.report["outputs"][0]["passed"]


def test_a_retry_after_longer_than_allowed_fails_at_once_with_the_reason(fake, keys, people, embedded):
    fake.faults = ["429long"]
    with pytest.raises(ProviderError, match=r"rate-limiting requests \(HTTP 429\)"):
        run(request(people), keys, embedded, policy=FAST)
    assert len(fake.posts("gemini")) == 1


def test_server_errors_are_retried_then_reported(fake, keys, people, embedded):
    fake.faults = ["500", "503"]
    result = run(request(people), keys, embedded, policy=FAST)
    assert [r["status"] for r in result.report["retries"]] == [500, 503]
    fake.reset(faults=["503"] * 3)
    with pytest.raises(ProviderError, match=r"server error \(HTTP 503\) on every retry"):
        run(request(people), keys, embedded, policy=FAST)
    assert len(fake.posts("gemini")) == 3


def test_connections_that_never_reached_the_provider_are_retried_and_then_named(fake, keys, people, embedded):
    dead = KeyStore(None, environ={"GEMINI_API_KEY": "k" * 20, "IDENTITY_GEMINI_BASE_URL": "http://127.0.0.1:9"})
    with pytest.raises(ProviderError, match=r"gemini connection failed \(ConnectError\) on each of 3 attempts"):
        run(request(people), dead, embedded, policy=FAST)


def test_a_slow_body_that_keeps_coming_is_not_a_timeout(fake, keys, people, embedded):
    fake.faults = ["slow"]  # 12 pieces 0.25 s apart: 3 s in all, longer than the 2 s read timeout
    result = run(request(people), keys, embedded, policy=Policy(base_delay=0.05, read_timeout=2.0, attempts=3))
    assert result.report["retries"] == [] and result.report["outputs"][0]["passed"]


@pytest.mark.parametrize(
    "model,operation",
    [
        ("nb2", "generate"),
        ("gpt-image-2", "edit"),
        ("qwen-image-2", "generate"),
        ("flux-2", "generate"),
        ("reve", "generate"),
        ("phota/nb2", "generate"),
    ],
)
def test_moderation_refusals_are_recognised_in_each_providers_style(fake, keys, people, embedded, model, operation):
    fake.faults = ["moderation"]
    with pytest.raises(ModerationRefused, match="refused the request on content grounds"):
        run(request(people, model, operation), keys, embedded, policy=FAST)
    provider = model.split("/")[0] if "/" not in model else "phota"
    provider = {"nb2": "gemini", "gpt-image-2": "openai", "qwen-image-2": "dashscope", "flux-2": "bfl"}.get(
        provider, provider
    )
    assert len(fake.posts(provider)) == 1, "a refusal is not retried"


def test_malformed_json_is_a_clear_error(fake, keys, people, embedded):
    fake.faults = ["malformed"]
    with pytest.raises(ProviderError, match="gemini answered HTTP 200 with a body that is not JSON"):
        run(request(people), keys, embedded, policy=FAST)


def test_gemini_without_an_image_says_why(fake, keys, people, embedded):
    fake.faults = ["no_image"]
    with pytest.raises(ProviderError, match=r"no image returned \(finishReason NO_IMAGE\)"):
        run(request(people), keys, embedded, policy=FAST)


def test_wrong_image_bytes_count_as_a_failed_output_and_are_re_rolled(fake, keys, people, embedded):
    fake.faults = ["bad_image"]
    result = run(request(people, rerolls=1), keys, embedded, policy=FAST)
    assert "cannot be decoded" in result.report["failures"][0]["error"]
    assert result.report["outputs"][0]["attempt"] == 1 and result.report["outputs"][0]["passed"]


def test_an_interrupt_stops_a_waiting_request_at_once(fake, keys, people, embedded):
    fake.faults = ["timeout"]
    fake.stall_seconds = 5.0
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    import asyncio

    def check():
        if stop.is_set():
            raise Cancelled("stopped by the user")

    planned = plan(request(people), keys, embedded)
    with pytest.raises(Cancelled):
        asyncio.run(execute(planned, embedded, Policy(read_timeout=10), check=check))
    assert time.monotonic() - started < 2.0


def test_an_interrupt_raised_once_stops_every_call_in_flight(fake, keys, people, embedded):
    import asyncio

    fake.faults = ["timeout", "timeout"]
    fake.stall_seconds = 5.0
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()

    def check():  # as ComfyUI's: raising the interrupt clears it, so only the first caller would see it
        if stop.is_set():
            stop.clear()
            raise Cancelled("stopped by the user")

    planned = plan(request(people, outputs=2), keys, embedded)  # nb2 returns one image per call: two calls
    started = time.monotonic()
    with pytest.raises(Cancelled):
        asyncio.run(execute(planned, embedded, Policy(read_timeout=10), check=check))
    assert time.monotonic() - started < 2.0, "the second call was waited out"


def test_requests_for_several_outputs_run_concurrently(fake, keys, people, embedded):
    fake.reset(delay=0.3)
    result = run(request(people, outputs=4), keys, embedded, policy=Policy(base_delay=0.05, read_timeout=10))
    assert len(result.images) == 4 and fake.max_in_flight == 4, result.report["failures"]


@pytest.mark.parametrize(
    "model,fault,says",
    [
        ("nb2", "error_string", r"gemini rejected the request \(HTTP 400\): request body is malformed"),
        ("nb2", "inline_no_data", "image parts without data"),
        ("gpt-image-2", "error_string", r"openai rejected the request \(HTTP 400\): Something went wrong"),
        ("nb2", "json_list", "JSON that is not an object"),
        ("qwen-image-2", "json_list", "JSON that is not an object"),
    ],
)
def test_answers_of_unexpected_types_give_one_sentence_not_a_traceback(
    fake, keys, people, embedded, model, fault, says
):
    fake.faults = [fault]
    with pytest.raises(ProviderError, match=says) as error:
        run(request(people, model), keys, embedded, policy=FAST)
    assert "\n" not in str(error.value) and error.value.__cause__ is None


def test_dashscope_moderation_is_recognised_under_its_longer_codes(fake, keys, people, embedded):
    fake.faults = ["moderation_algo"]
    with pytest.raises(ModerationRefused, match="InternalError.Algo.DataInspectionFailed"):
        run(request(people, "qwen-image-2"), keys, embedded, policy=FAST)
    assert len(fake.posts("dashscope")) == 1, "a refusal is not retried"


@pytest.mark.parametrize("fault,status", [("bfl_error", "Error"), ("task_not_found", "Task not found")])
def test_a_bfl_job_that_ends_in_error_names_the_status_and_the_request_id(fake, keys, people, embedded, fault, status):
    fake.faults = [fault]
    with pytest.raises(
        ProviderError, match=rf"job ended with status '{status}' \(request id [0-9a-f]{{32}}\)"
    ) as error:
        run(request(people, "flux-2"), keys, embedded, policy=FAST)
    assert error.value.request_id and len(fake.posts("bfl")) == 1, "ended, not re-sent (that would charge again)"
    polls = [r for r in fake.received("bfl") if r.path.startswith("/v1/get_result")]
    assert len(polls) == 4, "Pending, Reasoning, Generating were waited through; the fourth answer ended it"


def test_gemini_thought_parts_are_drafts_not_the_answer(fake, keys, people, embedded):
    fake.faults = ["thought"]  # a draft of a stranger comes first, marked thought: true
    result = run(request(people), keys, embedded, policy=FAST)
    assert result.report["outputs"][0]["passed"] and result.report["images_received"] == 1


def test_a_bfl_poll_answer_without_status_fails_at_once(fake, keys, people, embedded):
    fake.faults = ["no_status"]
    started = time.monotonic()
    with pytest.raises(ProviderError, match="no status, which BFL does not document"):
        run(
            request(people, "flux-2"), keys, embedded, policy=Policy(base_delay=0.05, poll_interval=0.05, poll_budget=5)
        )
    assert time.monotonic() - started < 3, "not polled until the budget ran out"


def test_a_bug_in_a_provider_adapter_keeps_its_own_error_and_traceback(fake, keys, people, embedded, monkeypatch):
    """Only answers are read defensively (`body`/`member`); a KeyError of the pack's own code is not passed off as
    "the provider answered in a shape this layer does not understand"."""
    from identity.remote import providers

    async def broken(call, transport, credentials):
        return {}["a key the adapter forgot"]

    monkeypatch.setitem(providers.PROVIDERS, "gemini", types.SimpleNamespace(run=broken))
    with pytest.raises(KeyError, match="a key the adapter forgot") as error:
        run(request(people, "nb2"), keys, embedded, policy=FAST)
    assert "broken" in "".join(str(entry.name) for entry in error.traceback)
