"""A profile's ID tokens: PuLID's encoder over every accepted photo of the profile, averaged.

One photo gives one view of a face; the profile's identity is what its photos share, so each accepted photo is
encoded (its raw ArcFace embedding with its EVA-CLIP features) and the token sets are averaged, as the PuLID
ComfyUI ports do for several input images. Computed once per (profile, face engine, adapter) and cached.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..errors import WeightsMismatch
from ..faces import FaceEngine
from ..profile import Profile
from .eva_clip import normalize
from .faces import encoder_faces, to_pixels
from .weights import FluxAdapter

log = logging.getLogger(__name__)

#: Photos encoded per forward pass (bounds memory with real-size models).
ENCODE_BATCH = 8
CACHE_SIZE = 32

_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
_lock = threading.Lock()


def check_engine(adapter: FluxAdapter, engine: FaceEngine) -> None:
    """Another embedding size is refused; another recognizer of the right size works, but less well: a warning."""
    if engine.info.dim != adapter.arcface_dim:
        raise WeightsMismatch(
            f"this PuLID-Flux adapter was trained on {adapter.arcface_dim}-d ArcFace embeddings (antelopev2), but the "
            f"face engine '{engine.name}' gives {engine.info.dim}-d ones: put the antelopev2 pack in "
            "models/insightface/models/antelopev2/ and choose it with a Face Engine node")
    if "antelopev2" not in engine.name:
        log.warning("PuLID-Flux was trained on antelopev2's ArcFace; with '%s' the likeness is weaker", engine.name)


@torch.no_grad()
def encode(adapter: FluxAdapter, arcface: torch.Tensor, crops, dtype: torch.dtype) -> torch.Tensor:
    """Token sets `[N, queries, token_dim]` (float32) for raw ArcFace vectors `[N, D]` and aligned crops."""
    device = next(adapter.pulid.parameters()).device
    size = adapter.eva.config.image_size
    out = []
    for start in range(0, len(crops), ENCODE_BATCH):
        pixels = normalize(to_pixels(encoder_faces(crops[start:start + ENCODE_BATCH], size))).to(device, dtype)
        embedding, hidden = adapter.eva(pixels)
        vector = torch.cat([arcface[start:start + ENCODE_BATCH].to(device, dtype), F.normalize(embedding, dim=-1)], -1)
        out.append(adapter.pulid.pulid_encoder(vector, hidden).float().cpu())
    return torch.cat(out)


def _float32() -> torch.dtype:
    return torch.float32


def profile_tokens(adapter: FluxAdapter, profile: Profile, engine: FaceEngine,
                   prepare: Callable[[], torch.dtype] = _float32) -> torch.Tensor:
    """The profile's ID tokens `[1, queries, token_dim]`, float32 on the CPU.

    Only when they are not cached yet, `prepare()` runs first: it puts the encoders where they should compute
    and returns the dtype to compute in.
    """
    check_engine(adapter, engine)
    key = (profile.id, profile.created, engine.info.key, adapter.key)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    arcface = torch.from_numpy(engine.recognizer.embed(profile.crops))
    tokens = encode(adapter, arcface, profile.crops, prepare()).mean(dim=0, keepdim=True)
    with _lock:
        _cache[key] = tokens
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return tokens
