"""Profile ids: checked before any path is built from them, so that no id can reach outside the profile folder."""

from __future__ import annotations

import re
import secrets
import unicodedata

from ..errors import IdentityError, InvalidProfileId

#: A profile id: what file names and `[[id]]` prompt references may hold (1-64 characters).
ID_RULE = r"[a-z0-9][a-z0-9_-]{0,63}"
ID_PATTERN = re.compile(rf"^{ID_RULE}$")
#: Longest display name: a picker line, not a paragraph.
MAX_NAME_CHARS = 100
#: Characters a name may not hold: ComfyUI's frontend builds combo lists (Profile Load's picker) with innerHTML.
MARKUP = "<>"


def validate_id(profile_id) -> str:
    if not isinstance(profile_id, str) or not ID_PATTERN.fullmatch(profile_id):
        shown = repr(profile_id)[:80]
        raise InvalidProfileId(
            f"invalid profile id {shown}: ids are 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"
        )
    return profile_id


def slug(name: str, limit: int = 57) -> str:
    """A readable id stem from a display name: 'Zoë Saldaña' -> 'zoe-saldana'."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:limit].strip("-")
    return stem or "profile"


def new_id(name: str) -> str:
    """`<slug>-<6 hex>`: stable once made, unique without a registry."""
    return validate_id(f"{slug(name)}-{secrets.token_hex(3)}")


def clean_name(name) -> str:
    """A display name as stored: trimmed, one line, no markup, at most `MAX_NAME_CHARS`; pickers and reports show it."""
    value = name.strip() if isinstance(name, str) else ""
    if not value:
        raise IdentityError("a profile needs a name")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in value):
        raise IdentityError(
            f"profile name {value[:80]!r} contains control characters or line breaks; use one plain line"
        )
    if any(ch in MARKUP for ch in value):
        raise IdentityError(f"profile name {value[:80]!r} contains '<' or '>'; names are plain text, leave those out")
    if len(value) > MAX_NAME_CHARS:
        raise IdentityError(f"profile name {value[:40]!r}… is over {MAX_NAME_CHARS} characters; shorten it")
    return value


def name_key(name: str) -> str:
    """What makes two names the same name, for lookup and uniqueness: compatibility-normalised and case-folded
    (Unicode NFKC_Casefold), so 'barack obama' is 'Barack Obama', a decomposed 'Zoë' (NFD, as macOS file names
    hold it) is the composed one, and a fullwidth 'Ｚoë' is 'Zoë': names that look alike are one name."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def picker_labels(summaries: list[dict]) -> dict[str, str]:
    """Profile id → its label in pickers: the name, with the id added when several profiles share it (in any
    case: names are looked up without it). `ProfileStore.resolve` reads these labels back."""
    counts: dict[str, int] = {}
    for s in summaries:
        counts[name_key(s["name"])] = counts.get(name_key(s["name"]), 0) + 1
    return {s["id"]: s["name"] if counts[name_key(s["name"])] == 1 else f"{s['name']} ({s['id']})" for s in summaries}
