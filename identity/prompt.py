"""Prompts that name people: `[[profile_id]]` references, the subjects of a request, and how each model is told
who is who.

Only the profiles a request supplies are candidates, never every profile on disk. A `[[ref]]` names a supplied
profile by its id, or by its name written as an id (`[[barack-obama]]` for "Barack Obama"), so that shared
workflows do not depend on the random part of an id. An unknown `[[ref]]` is an error before any call.
"""

from __future__ import annotations

import re

from .errors import IdentityError
from .profile import ID_RULE, Profile, slug

PROFILE_REF = re.compile(rf"\[\[({ID_RULE})\]\]")


def referenced_ids(prompt: str) -> list[str]:
    """The `[[ref]]`s of a prompt, unique, in order of first appearance."""
    return list(dict.fromkeys(PROFILE_REF.findall(prompt or "")))


def resolve_reference(ref: str, profiles: list[Profile]) -> Profile:
    """The supplied profile `ref` names: its id, else its name written as an id, else a name it had before a
    rename (a prompt written before the rename keeps working; a current name wins over a former one)."""
    for profile in profiles:
        if profile.id == ref:
            return profile
    supplied = ", ".join(f"{p.id} ({p.name})" for p in profiles) or "none"
    for names in (lambda p: (p.name,), lambda p: p.former_names):
        matches = [p for p in profiles if ref in {slug(name) for name in names(p)}]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise IdentityError(
                f"[[{ref}]] matches several supplied profiles by name; use the id (supplied: {supplied})"
            )
    raise IdentityError(f"the prompt names [[{ref}]], which is not among the supplied profiles (supplied: {supplied})")


def subjects(prompt: str, profiles: list[Profile], candidates: list[str] | None = None) -> list[Profile]:
    """The people a request is about: those its prompt names, then the candidate ids it lists, once each.

    With neither, every supplied profile is a subject (a request wired to profiles but not naming them).
    """
    named = [resolve_reference(ref, profiles) for ref in referenced_ids(prompt)]
    listed = [resolve_reference(ref, profiles) for ref in (candidates or [])]
    chosen = {p.id: p for p in named + listed} or {p.id: p for p in profiles}
    return list(chosen.values())


def compile_prompt(prompt: str, profiles: list[Profile], describe) -> str:
    """The prompt with each `[[ref]]` replaced by `describe(profile)`: how this model is told who the person is."""
    return PROFILE_REF.sub(lambda match: describe(resolve_reference(match.group(1), profiles)), prompt or "")


def numbered(indices: list[int]) -> str:
    """'image 2', 'images 2 and 3', 'images 1, 2 and 4' (1-based numbers as given)."""
    words = [str(i) for i in indices]
    if len(words) == 1:
        return f"image {words[0]}"
    return f"images {', '.join(words[:-1])} and {words[-1]}"
