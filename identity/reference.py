"""What the local reference path shares: the portraits-per-profile bound, the grid a training report shows them in,
and the prompt as Identity Prompt (Reference) names its reference images. The references themselves are made by
`identity.targets.references_for` (the profile's large portraits, fitted to the target)."""

from __future__ import annotations

import numpy as np

from .profile import Profile
from .prompt import compile_prompt

#: Portraits per person: each reference portrait costs (side/16)² attention tokens in Flux, so the count is small.
MAX_PORTRAITS = 4


def portrait_grid(portraits: np.ndarray, columns: int = MAX_PORTRAITS) -> np.ndarray:
    """Square portraits `[N, S, S, 3]` in rows of `columns`, left to right, white where a row is short."""
    count, size = len(portraits), portraits.shape[1]
    rows = -(-count // columns)
    grid = np.full((rows * size, min(count, columns) * size, 3), 255, np.uint8)
    for index, image in enumerate(portraits):
        row, column = divmod(index, columns)
        grid[row * size : (row + 1) * size, column * size : (column + 1) * size] = image
    return grid


def reference_prompt(prompt: str, profiles: list[Profile]) -> str:
    """The prompt with each `[[ref]]` as 'the person (or cat, or dog) in reference image N (Name)', N the profile's place."""
    numbers = {p.id: n for n, p in enumerate(profiles, start=1)}
    return compile_prompt(prompt, profiles, lambda p: f"the {p.kind} in reference image {numbers[p.id]} ({p.name})")
