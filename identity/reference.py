"""Reference images of profiles for reference-capable models (FLUX.2, Flux Kontext, Qwen-Image-Edit).

Each profile becomes one reference image: its best portraits (the profile keeps them best first) side by side,
so that reference image N is subject N. Count and size are bounded: reference latents cost attention tokens.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import IdentityError
from .profile import Profile
from .prompt import compile_prompt

#: People, and portraits per person: each portrait costs (side/16)² attention tokens in Flux (MULTIPLE), so
#: the count is kept small.
MAX_PROFILES = 4
MAX_PORTRAITS = 4
MIN_SIDE, MAX_SIDE = 256, 1024  # px a portrait side: below 256 a face has too few latent pixels
#: Sides are multiples of this (VAE downscale × Flux patch), and one reference image holds at most REFERENCE_PIXELS.
MULTIPLE = 16
REFERENCE_PIXELS = 1024 * 1024


def portrait_side(side: int, portraits: int) -> int:
    """`side`, shrunk so that `portraits` of them fit in REFERENCE_PIXELS, as a multiple of MULTIPLE."""
    fitting = int((REFERENCE_PIXELS / portraits) ** 0.5)
    return max(MULTIPLE, min(side, fitting) // MULTIPLE * MULTIPLE)


def reference_image(profile: Profile, portraits: int, side: int) -> np.ndarray:
    """The profile's first `portraits` portraits at `side` px, left to right (RGB uint8)."""
    side = portrait_side(side, portraits)
    tiles = [
        cv2.resize(p, (side, side), interpolation=cv2.INTER_AREA if side < p.shape[0] else cv2.INTER_CUBIC)
        for p in profile.portraits[:portraits]
    ]
    return portrait_grid(np.stack(tiles), columns=len(tiles))


def portrait_grid(portraits: np.ndarray, columns: int = MAX_PORTRAITS) -> np.ndarray:
    """Square portraits `[N, S, S, 3]` in rows of `columns`, left to right, white where a row is short."""
    count, size = len(portraits), portraits.shape[1]
    rows = -(-count // columns)
    grid = np.full((rows * size, min(count, columns) * size, 3), 255, np.uint8)
    for index, image in enumerate(portraits):
        row, column = divmod(index, columns)
        grid[row * size : (row + 1) * size, column * size : (column + 1) * size] = image
    return grid


def reference_images(profiles: list[Profile], portraits: int, side: int) -> list[np.ndarray]:
    """One reference image per profile, in the profiles' order."""
    if not profiles:
        raise IdentityError("reference conditioning needs at least one profile: connect Profile Load")
    if len(profiles) > MAX_PROFILES:
        raise IdentityError(f"at most {MAX_PROFILES} profiles can be references at once ({len(profiles)} connected)")
    if not (1 <= portraits <= MAX_PORTRAITS and MIN_SIDE <= side <= MAX_SIDE):
        raise IdentityError(f"portraits must be 1-{MAX_PORTRAITS} and size {MIN_SIDE}-{MAX_SIDE} px")
    return [reference_image(p, portraits, side) for p in profiles]


def with_references(conditioning: list, latents: list) -> list:
    """ComfyUI conditioning (`[[tokens, options], …]`) with `latents` as its first `reference_latents`.

    Core `ReferenceLatent` appends to the same list; profiles go first so that profile N is reference image N
    whatever other references the conditioning carries. The input is not modified.
    """
    return [
        [tokens, {**options, "reference_latents": [*latents, *options.get("reference_latents", [])]}]
        for tokens, options in conditioning
    ]


def reference_prompt(prompt: str, profiles: list[Profile]) -> str:
    """The prompt with each `[[ref]]` as 'the person (or cat, or dog) in reference image N (Name)', N the profile's place."""
    numbers = {p.id: n for n, p in enumerate(profiles, start=1)}
    return compile_prompt(prompt, profiles, lambda p: f"the {p.kind} in reference image {numbers[p.id]} ({p.name})")
