"""API keys and base URLs: from the environment or a keys file, never from a node widget.

Widget values are saved into workflow JSON and PNG metadata, so a key typed there would leak with every shared
image. The keys file (JSON, under ComfyUI's user folder) holds `{"OPENAI_API_KEY": "...", "base_urls":
{"openai": "https://my-proxy/..."}}`; environment variables win over it. Base URLs can also be set with
`IDENTITY_<PROVIDER>_BASE_URL` (proxies, tests). A key never appears in a repr, a log line or an error.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse

from ..errors import MissingKey

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


def scrub(text: str) -> str:
    """`text` without any key this process uses (also URL-encoded) and without URL user-info (`user:pass@`)."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        for form in {secret, quote(secret, safe="")}:
            text = text.replace(form, REDACTED)
    return _USERINFO.sub(rf"\1{REDACTED}@", text)


def excerpt(text: str, limit: int = 300) -> str:
    """What of a provider's answer may be shown: scrubbed first, then cut (a cut key would leak in part)."""
    clean = scrub(text).strip()
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
        if not self.keys_file or not self.keys_file.is_file():
            return {}
        try:
            data = json.loads(self.keys_file.read_text())
        except (OSError, ValueError):
            raise MissingKey(f"the keys file {self.keys_file} is not valid JSON; fix or remove it") from None
        return data if isinstance(data, dict) else {}

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
            or (stored.get("base_urls") or {}).get(provider)
            or DEFAULT_BASE_URLS[provider]
        )
        return Credentials(provider, base_url.rstrip("/"), key)
