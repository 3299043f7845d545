"""Deterministic stand-in weights for parity fixtures: the same values here and in the reference run.

The reference modules were run (outside this repository) with these weights on fixed inputs, and their inputs and
outputs were stored under `tests/data/flux/`. The weights are not stored: each tensor is a hash of its element
index and of its position in the state dict, computed in float64, so both sides rebuild identical values.
"""

from __future__ import annotations

import math

import torch


def _hash(count: int, salt: int) -> torch.Tensor:
    """`count` values spread over -0.5..0.5."""
    index = torch.arange(count, dtype=torch.float64)
    return torch.frac(torch.sin(index * 12.9898 + salt * 78.233) * 43758.5453).abs() - 0.5


def pattern_weights(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """float32 tensors for a state dict's names and shapes, in its order: layer-like scales, positive variances."""
    out = {}
    for salt, (name, shape) in enumerate(shapes.items()):
        count = math.prod(shape)
        values = _hash(count, salt).reshape(shape)
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[name] = torch.zeros(shape, dtype=torch.int64)
            continue
        if leaf == "running_var":
            values = 1.0 + values.abs()
        elif len(shape) == 1 and leaf == "weight":  # a norm's scale
            values = 1.0 + 0.2 * values
        elif len(shape) == 1:  # biases, norm shifts, running means
            values = 0.2 * values
        else:
            values = values * (2.0 * math.sqrt(3.0 / math.prod(shape[1:])))  # variance 1 / fan-in
        out[name] = values.float()
    return out
