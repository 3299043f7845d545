"""`[[profile_id]]` in prompts: which profiles a prompt names, and the prompt as the model should read it."""

from __future__ import annotations

import re

from .errors import IdentityError

PROFILE_REF = re.compile(r"\[\[([a-z0-9][a-z0-9_-]{0,63})\]\]")

#: How a model is told who is who. `reference`: local reference models (FLUX.2, Kontext, Qwen-Image-Edit), whose
#: reference images are numbered in the subjects' order from 1.
CONVENTIONS = {
    "reference": "the person in reference image {number} ({name})",
}


def referenced_ids(prompt: str) -> list[str]:
    """The profile ids the prompt names, each once, in order of first appearance."""
    return list(dict.fromkeys(PROFILE_REF.findall(prompt)))


def compile_prompt(prompt: str, subjects: list[tuple[str, str]], convention: str) -> str:
    """The prompt with each `[[id]]` replaced by how the model should refer to that subject.

    `subjects` are `(profile id, name)` in the order the model receives them; an `[[id]]` that is not among them
    is an error naming it.
    """
    template = CONVENTIONS[convention]
    numbered = {pid: (number, name) for number, (pid, name) in enumerate(subjects, start=1)}
    unknown = [pid for pid in referenced_ids(prompt) if pid not in numbered]
    if unknown:
        given = ", ".join(pid for pid, _ in subjects) or "none"
        raise IdentityError(f"the prompt names {', '.join(f'[[{pid}]]' for pid in unknown)}, which is not among the "
                            f"profiles given ({given}): load that profile, or correct the id")
    return PROFILE_REF.sub(lambda m: template.format(number=numbered[m.group(1)][0], name=numbered[m.group(1)][1]),
                           prompt)
