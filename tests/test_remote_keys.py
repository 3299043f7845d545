"""API keys: from the environment or the keys file, checked before any call, never shown anywhere."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import FAST, PROVIDER_MODELS
from fake_providers import KEYS

from identity.errors import MissingKey, ProviderError
from identity.remote.http import Policy
from identity.remote.keys import KeyStore
from identity.remote.runner import RemoteRequest, run


def test_a_missing_key_names_the_variable_and_the_file_before_any_call(fake, people, embedded, tmp_path):
    fake.reset()
    keys = KeyStore(tmp_path / "keys.json", environ={})
    with pytest.raises(MissingKey, match=r"set OPENAI_API_KEY in ComfyUI's environment or add it to .*keys.json"):
        run(
            RemoteRequest(
                operation="generate", model="gpt-image-2", profiles=[people["Barack Obama"]], prompt="[[barack-obama]]"
            ),
            keys,
            embedded,
        )
    with pytest.raises(MissingKey, match="GOOGLE_API_KEY or GEMINI_API_KEY"):
        KeyStore(None, environ={}).credentials("gemini")
    assert fake.requests == []


def test_google_api_key_wins_over_gemini_api_key_as_in_google_genai(monkeypatch):
    genai_client = pytest.importorskip("google.genai._api_client", reason="google-genai is a test dependency")
    both = {"GOOGLE_API_KEY": "google-key-0123456789", "GEMINI_API_KEY": "gemini-key-0123456789"}
    for name, value in both.items():
        monkeypatch.setenv(name, value)
    assert (
        KeyStore(None, environ=both).credentials("gemini").key
        == genai_client.get_env_api_key()
        == both["GOOGLE_API_KEY"]
    )


def test_environment_wins_over_the_file_and_base_urls_can_be_overridden(tmp_path):
    file = tmp_path / "keys.json"
    file.write_text(json.dumps({"OPENAI_API_KEY": "from-file", "base_urls": {"openai": "http://proxy.local/"}}))
    assert KeyStore(file, environ={}).credentials("openai").key == "from-file"
    environ = {"OPENAI_API_KEY": "from-env", "IDENTITY_OPENAI_BASE_URL": "http://127.0.0.1:9/"}
    credentials = KeyStore(file, environ=environ).credentials("openai")
    assert credentials.key == "from-env" and credentials.base_url == "http://127.0.0.1:9"
    assert "from-env" not in repr(credentials)
    file.write_text("{not json")
    with pytest.raises(MissingKey, match="not valid JSON"):
        KeyStore(file, environ={}).credentials("openai")


def test_a_key_echoed_by_the_provider_never_reaches_errors_reports_or_logs(fake, people, embedded, tmp_path, caplog):
    fake.reset()
    wrong = "sk-wrong-key-0123456789abcdef"
    keys_file = fake.keys_file(tmp_path)
    stored = json.loads(keys_file.read_text())
    stored["GEMINI_API_KEY"] = wrong
    keys_file.write_text(json.dumps(stored))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ProviderError) as error:
        run(
            RemoteRequest(
                operation="generate", model="nb2", profiles=[people["Barack Obama"]], prompt="[[barack-obama]]"
            ),
            KeyStore(keys_file, environ={}),
            embedded,
            policy=Policy(base_delay=0.05),
        )
    assert "rejected the API key (HTTP 401)" in str(error.value) and "GEMINI_API_KEY" in str(error.value)
    assert wrong not in str(error.value) and "[redacted]" in str(error.value)
    assert wrong not in caplog.text
    fake.reset()
    result = run(
        RemoteRequest(operation="generate", model="nb2", profiles=[people["Barack Obama"]], prompt="[[barack-obama]]"),
        KeyStore(fake.keys_file(tmp_path), environ={}),
        embedded,
    )
    assert KEYS["gemini"] not in json.dumps(result.report)


# ----- hostile providers and proxies (issue 11, item 1) ------------------------------------------------------

from identity.remote.phota_links import PhotaLinks  # noqa: E402


def fragments(key: str) -> list[str]:
    """Every 10-character piece of a key: a key cut by a length limit must not leak in part either."""
    return [key[i : i + 10] for i in range(len(key) - 9)]


def leaked(key: str, text: str) -> list[str]:
    return [piece for piece in fragments(key) if piece in text]


@pytest.fixture
def hostile(fake, tmp_path, monkeypatch, people):
    fake.reset()
    monkeypatch.setenv("IDENTITY_USER_DIR", str(tmp_path))
    fake.phota_profiles["ph0bama"] = "READY"
    PhotaLinks(tmp_path / "phota_links.json").link(people["Barack Obama"].id, "ph0bama")
    return KeyStore(fake.keys_file(tmp_path), environ={})


@pytest.mark.parametrize(
    "fault,provider",
    [("echo_key_text", p) for p in PROVIDER_MODELS]
    + [("echo_key_late", p) for p in ("openai", "bfl", "phota", "reve")],
)
def test_a_key_echoed_in_any_body_is_redacted_before_truncation_everywhere(
    fake, hostile, people, embedded, caplog, fault, provider
):
    caplog.set_level(logging.DEBUG)
    request = RemoteRequest(
        operation="generate",
        model=PROVIDER_MODELS[provider],
        profiles=[people["Barack Obama"]],
        prompt="[[barack-obama]] at sea",
    )
    fake.faults = [fault]
    with pytest.raises(ProviderError) as error:
        run(request, hostile, embedded, policy=FAST)
    assert "[redacted]" in str(error.value) or fault == "echo_key_late", str(error.value)
    assert not leaked(KEYS[provider], str(error.value)), str(error.value)
    fake.reset(faults=[fault])
    request.rerolls = 1  # the failure is recorded in the report, and a re-roll brings an image
    result = run(request, hostile, embedded, policy=FAST)
    assert result.report["failures"] and not leaked(KEYS[provider], json.dumps(result.report))
    assert not leaked(KEYS[provider], caplog.text)


@pytest.mark.parametrize(
    "provider,header",
    [("gemini", "x-goog-api-key"), ("phota", "x-api-key"), ("bfl", "x-key"), ("openai", "authorization")],
)
def test_a_redirect_never_carries_a_key_or_the_photos_to_another_origin(
    fake, hostile, people, embedded, provider, header
):
    fake.faults = ["redirect_away"]
    request = RemoteRequest(
        operation="generate",
        model=PROVIDER_MODELS[provider],
        profiles=[people["Barack Obama"]],
        prompt="[[barack-obama]] at sea",
    )
    with pytest.raises(ProviderError, match="redirected the request to another origin .*not followed"):
        run(request, hostile, embedded, policy=Policy(base_delay=0.05, read_timeout=10, attempts=1))
    assert fake.received("evil") == [], "neither the key nor the references went there"


@pytest.mark.parametrize("fault", ["redirect_poll", "poll_elsewhere"])
def test_a_polling_url_on_or_redirecting_to_another_origin_never_gets_the_key(fake, hostile, people, embedded, fault):
    fake.faults = [fault]
    request = RemoteRequest(
        operation="generate", model="flux-2", profiles=[people["Barack Obama"]], prompt="[[barack-obama]] at sea"
    )
    with pytest.raises(ProviderError):
        run(request, hostile, embedded, policy=Policy(base_delay=0.05, poll_interval=0.05, read_timeout=10, attempts=1))
    polls = fake.received("evil")
    assert polls and all("x-key" not in r.headers for r in polls)


def test_credentials_in_a_base_url_are_never_logged(fake, people, embedded, tmp_path, caplog):
    fake.reset()
    secret = "pw-s3cret-proxy-9876"
    host = fake.urls["gemini"].removeprefix("http://")
    keys = KeyStore(
        None, environ={"GEMINI_API_KEY": KEYS["gemini"], "IDENTITY_GEMINI_BASE_URL": f"http://me:{secret}@{host}"}
    )
    caplog.set_level(logging.DEBUG)
    result = run(
        RemoteRequest(operation="generate", model="nb2", profiles=[people["Barack Obama"]], prompt="[[barack-obama]]"),
        keys,
        embedded,
        policy=FAST,
    )
    assert result.images and "HTTP Request: POST" in caplog.text, "httpx logged the call"
    assert secret not in caplog.text and KEYS["gemini"] not in caplog.text
