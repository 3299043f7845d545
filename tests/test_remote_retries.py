"""Which answers are sent again: each provider's documented rule, checked against its own SDK where it has one."""

from __future__ import annotations

import httpx
import pytest
from conftest import FAST, needs_faces

from identity.errors import ProviderError
from identity.remote.http import Transport
from identity.remote.runner import RemoteRequest, run

STATUSES = [200, 400, 401, 404, 408, 409, 422, 429, 500, 502, 503, 504]


@pytest.mark.parametrize("header", [None, "true", "false"])
def test_openai_answers_are_retried_exactly_when_openai_python_would(header):
    """The oracle is the vendor's SDK: `BaseClient._should_retry` decides on the same status and headers."""
    openai = pytest.importorskip("openai", reason="openai-python is in requirements-test.txt")
    httpx2 = pytest.importorskip("httpx2", reason="openai-python's own HTTP library")
    sdk = openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1:9")
    ours = Transport("openai", httpx.AsyncClient())
    headers = {"x-should-retry": header} if header else {}
    for status in STATUSES:
        expected = sdk._should_retry(httpx2.Response(status, headers=headers))
        assert ours.should_retry(httpx.Response(status, headers=headers)) == expected, (status, header)


@needs_faces
def test_an_openai_lock_timeout_is_retried_and_a_server_that_says_no_is_not(fake, keys, people, embedded):
    request = RemoteRequest(
        operation="generate", model="gpt-image-2", profiles=[people["Barack Obama"]], prompt="[[barack-obama]]"
    )
    fake.faults = ["409"]
    result = run(request, keys, embedded, policy=FAST)
    assert len(fake.posts("openai")) == 2 and len(result.images) == 1
    assert result.report["retries"][0]["status"] == 409

    fake.faults = ["500_no_retry"]
    with pytest.raises(ProviderError, match=r"server error \(HTTP 500\)"):
        run(request, keys, embedded, policy=FAST)
    assert len(fake.posts("openai")) == 3, "x-should-retry: false ends the call at its first answer"
