"""Which Phota profile each local profile is: the link that lets a `phota/…` request carry a local person.

Phota trains its own profiles (`POST /v1/phota/profiles/add`, about 20 minutes) and knows only their ids; a
local profile id means nothing to it. The links live beside the keys, in `user/identity_layer/phota_links.json`
(`{"<local profile id>": "<phota profile id>"}`), read as every user file is (see `user_files.py`) and changed
under a lock, atomically. A link is made (in the Identity panel or with `python -m identity phota-link`) only
after Phota's status endpoint knows the id, and the status (`VALIDATING … IN_PROGRESS → READY | ERROR`) is shown
then.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from ..errors import InvalidRequest
from .http import Policy, Transport
from .keys import Credentials
from .models import user_folder
from .providers.phota import profile_status
from .user_files import expect, locked, read_json, write_json

_PHOTA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


class PhotaLinks:
    def __init__(self, path: Path):
        self.path = Path(path)

    def all(self) -> dict[str, str]:
        data = read_json(self.path)
        if data is None:
            return {}
        expect(self.path, "the file", data, dict, 'an object like {"<local profile id>": "<Phota profile id>"}')
        for profile_id, phota_id in data.items():
            expect(self.path, f"the link of {profile_id!r}", phota_id, str, "a Phota profile id")
            if not _PHOTA_ID.fullmatch(phota_id):
                raise InvalidRequest(
                    f"{self.path}: the link of {profile_id!r} is not a Phota profile id; fix or remove it"
                )
        return data

    def get(self, profile_id: str) -> str | None:
        return self.all().get(profile_id)

    def link(self, profile_id: str, phota_id: str) -> None:
        check_phota_id(phota_id)
        with locked(self.path):  # read, change, write: another link made meanwhile is kept
            write_json(self.path, {**self.all(), profile_id: phota_id})

    async def link_checked(self, profile_id: str, phota_id: str, credentials: Credentials) -> dict:
        """Links only an id Phota knows on this account; returns Phota's `{profile_id, status, message}`."""
        state = await phota_status(credentials, check_phota_id(phota_id))
        await asyncio.to_thread(self.link, profile_id, phota_id)
        return state

    def unlink(self, profile_id: str) -> bool:
        with locked(self.path):
            links = self.all()
            if links.pop(profile_id, None) is None:
                return False
            write_json(self.path, links)
            return True


def default_links() -> PhotaLinks:
    return PhotaLinks(user_folder() / "phota_links.json")


async def phota_status(credentials: Credentials, phota_id: str) -> dict:
    """Phota's `{profile_id, status, message}` for one of its profiles; raises when Phota does not know it.

    The call runs on a thread with its own event loop: reading and decompressing Phota's answer is work that
    must not stall ComfyUI's server loop (the panel's link route awaits this)."""
    return await asyncio.to_thread(asyncio.run, _status(credentials, phota_id))


async def _status(credentials: Credentials, phota_id: str) -> dict:
    async with httpx.AsyncClient(follow_redirects=False) as client:
        return await profile_status(Transport("phota", client, Policy()), credentials, phota_id)


def check_phota_id(phota_id: str) -> str:
    if not _PHOTA_ID.fullmatch(phota_id or ""):
        raise InvalidRequest(
            f"{phota_id!r} is not a Phota profile id (letters, digits, '-' and '_', as "
            "POST /v1/phota/profiles/add returned it)"
        )
    return phota_id
