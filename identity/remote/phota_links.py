"""Which Phota profile each local profile is: the link that lets a `phota/…` request carry a local person.

Phota trains its own profiles (`POST /v1/phota/profiles/add`, about 20 minutes) and knows only their ids; a
local profile id means nothing to it. The links live beside the keys, in `user/identity_layer/phota_links.json`
(`{"<local profile id>": "<phota profile id>"}`), written atomically. A link is made (in the Identity panel or
with `python -m identity phota-link`) only after Phota's status endpoint knows the id, and the status
(`VALIDATING … IN_PROGRESS → READY | ERROR`) is shown then.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from pathlib import Path

import httpx

from ..errors import InvalidRequest
from .http import Policy, Transport
from .keys import Credentials
from .models import user_folder
from .providers.phota import profile_status

_PHOTA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


class PhotaLinks:
    def __init__(self, path: Path):
        self.path = Path(path)

    def all(self) -> dict[str, str]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InvalidRequest(
                f"{self.path} is not valid JSON; fix or remove it, then link the profiles again"
            ) from None
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise InvalidRequest(f"{self.path} must map local profile ids to Phota profile ids; fix or remove it")
        return data

    def get(self, profile_id: str) -> str | None:
        return self.all().get(profile_id)

    def link(self, profile_id: str, phota_id: str) -> None:
        check_phota_id(phota_id)
        self._write({**self.all(), profile_id: phota_id})

    async def link_checked(self, profile_id: str, phota_id: str, credentials: Credentials) -> dict:
        """Links only an id Phota knows on this account; returns Phota's `{profile_id, status, message}`."""
        state = await phota_status(credentials, check_phota_id(phota_id))
        await asyncio.to_thread(self.link, profile_id, phota_id)
        return state

    def unlink(self, profile_id: str) -> bool:
        links = self.all()
        if links.pop(profile_id, None) is None:
            return False
        self._write(links)
        return True

    def _write(self, links: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".phota_links.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(links, stream, indent=1, sort_keys=True)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def default_links() -> PhotaLinks:
    return PhotaLinks(user_folder() / "phota_links.json")


async def phota_status(credentials: Credentials, phota_id: str) -> dict:
    """Phota's `{profile_id, status, message}` for one of its profiles; raises when Phota does not know it."""
    async with httpx.AsyncClient(follow_redirects=False) as client:
        return await profile_status(Transport("phota", client, Policy()), credentials, phota_id)


def check_phota_id(phota_id: str) -> str:
    if not _PHOTA_ID.fullmatch(phota_id or ""):
        raise InvalidRequest(
            f"{phota_id!r} is not a Phota profile id (letters, digits, '-' and '_', as "
            "POST /v1/phota/profiles/add returned it)"
        )
    return phota_id
