"""The EVA02-CLIP vision tower (EVA02-CLIP-L-14-336 for PuLID-Flux) in plain torch, as the ID encoder reads it.

PuLID feeds its encoder the tower's class embedding (after the final norm and head) and the hidden states that
enter blocks 4, 8, 12, 16 and 20. Parameter names follow the EVA-CLIP checkpoints' `visual.` tower
(`blocks.<i>.attn.q_proj`, `q_bias`, `inner_attn_ln`, SwiGLU `mlp.w1/w2/ffn_ln/w3`, …). The 2-D rotary position
embedding is computed here rather than read (EVA-CLIP also stores it, as `rope.freqs_cos/sin` buffers).

EVA02: pre-norm blocks, LayerNorm eps 1e-6, separate q/k/v projections with q and v biases, a LayerNorm inside
attention and inside the SwiGLU, rotary embedding on the patch tokens (not the class token), 64-wide heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

HEAD_DIM = 64
EPS = 1e-6
#: Inputs of these blocks are the hidden states PuLID's encoder reads.
HIDDEN_STATE_BLOCKS = (4, 8, 12, 16, 20)
#: The grid the rotary embedding was pre-trained on (224 / 14); larger grids interpolate into it.
ROPE_PRETRAIN_GRID = 16
ROPE_THETA = 10000.0
#: CLIP's pixel normalisation (EVA-CLIP uses OpenAI's).
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class EvaConfig:
    """Sizes of an EVA02 vision tower; the defaults are EVA02-CLIP-L-14-336."""

    image_size: int = 336
    patch_size: int = 14
    width: int = 1024
    depth: int = 24
    mlp_dim: int = 2730  # int(1024 × 2.6667)
    embed_dim: int = 768  # the CLIP embedding (head output)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    def __post_init__(self):
        if self.width % HEAD_DIM or self.depth <= max(HIDDEN_STATE_BLOCKS) or self.image_size % self.patch_size:
            raise ValueError(f"not an EVA02 tower PuLID can read: {self}")


EVA02_CLIP_L_14_336 = EvaConfig()


def rotary_tables(grid: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`cos`, `sin` tables `[grid², head_dim]`: half the head rotates with the row, half with the column.

    Frequencies are the language-model ones over a quarter of the head, positions are rescaled to the
    pre-training grid, and each frequency is repeated for the two members of a rotated pair.
    """
    quarter = head_dim // 4
    frequencies = 1.0 / ROPE_THETA ** (torch.arange(0, 2 * quarter, 2, dtype=torch.float32) / (2 * quarter))
    positions = torch.arange(grid, dtype=torch.float32) / grid * ROPE_PRETRAIN_GRID
    angles = (positions[:, None] * frequencies[None, :]).repeat_interleave(2, dim=-1)  # [grid, head_dim/2]
    rows = angles[:, None, :].expand(grid, grid, -1)
    columns = angles[None, :, :].expand(grid, grid, -1)
    table = torch.cat([rows, columns], dim=-1).reshape(grid * grid, head_dim)
    return table.cos(), table.sin()


def _rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """(x0, x1, x2, x3, …) → (−x1, x0, −x3, x2, …)."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, ops, width: int):
        super().__init__()
        self.q_proj = ops.Linear(width, width, bias=False)
        self.k_proj = ops.Linear(width, width, bias=False)
        self.v_proj = ops.Linear(width, width, bias=False)
        self.q_bias = nn.Parameter(torch.empty(width))
        self.v_bias = nn.Parameter(torch.empty(width))
        self.inner_attn_ln = ops.LayerNorm(width, eps=EPS)
        self.proj = ops.Linear(width, width)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.unflatten(-1, (-1, HEAD_DIM)).transpose(1, 2)

        q = heads(self.q_proj(x) + self.q_bias.to(x))
        k = heads(self.k_proj(x))
        v = heads(self.v_proj(x) + self.v_bias.to(x))
        q, k = (torch.cat([t[:, :, :1], t[:, :, 1:] * cos + _rotate_pairs(t[:, :, 1:]) * sin], dim=2) for t in (q, k))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        return self.proj(self.inner_attn_ln(out))


class SwiGLU(nn.Module):
    def __init__(self, ops, width: int, hidden: int):
        super().__init__()
        self.w1 = ops.Linear(width, hidden)
        self.w2 = ops.Linear(width, hidden)
        self.ffn_ln = ops.LayerNorm(hidden, eps=EPS)
        self.w3 = ops.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w3(self.ffn_ln(F.silu(self.w1(x)) * self.w2(x)))


class Block(nn.Module):
    def __init__(self, ops, width: int, hidden: int):
        super().__init__()
        self.norm1 = ops.LayerNorm(width, eps=EPS)
        self.attn = Attention(ops, width)
        self.norm2 = ops.LayerNorm(width, eps=EPS)
        self.mlp = SwiGLU(ops, width, hidden)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, ops, config: EvaConfig):
        super().__init__()
        self.proj = ops.Conv2d(3, config.width, config.patch_size, stride=config.patch_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.proj(pixels).flatten(2).transpose(1, 2)


class EvaVisionTower(nn.Module):
    """Pixels `[B, 3, S, S]` (normalised with `MEAN`/`STD`) → class embedding `[B, E]` and five hidden states."""

    def __init__(self, config: EvaConfig = EVA02_CLIP_L_14_336, ops=nn):
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbed(ops, config)
        self.cls_token = nn.Parameter(torch.empty(1, 1, config.width))
        self.pos_embed = nn.Parameter(torch.empty(1, config.grid**2 + 1, config.width))
        self.blocks = nn.ModuleList(Block(ops, config.width, config.mlp_dim) for _ in range(config.depth))
        self.norm = ops.LayerNorm(config.width, eps=EPS)
        self.head = ops.Linear(config.width, config.embed_dim)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.patch_embed(pixels)
        x = torch.cat([self.cls_token.to(x).expand(len(x), -1, -1), x], dim=1) + self.pos_embed.to(x)
        cos, sin = (table.to(x) for table in rotary_tables(self.config.grid, HEAD_DIM))
        hidden = []
        for index, block in enumerate(self.blocks):
            if index in HIDDEN_STATE_BLOCKS:
                hidden.append(x)
            x = block(x, cos, sin)
        return self.head(self.norm(x)[:, 0]), hidden


def normalize(pixels: torch.Tensor, mean: tuple = MEAN, std: tuple = STD) -> torch.Tensor:
    """`[B, 3, H, W]` in 0..1 → a network's input, per-channel `mean`/`std` (default: this tower's)."""
    mean = torch.tensor(mean, dtype=pixels.dtype, device=pixels.device)[:, None, None]
    std = torch.tensor(std, dtype=pixels.dtype, device=pixels.device)[:, None, None]
    return (pixels - mean) / std
