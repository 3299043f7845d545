"""Paid calls are never silently duplicated: timeouts sized per provider and operation; after a read timeout or a
connection dropped once the request was sent, no re-send unless the provider documents an idempotency key
(Phota's `client_request_id`); otherwise a "may have been charged" error with the request id."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import FAST, face, needs_faces

from identity.errors import ProviderError
from identity.images import load_image
from identity.remote.http import MayHaveBeenCharged, Policy, Transport
from identity.remote.phota_links import PhotaLinks
from identity.remote.runner import RemoteRequest, run

SHORT = replace(FAST, read_timeout=1.0)  # a stalled answer (2 s) outlasts the read timeout


@pytest.fixture(autouse=True)
def stalls_outlast_the_read_timeout(fake, keys):
    fake.stall_seconds = 2.0


def test_generation_timeouts_follow_each_providers_documented_latency():
    openai = pytest.importorskip("openai", reason="the OpenAI SDK is a test dependency")
    transport = lambda provider: Transport(provider, None, Policy())  # no request is sent
    assert transport("openai").timeout("generate").read >= openai.DEFAULT_TIMEOUT.read == 600, (
        "as long as the SDK waits"
    )
    assert transport("gemini").timeout("generate").read > 180 and transport("dashscope").timeout("generate").read >= 300
    assert transport("bfl").timeout("generate").read < transport("bfl").timeout("download").read, (
        "submit answers at once"
    )
    assert transport("phota").timeout("poll").read == 30


@needs_faces
@pytest.mark.parametrize("model,fault", [("nb2", "timeout"), ("gpt-image-2", "drop"), ("flux-2", "drop")])
def test_a_paid_call_without_an_answer_is_not_sent_again(fake, keys, people, embedded, model, fault):
    fake.faults = [fault]
    request = RemoteRequest(
        operation="generate", model=model, profiles=[people["Barack Obama"]], prompt="[[barack-obama]] in the rain"
    )
    with pytest.raises(
        MayHaveBeenCharged, match=r"may have been charged, so it was not sent again \(request id [0-9a-f]{32}\)"
    ):
        run(request, keys, embedded, policy=SHORT)
    provider = {"nb2": "gemini", "gpt-image-2": "openai", "flux-2": "bfl"}[model]
    assert len(fake.posts(provider)) == 1, "one paid request, whatever happened to its answer"


@needs_faces
def test_a_gateway_timeout_on_a_paid_call_is_not_re_sent(fake, keys, people, embedded):
    fake.faults = ["timeout"]  # the fake answers 504 after stalling; here the client waits long enough to see it
    request = RemoteRequest(
        operation="generate",
        model="gpt-image-2",
        profiles=[people["Barack Obama"]],
        prompt="[[barack-obama]] in the rain",
    )
    with pytest.raises(ProviderError, match=r"gateway timed out \(HTTP 504\); the request may still have been charged"):
        run(request, keys, embedded, policy=Policy(base_delay=0.05, read_timeout=10))
    assert len(fake.posts("openai")) == 1


def phota_edit(fake, people, folder) -> RemoteRequest:
    """An edit of Obama on Phota, his local profile linked to Phota's READY `ph0bama`."""
    fake.phota_profiles["ph0bama"] = "READY"
    PhotaLinks(folder / "phota_links.json").link(people["Barack Obama"].id, "ph0bama")
    return RemoteRequest(
        operation="edit",
        model="phota/nb2",
        profiles=[people["Barack Obama"]],
        prompt="[[barack-obama]] with a hat",
        inputs=[load_image(face("obama/obama1.jpg"))],
    )


@needs_faces
def test_phota_is_re_sent_with_its_idempotency_key_and_charges_once(fake, keys, people, embedded, tmp_path):
    request = phota_edit(fake, people, tmp_path)
    fake.faults = ["timeout_after_accept"]  # the job is created, but its 202 arrives after the client gave up
    result = run(request, keys, embedded, policy=SHORT)
    submits = fake.posts("phota")
    assert len(submits) == 2 and submits[0].json["client_request_id"] == submits[1].json["client_request_id"]
    assert fake.charged == 1, "the re-send returned the original job"
    assert result.report["retries"][0]["error"].startswith("timed out") and len(result.images) == 1


@needs_faces
def test_a_phota_timeout_says_it_was_refunded(fake, keys, people, embedded, tmp_path):
    """Phota documents that a request answering 504 is not charged; other vendors' 504s may have been."""
    fake.stall_seconds = 0.1
    request = phota_edit(fake, people, tmp_path)
    fake.faults = ["timeout"] * FAST.attempts
    with pytest.raises(
        ProviderError, match=r"phota timed out \(HTTP 504\); it refunds .* nothing was charged"
    ) as error:
        run(request, keys, embedded, policy=FAST)
    assert "may" not in str(error.value) and len(fake.posts("phota")) == FAST.attempts
