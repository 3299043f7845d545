"""A profile's ID tokens: PuLID's encoder over every accepted photo of the profile, averaged.

One photo gives one view of a face; the profile's identity is what its photos share, so each accepted photo is
encoded (its raw ArcFace embedding with its EVA-CLIP features) and the token sets are averaged, as the PuLID
ComfyUI ports do for several input images. Computed once per (profile, face engine, input) and kept by the adapter.

The ArcFace part must come from antelopev2's glintr100, the recognizer PuLID-Flux was trained with: another
512-d recognizer gives vectors in another space at a similar norm, which the encoder turns into noise, so it is
refused unless the adapter was loaded with `any_recognizer`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..digests import GLINTR100_SHA256
from ..errors import IdentityError, WeightsMismatch
from ..faces import FaceEngine
from ..profile import Profile
from .eva_clip import HIDDEN_STATE_BLOCKS, normalize
from .faces import encoder_pixels, profile_faces
from .weights import FluxAdapter

log = logging.getLogger(__name__)

#: Photos encoded per forward pass (bounds memory with real-size models).
ENCODE_BATCH = 8


def check_engine(adapter: FluxAdapter, engine: FaceEngine) -> None:
    """Another embedding size is always refused; another recognizer than glintr100 unless the adapter allows it."""
    install = (
        "put the antelopev2 pack (glintr100.onnx, scrfd_10g_bnkps.onnx) in models/insightface/models/antelopev2/ "
        "and choose it with a Face Engine node"
    )
    if engine.info.dim != adapter.arcface_dim:
        raise WeightsMismatch(
            f"this PuLID-Flux adapter was trained on {adapter.arcface_dim}-d ArcFace embeddings (antelopev2), but the "
            f"face engine '{engine.name}' gives {engine.info.dim}-d ones: {install}"
        )
    if engine.info.recognizer_sha256 == GLINTR100_SHA256:
        return
    if not adapter.any_recognizer:
        raise WeightsMismatch(
            f"PuLID-Flux was trained on antelopev2's glintr100 ArcFace, and the face engine '{engine.name}' uses another "
            f"recognizer (sha256 {engine.info.recognizer_sha256[:12]}…), whose embeddings it would turn into noise: "
            f"{install}, or turn on allow_other_recognizer on PuLID-Flux Load to accept a weaker likeness"
        )
    log.warning("PuLID-Flux was trained on antelopev2's glintr100; with '%s' the likeness is weaker", engine.name)


@torch.no_grad()
def encode(adapter: FluxAdapter, arcface: torch.Tensor, faces, dtype: torch.dtype) -> torch.Tensor:
    """Token sets `[N, queries, token_dim]` (float32) for raw ArcFace vectors `[N, D]` and FFHQ-aligned 512 px
    faces `[N, 512, 512, 3]` (uint8 RGB)."""
    device = next(adapter.pulid.parameters()).device
    size = adapter.eva.config.image_size
    out = []
    for start in range(0, len(faces), ENCODE_BATCH):
        pixels = normalize(encoder_pixels(faces[start : start + ENCODE_BATCH], size, adapter.parser)).to(device, dtype)
        embedding, hidden = adapter.eva(pixels)
        vector = torch.cat(
            [arcface[start : start + ENCODE_BATCH].to(device, dtype), F.normalize(embedding, dim=-1)], -1
        )
        out.append(adapter.pulid.pulid_encoder(vector, hidden).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def uncond_tokens(adapter: FluxAdapter, dtype: torch.dtype) -> torch.Tensor:
    """The encoder's tokens for no identity `[1, queries, token_dim]` (float32): a zero ID vector and zero
    EVA hidden states, what the official pipeline gives the negative pass of true CFG."""
    device = next(adapter.pulid.parameters()).device
    eva = adapter.eva.config
    vector = torch.zeros(1, adapter.config.id_input, device=device, dtype=dtype)
    hidden = [torch.zeros(1, eva.grid**2 + 1, eva.width, device=device, dtype=dtype)] * len(HIDDEN_STATE_BLOCKS)
    return adapter.pulid.pulid_encoder(vector, hidden).float().cpu()


def _float32() -> torch.dtype:
    return torch.float32


def no_identity_tokens(adapter: FluxAdapter, prepare: Callable[[], torch.dtype] = _float32) -> torch.Tensor:
    """`uncond_tokens`, computed once per adapter: `prepare()` (which moves the encoders) runs only then."""
    return adapter.tokens.get_or_make(("no identity",), lambda: uncond_tokens(adapter, prepare()))


def check_people(profiles: list[Profile]) -> None:
    """PuLID-Flux's encoder reads faces: a cat or dog profile is refused, pointing to what carries pets."""
    pets = [p.name for p in profiles if p.kind != "person"]
    if pets:
        raise IdentityError(
            f"PuLID-Flux carries faces, not {', '.join(pets)} (a cat or dog profile); use "
            "Identity Condition (Reference) for pets"
        )


def profile_tokens(
    adapter: FluxAdapter, profile: Profile, engine: FaceEngine, prepare: Callable[[], torch.dtype] = _float32
) -> torch.Tensor:
    """The profile's ID tokens `[1, queries, token_dim]`, float32 on the CPU.

    Only when they are not cached yet, `prepare()` runs first: it puts the encoders where they should compute
    and returns the dtype to compute in.
    """
    check_engine(adapter, engine)

    def compute() -> torch.Tensor:
        arcface = torch.from_numpy(engine.recognizer.embed(profile.crops))
        return encode(adapter, arcface, profile_faces(profile), prepare()).mean(dim=0, keepdim=True)

    key = (profile.id, profile.created, engine.info.key, profile.faces_512 is not None)  # the EVA input's kind
    return adapter.tokens.get_or_make(key, compute)
