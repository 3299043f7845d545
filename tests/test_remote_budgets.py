"""Provider answers are bounded: bytes (compressed or not, read as they stream), and time (a whole-request
deadline, not only a read timeout); an answer that breaks a bound gets one sentence, and a paid one says it may
have been charged, with the request id."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import FAST, ROOT, needs_faces, one_line_error
from fake_providers import KEYS

from identity.errors import ProviderError
from identity.remote.http import MayHaveBeenCharged, Policy
from identity.remote.keys import KeyStore
from identity.remote.runner import RemoteRequest, run

RSS_BOUND = 1.5 * 1024**3  # the bound for a gzip bomb, in bytes of peak RSS


@pytest.fixture
def user_keys(fake, tmp_path, monkeypatch):
    fake.reset()
    monkeypatch.setenv("IDENTITY_USER_DIR", str(tmp_path))
    return KeyStore(fake.keys_file(tmp_path), environ={})


def request(people, model: str) -> RemoteRequest:
    return RemoteRequest(
        operation="generate", model=model, profiles=[people["Barack Obama"]], prompt="[[barack-obama]] in the rain"
    )


#: Runs `python -m identity` and writes the process's own peak RSS (VmHWM, kB) to the file named first. Not
#: wait4's ru_maxrss: Linux folds the forking parent's high-water mark into it at exec, so a large pytest process
#: (in-process CLI tests load engines) would be measured instead of the child.
_PEAK_RSS_LAUNCHER = """import atexit, runpy, sys
target = sys.argv.pop(1)
def record():
    with open('/proc/self/status') as status, open(target, 'w') as out:
        out.write(next(line for line in status if line.startswith('VmHWM:')).split()[1])
atexit.register(record)
sys.argv[0] = 'identity'
runpy.run_module('identity', run_name='__main__', alter_sys=True)
"""


def cli_peak_rss(args: list[str], env: dict, folder) -> tuple[subprocess.CompletedProcess, int]:
    """Runs `python -m identity ARGS`; its result and its own peak RSS in bytes."""
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")} | env
    peak = folder / "peak_rss_kb.txt"
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS_LAUNCHER, str(peak), *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert peak.is_file(), (
        f"the CLI died before it could report its memory (exit {result.returncode}): {result.stderr[-2000:]}"
    )
    return result, int(peak.read_text()) * 1024


@needs_faces
@pytest.mark.parametrize("fault", ["gzip_bomb", "huge"])
def test_an_answer_past_the_budget_is_refused_while_it_streams_within_the_memory_bound(fake, people, tmp_path, fault):
    """1.5 MB of gzip inflating to 1.5 GiB (the CLI reached 6.4 GB), and a 3 GiB body (14.2 GB)."""
    from identity.profile import ProfileStore

    fake.reset(faults=[fault])
    store = ProfileStore(tmp_path / "profiles")
    store.save(people["Barack Obama"])
    env = {
        "IDENTITY_USER_DIR": str(tmp_path / "user"),
        "GEMINI_API_KEY": KEYS["gemini"],
        "IDENTITY_GEMINI_BASE_URL": fake.urls["gemini"],
    }
    args = ["generate", "--store", str(store.folder), "--profile", "barack obama", "--prompt", "[[barack-obama]]"]
    result, peak = cli_peak_rss([*args, "--out", str(tmp_path / "out")], env, tmp_path)
    one_line_error(result, "gemini sent an answer larger than 256 MB", "may have been charged", "request id")
    assert peak < RSS_BOUND, f"peak RSS {peak / 1e9:.2f} GB"
    assert len(fake.posts("gemini")) == 1, "not re-sent"


@needs_faces
def test_a_result_download_past_its_budget_is_refused(fake, user_keys, people, embedded):
    fake.get_faults["download"] = "gzip_bomb"  # BFL's result URL (downloads reached 6.7 GB)
    with pytest.raises(ProviderError, match=r"bfl sent an answer larger than 64 MB, so it was not read") as error:
        run(request(people, "flux-2"), user_keys, embedded, policy=FAST)
    assert "\n" not in str(error.value)


@needs_faces
def test_a_body_that_is_not_the_gzip_it_claims_gets_a_sentence_not_a_decoding_error(fake, user_keys, people, embedded):
    fake.faults = ["gzip_invalid"]
    with pytest.raises(MayHaveBeenCharged, match=r"gemini sent an answer that cannot be decompressed") as error:
        run(request(people, "nb2"), user_keys, embedded, policy=FAST)
    assert error.value.__cause__ is None and len(fake.posts("gemini")) == 1


@needs_faces
def test_a_trickling_answer_is_cut_at_the_whole_request_deadline(fake, user_keys, people, embedded):
    """A byte every 0.2 s never trips a read timeout; the deadline ends the call all the same (BFL's submit: 60 s
    allowed, the trickle held it 92 s)."""
    fake.faults = ["trickle"]
    started = time.monotonic()
    with pytest.raises(MayHaveBeenCharged, match=r"bfl took longer than 2 s once the request was sent.*request id"):
        run(request(people, "flux-2"), user_keys, embedded, policy=Policy(base_delay=0.05, read_timeout=10, deadline=2))
    assert time.monotonic() - started < 6
    assert len(fake.posts("bfl")) == 1


@needs_faces
def test_a_gateway_504_with_an_html_body_still_says_it_may_have_been_charged(fake, user_keys, people, embedded):
    fake.faults = ["gateway_html"]
    with pytest.raises(
        MayHaveBeenCharged,
        match=r"gateway timed out \(HTTP 504\); the request may still have been charged.*"
        r"request id [0-9a-f]{32}",
    ):
        run(request(people, "gpt-image-2"), user_keys, embedded, policy=FAST)
    assert len(fake.posts("openai")) == 1


def test_the_phota_link_check_refuses_a_gzip_bomb_at_the_poll_budget(fake, user_keys):
    """The panel's link route awaits this check (ComfyUI went from 608 MB to 5.2 GB on a bomb)."""
    import asyncio

    from identity.remote.phota_links import phota_status

    fake.get_faults["status"] = "gzip_bomb"
    with pytest.raises(ProviderError, match=r"phota sent an answer larger than 4 MB, so it was not read"):
        asyncio.run(phota_status(user_keys.credentials("phota"), "ph0bama"))
