"""API keys and base URLs: from the environment or a keys file, never from a node widget.

Widget values are saved into workflow JSON and PNG metadata, so a key typed there would leak with every shared
image. The keys file (JSON, under ComfyUI's user folder) holds `{"OPENAI_API_KEY": "...", "base_urls":
{"openai": "https://my-proxy/..."}}`; environment variables win over it. Base URLs can also be set with
`IDENTITY_<PROVIDER>_BASE_URL` (proxies, tests). A key never appears in a repr, a log line or an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from ..errors import MissingKey
from .user_files import expect, read_json

KEY_VARIABLES = {
    "gemini": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),  # google-genai's order: GOOGLE_API_KEY wins when both are set
    "openai": ("OPENAI_API_KEY",),
    "dashscope": ("DASHSCOPE_API_KEY",),
    "bfl": ("BFL_API_KEY",),
    "reve": ("REVE_API_KEY",),
    "phota": ("PHOTA_API_KEY",),
}

DEFAULT_BASE_URLS = {
    "gemini": "https://generativelanguage.googleapis.com",
    "openai": "https://api.openai.com",
    "dashscope": "https://dashscope-intl.aliyuncs.com",
    "bfl": "https://api.bfl.ai",
    "reve": "https://api.reve.com",
    "phota": "https://api.photalabs.com",
}


#: Every key handed out in this process: `scrub` blanks them in any text (httpx's log lines included).
_SECRETS: set[str] = set()
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@]+@")
REDACTED = "[redacted]"
#: The shortest run of a key's characters that is blanked: a key echoed less one character, or cut by a length
#: limit, must not show the rest (fewer than 8 characters of a random key leave the rest unguessable).
MIN_RUN = 8
#: One character written in JSON (`\u0041`) or URL (`%41`) encoding: text is matched as if decoded.
_ENCODED = re.compile(r"\\u([0-9a-fA-F]{4})|%([0-9a-fA-F]{2})")
_patterns: dict = {}


def scrub(text: str) -> str:
    """`text` without URL user-info (`user:pass@`) and without any run of 8 or more characters of a key this process
    uses, written plainly, in JSON `\\uXXXX` escapes or URL-encoded (any mix of them)."""
    if _SECRETS:
        text = _without_keys(text)
    return _USERINFO.sub(rf"\1{REDACTED}@", text)


def _without_keys(text: str) -> str:
    decoded, spans = _decoded(text)
    covered = []  # (start, end) in `text` of every run of a key's characters
    for match in _key_runs().finditer(decoded):
        first, last = match.start(), match.start() + len(match.group(1)) - 1
        covered.append((spans[first][0], spans[last][1]) if spans else (first, last + 1))
    if not covered:
        return text
    merged = []
    for start, end in sorted(covered):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    pieces, at = [], 0
    for start, end in merged:
        pieces += [text[at:start], REDACTED]
        at = end
    return "".join(pieces) + text[at:]


def _decoded(text: str) -> tuple[str, list | None]:
    """`text` with each `\\uXXXX` and `%XX` decoded, and per decoded character its (start, end) in `text`
    (None when nothing was encoded: the offsets are the same)."""
    if "\\u" not in text and "%" not in text:
        return text, None
    chars, spans, at = [], [], 0
    for match in _ENCODED.finditer(text):
        chars.append(text[at : match.start()])
        spans += [(i, i + 1) for i in range(at, match.start())]
        chars.append(chr(int(match.group(1) or match.group(2), 16)))
        spans.append((match.start(), match.end()))
        at = match.end()
    chars.append(text[at:])
    spans += [(i, i + 1) for i in range(at, len(text))]
    return "".join(chars), spans


def _key_runs() -> re.Pattern:
    """Finds, overlapping, every MIN_RUN-character piece of every key (a shorter key whole)."""
    secrets = frozenset(_SECRETS)
    if secrets not in _patterns:
        pieces = {
            secret[i : i + min(MIN_RUN, len(secret))]
            for secret in secrets
            for i in range(max(1, len(secret) - MIN_RUN + 1))
        }
        alternatives = "|".join(re.escape(p) for p in sorted(pieces, key=len, reverse=True))
        _patterns.clear()
        _patterns[secrets] = re.compile(f"(?=({alternatives}))")
    return _patterns[secrets]


def excerpt(text: str, limit: int = 300) -> str:
    """What of a provider's answer may be shown: scrubbed first, then cut (a cut key would leak in part). Only the
    start of a long answer is scrubbed; a piece of key shorter than a run where that start ends is dropped too."""
    window = text[: limit * 20]
    clean = scrub(window)
    if len(window) < len(text):
        clean = clean[:-MIN_RUN]
    clean = clean.strip()
    return clean if len(clean) <= limit else clean[:limit] + "…"


#: Hosts besides the configured base URL that may receive a provider's key (regional polling URLs).
TRUSTED_DOMAINS = {"bfl": ("bfl.ai",), "phota": ("photalabs.com",)}


@dataclass(frozen=True)
class Credentials:
    provider: str
    base_url: str
    key: str = field(repr=False)

    def __post_init__(self):
        if self.key:
            _SECRETS.add(self.key)
        user_info = urlparse(self.base_url)
        if user_info.password:
            _SECRETS.add(user_info.password)

    def trusts(self, url: str) -> bool:
        """Whether `url` may receive the key: the base URL's own origin, or the provider's own domains over HTTPS."""
        if origin(url) == origin(self.base_url):
            return True
        target = urlparse(url)
        host = target.hostname or ""
        domains = TRUSTED_DOMAINS.get(self.provider, ())
        return target.scheme == "https" and any(host == d or host.endswith("." + d) for d in domains)

    def redact(self, text: str) -> str:
        """`text` with the key (and every other key in use) blanked out, for anything shown or logged."""
        return scrub(text.replace(self.key, REDACTED) if self.key else text)


def origin(url: str) -> tuple:
    """(scheme, host, port): what must stay the same for a key to go along."""
    parts = urlparse(str(url))
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class KeyStore:
    def __init__(self, keys_file: Path | None = None, environ: dict | None = None):
        self.keys_file = Path(keys_file) if keys_file else None
        self.environ = os.environ if environ is None else environ

    def _file(self) -> dict:
        """The keys file's contents, every field type-checked (see `user_files.py` for how it is read)."""
        path = self.keys_file
        data = read_json(path, MissingKey) if path else None
        if data is None:
            return {}
        expect(path, "the file", data, dict, 'an object like {"OPENAI_API_KEY": "…", "base_urls": {…}}', MissingKey)
        for variable in (v for variables in KEY_VARIABLES.values() for v in variables if v in data):
            expect(path, variable, data[variable], str, "the key as text", MissingKey)
        base_urls = expect(
            path, "base_urls", data.get("base_urls", {}), dict, 'an object like {"openai": "https://…"}', MissingKey
        )
        for provider, url in base_urls.items():
            expect(path, f"base_urls.{provider}", url, str, "a URL", MissingKey)
            if urlparse(url).scheme not in ("http", "https") or not urlparse(url).hostname:
                raise MissingKey(f"{path}: base_urls.{provider} must be an http:// or https:// URL; fix or remove it")
        return data

    def providers_with_keys(self) -> list[str]:
        """The providers that have a key, by name only (ComfyUI's start-up line lists them; never a key). A broken
        keys file raises `MissingKey`, as it does for a call."""
        self._file()
        found = []
        for provider in KEY_VARIABLES:
            try:
                self.credentials(provider)
            except MissingKey:
                continue
            found.append(provider)
        return found

    def credentials(self, provider: str) -> Credentials:
        stored = self._file()
        variables = KEY_VARIABLES[provider]
        key = next((self.environ[v] for v in variables if self.environ.get(v)), None) or next(
            (stored[v] for v in variables if isinstance(stored.get(v), str) and stored[v]), None
        )
        if not key:
            where = f" or add it to {self.keys_file}" if self.keys_file else ""
            raise MissingKey(f"no API key for {provider}: set {' or '.join(variables)} in ComfyUI's environment{where}")
        base_url = (
            self.environ.get(f"IDENTITY_{provider.upper()}_BASE_URL")
            or stored.get("base_urls", {}).get(provider)
            or DEFAULT_BASE_URLS[provider]
        )
        return Credentials(provider, base_url.rstrip("/"), key)
