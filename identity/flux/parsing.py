"""Face parsing (BiSeNet, 19 CelebAMask-HQ classes) in plain torch: what PuLID whitens before EVA-CLIP sees a face.

Parameter names are those of facexlib's `parsing_bisenet.pth` (`cp.resnet.*`, `cp.arm16.*`, `ffm.*`,
`conv_out*.*`), so the published file loads strictly. A ResNet-18 context path with two attention-refinement
heads, fused with its 1/8 features; only the main output is computed (the two auxiliary heads' weights are in the
file and kept, unused, as in inference with the reference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .eva_clip import normalize

CLASSES = 19
#: Labels PuLID turns white: background, neck, clothes, ears, earring, neck-lace, hat (hair and face stay).
WHITENED = (0, 16, 18, 7, 8, 9, 14, 15)
#: ImageNet normalisation, which the parsing network expects on 0..1 RGB.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class ConvBNReLU(nn.Module):
    def __init__(self, inputs: int, outputs: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(inputs, outputs, kernel, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample = None
        if inputs != outputs or stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        widths = (64, 64, 128, 256, 512)
        for index in range(1, 5):
            stride = 1 if index == 1 else 2
            setattr(
                self,
                f"layer{index}",
                nn.Sequential(
                    BasicBlock(widths[index - 1], widths[index], stride), BasicBlock(widths[index], widths[index])
                ),
            )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        eighth = self.layer2(self.layer1(x))
        sixteenth = self.layer3(eighth)
        return eighth, sixteenth, self.layer4(sixteenth)


def _global(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3), keepdim=True)


class AttentionRefinement(nn.Module):
    def __init__(self, inputs: int, outputs: int):
        super().__init__()
        self.conv = ConvBNReLU(inputs, outputs)
        self.conv_atten = nn.Conv2d(outputs, outputs, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv(x)
        return features * torch.sigmoid(self.bn_atten(self.conv_atten(_global(features))))


class ContextPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnet = ResNet18()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, kernel=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        eighth, sixteenth, thirty_second = self.resnet(x)
        pooled = self.conv_avg(_global(thirty_second))  # broadcast over the 1/32 grid
        up32 = self.conv_head32(F.interpolate(self.arm32(thirty_second) + pooled, sixteenth.shape[2:], mode="nearest"))
        up16 = self.conv_head16(F.interpolate(self.arm16(sixteenth) + up32, eighth.shape[2:], mode="nearest"))
        return eighth, up16


class FeatureFusion(nn.Module):
    def __init__(self, inputs: int, outputs: int):
        super().__init__()
        self.convblk = ConvBNReLU(inputs, outputs, kernel=1)
        self.conv1 = nn.Conv2d(outputs, outputs // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(outputs // 4, outputs, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        features = self.convblk(torch.cat([spatial, context], dim=1))
        attention = torch.sigmoid(self.conv2(F.relu(self.conv1(_global(features)))))
        return features * attention + features


class Output(nn.Module):
    def __init__(self, inputs: int, middle: int):
        super().__init__()
        self.conv = ConvBNReLU(inputs, middle)
        self.conv_out = nn.Conv2d(middle, CLASSES, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """RGB `[B, 3, H, W]` normalised with `MEAN`/`STD` → class logits `[B, 19, H, W]` (H, W multiples of 32)."""

    def __init__(self):
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = Output(256, 256)
        self.conv_out16 = Output(128, 64)  # auxiliary heads: trained with, not used for the labels
        self.conv_out32 = Output(128, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eighth, context = self.cp(x)
        logits = self.conv_out(self.ffm(eighth, context))
        return F.interpolate(logits, x.shape[2:], mode="bilinear", align_corners=True)


@torch.no_grad()
def whitened(parser: BiSeNet, pixels: torch.Tensor) -> torch.Tensor:
    """`[B, 1, H, W]` bool: where PuLID puts white (background, neck, clothes, ears, accessories)."""
    labels = parser(normalize(pixels, MEAN, STD)).argmax(dim=1, keepdim=True)
    return torch.isin(labels, torch.tensor(WHITENED, device=labels.device))
