"""PuLID-Flux's identity adapter in plain torch: the ID encoder (IDFormer) and the per-block cross-attentions.

Parameter names are those of the published `pulid_flux_v0.9.x.safetensors` (`pulid_encoder.*`, `pulid_ca.<i>.*`,
`nn.Sequential` members by ordinal), so the file loads strictly. Sizes come from an `AdapterConfig`: the
published one, or a scaled-down one read from a file's shapes (tests build those).

Layers are built from `ops` (a namespace with `Linear`, `LayerNorm`, as `torch.nn` or ComfyUI's casting ops),
so the ComfyUI glue can let its model management cast and offload the weights; bare parameters are cast to
their input here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: Head widths are fixed by the architecture; head counts follow from the layer sizes.
ENCODER_HEAD_DIM = 64
CROSS_ATTENTION_HEAD_DIM = 128
#: The encoder reads five EVA-CLIP hidden states, each through its own mapping and an equal share of layers.
VIT_SCALES = 5


@dataclass(frozen=True)
class AdapterConfig:
    """The sizes of a PuLID-Flux adapter; the defaults are the published v0.9.0 / v0.9.1 layout."""

    flux_dim: int = 3072  # Flux hidden size: the image tokens that query the ID tokens
    token_dim: int = 2048  # width of an ID token
    cross_attention_inner: int = 2048  # 16 heads of 128
    cross_attentions: int = 20  # after double blocks 0, 2, …, 18 and single blocks 0, 4, …, 36
    encoder_dim: int = 1024
    encoder_inner: int = 1024  # 16 heads of 64
    encoder_depth: int = 10
    ff_mult: int = 4
    id_tokens: int = 5  # tokens made from the ArcFace + CLIP vector
    queries: int = 32  # learned query tokens: the encoder's output tokens
    mlp_dim: int = 1024  # width of the input mapping MLPs
    vit_dim: int = 1024  # EVA-CLIP hidden width
    id_input: int = 1280  # ArcFace embedding (512) + EVA-CLIP class embedding (768)

    def __post_init__(self):
        if (
            self.encoder_depth % VIT_SCALES
            or self.encoder_inner % ENCODER_HEAD_DIM
            or self.cross_attention_inner % CROSS_ATTENTION_HEAD_DIM
        ):
            raise ValueError(f"inconsistent PuLID-Flux sizes: {self}")


PULID_FLUX_V09 = AdapterConfig()


def _mapping(ops, inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """Linear / LayerNorm / LeakyReLU twice, then Linear: ordinals 0, 1, 3, 4, 6 carry the weights."""
    return nn.Sequential(
        ops.Linear(inputs, hidden),
        ops.LayerNorm(hidden),
        nn.LeakyReLU(),
        ops.Linear(hidden, hidden),
        ops.LayerNorm(hidden),
        nn.LeakyReLU(),
        ops.Linear(hidden, outputs),
    )


def _heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    """`[B, N, H·d]` → `[B, H, N, d]`."""
    return x.unflatten(-1, (-1, head_dim)).transpose(1, 2)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Softmax attention over `head_dim`-wide heads; keys and values may have batch 1 for any query batch."""
    q, k, v = _heads(q, head_dim), _heads(k, head_dim), _heads(v, head_dim)
    if k.shape[0] != q.shape[0]:  # a few ID tokens for a whole batch: copying them is cheap, stride 0 is not
        k, v = (t.expand(q.shape[0], -1, -1, -1).contiguous() for t in (k, v))
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)


class PerceiverAttention(nn.Module):
    """The encoder's attention: latents query the context and themselves."""

    def __init__(self, ops, dim: int, inner: int):
        super().__init__()
        self.norm1 = ops.LayerNorm(dim)
        self.norm2 = ops.LayerNorm(dim)
        self.to_q = ops.Linear(dim, inner, bias=False)
        self.to_kv = ops.Linear(dim, inner * 2, bias=False)
        self.to_out = ops.Linear(inner, dim, bias=False)

    def forward(self, context: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        latents = self.norm2(latents)
        keys, values = self.to_kv(torch.cat([self.norm1(context), latents], dim=1)).chunk(2, dim=-1)
        return self.to_out(_attend(self.to_q(latents), keys, values, ENCODER_HEAD_DIM))


class IDFormer(nn.Module):
    """ArcFace + EVA-CLIP features → `queries` ID tokens of `token_dim` (PuLID's `pulid_encoder`).

    The ID vector becomes `id_tokens` tokens that join the learned queries; the five EVA hidden states enter one
    after another, each through its own mapping, as context for an equal share of the layers.
    """

    def __init__(self, config: AdapterConfig, ops=nn):
        super().__init__()
        self.config = config
        c = config
        self.latents = nn.Parameter(torch.empty(1, c.queries, c.encoder_dim))
        self.proj_out = nn.Parameter(torch.empty(c.encoder_dim, c.token_dim))
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PerceiverAttention(ops, c.encoder_dim, c.encoder_inner),
                    nn.Sequential(
                        ops.LayerNorm(c.encoder_dim),
                        ops.Linear(c.encoder_dim, c.encoder_dim * c.ff_mult, bias=False),
                        nn.GELU(),
                        ops.Linear(c.encoder_dim * c.ff_mult, c.encoder_dim, bias=False),
                    ),
                ]
            )
            for _ in range(c.encoder_depth)
        )
        for scale in range(VIT_SCALES):
            setattr(self, f"mapping_{scale}", _mapping(ops, c.vit_dim, c.mlp_dim, c.encoder_dim))
        self.id_embedding_mapping = _mapping(ops, c.id_input, c.mlp_dim, c.encoder_dim * c.id_tokens)

    def forward(self, id_vector: torch.Tensor, vit_hidden: list[torch.Tensor]) -> torch.Tensor:
        """`id_vector [B, id_input]`, five `[B, N, vit_dim]` hidden states → `[B, queries, token_dim]`."""
        c = self.config
        id_tokens = self.id_embedding_mapping(id_vector).view(len(id_vector), c.id_tokens, c.encoder_dim)
        latents = torch.cat([self.latents.to(id_tokens).expand(len(id_vector), -1, -1), id_tokens], dim=1)
        per_scale = c.encoder_depth // VIT_SCALES
        for scale, hidden in enumerate(vit_hidden):
            context = torch.cat([id_tokens, getattr(self, f"mapping_{scale}")(hidden)], dim=1)
            for attention, feed_forward in self.layers[scale * per_scale : (scale + 1) * per_scale]:
                latents = latents + attention(context, latents)
                latents = latents + feed_forward(latents)
        return latents[:, : c.queries] @ self.proj_out.to(latents)


class PerceiverAttentionCA(nn.Module):
    """One injected cross-attention (`pulid_ca.<i>`): image tokens query the ID tokens; returns the update."""

    def __init__(self, config: AdapterConfig, ops=nn):
        super().__init__()
        self.norm1 = ops.LayerNorm(config.token_dim)
        self.norm2 = ops.LayerNorm(config.flux_dim)
        self.to_q = ops.Linear(config.flux_dim, config.cross_attention_inner, bias=False)
        self.to_kv = ops.Linear(config.token_dim, config.cross_attention_inner * 2, bias=False)
        self.to_out = ops.Linear(config.cross_attention_inner, config.flux_dim, bias=False)

    def forward(self, id_tokens: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        keys, values = self.to_kv(self.norm1(id_tokens)).chunk(2, dim=-1)
        return self.to_out(_attend(self.to_q(self.norm2(image)), keys, values, CROSS_ATTENTION_HEAD_DIM))


class PuLIDFlux(nn.Module):
    """The whole file: `pulid_encoder` and `pulid_ca`."""

    def __init__(self, config: AdapterConfig, ops=nn):
        super().__init__()
        self.config = config
        self.pulid_encoder = IDFormer(config, ops)
        self.pulid_ca = nn.ModuleList(PerceiverAttentionCA(config, ops) for _ in range(config.cross_attentions))
