"""`python -m identity weights FILE…`: what each model file is, and whether this pack would load it.

The tensor files get the very checks the loaders run (`flux.weights.check_*`), so a node that refuses a file and
this report say the same thing. insightface ONNX files are told apart by their graphs (a recognizer maps a
112×112 face to a vector, a detector has score/box/landmark heads) and named by their published digests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .digests import KNOWN_ONNX, sha256
from .errors import IdentityError
from .faces.insightface_pack import role
from .faces.onnx_signature import signature
from .flux import EVA02_CLIP_L_14_336, PULID_FLUX_V09
from .flux.weights import ROPE, check_eva, check_parsing, check_pulid, read_tensors

#: SCRFD/RetinaFace output counts with keypoints: scores, boxes and 5 landmarks at 3 or 5 strides.
SCRFD_OUTPUTS_WITH_LANDMARKS = (9, 15)
TENSOR_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


@dataclass(frozen=True)
class FileReport:
    path: Path
    what: str  # what the file is, as far as it can be told
    problem: str = ""  # why it would not load; empty when it would

    @property
    def loads(self) -> bool:
        return not self.problem

    def line(self) -> str:
        verdict = "loads" if self.loads else f"would NOT load: {self.problem}"
        return f"{self.path}: {self.what}; {verdict}"


def inspect(path: Path) -> FileReport:
    """One file's report; never raises for a bad file (that is what the report is for)."""
    path = Path(path)
    if not path.is_file():
        return FileReport(path, "no such file", "the path does not name a file")
    try:
        if path.suffix == ".onnx":
            return _onnx(path)
        if path.suffix in TENSOR_SUFFIXES:
            return _tensors(path)
    except IdentityError as exc:
        return FileReport(path, "unreadable", str(exc))
    return FileReport(path, "not a model file", f"expected one of {', '.join(TENSOR_SUFFIXES)} or .onnx")


def _tensors(path: Path) -> FileReport:
    tensors = read_tensors(path, shapes_only=True)
    if "pulid_encoder.latents" in tensors:
        version = re.search(r"v0\.9\.[01]", path.name)
        what = "PuLID-Flux adapter"
        try:
            config = check_pulid(tensors, path)
        except IdentityError as exc:
            return FileReport(path, what, str(exc))
        if config == PULID_FLUX_V09:
            return FileReport(
                path, f"{what}, {version.group(0) if version else 'v0.9.0/v0.9.1'} layout ({len(tensors)} tensors)"
            )
        return FileReport(
            path, f"{what} at other sizes ({config.cross_attentions} cross-attentions, Flux width {config.flux_dim})"
        )
    if any(k in tensors for k in ("visual.pos_embed", "pos_embed")) and any("attn.q_proj" in k for k in tensors):
        whole = "visual.pos_embed" in tensors
        what = f"EVA02-CLIP {'checkpoint (vision and text towers)' if whole else 'vision tower'}"
        try:
            config, _ = check_eva(tensors, path)
        except IdentityError as exc:
            return FileReport(path, what, str(exc))
        rope = "with" if any(ROPE.fullmatch(k.removeprefix("visual.")) for k in tensors) else "without"
        variant = (
            "EVA02-CLIP-L-14-336"
            if config == EVA02_CLIP_L_14_336
            else (f"{config.image_size} px, width {config.width}, {config.depth} blocks")
        )
        return FileReport(path, f"{what}, {variant}, {rope} rope buffers")
    if any(k.startswith("cp.resnet.") for k in tensors):
        what = "BiSeNet face parsing (facexlib parsing_bisenet.pth layout)"
        try:
            check_parsing(tensors, path)
        except IdentityError as exc:
            return FileReport(path, what, str(exc))
        return FileReport(path, what)
    return FileReport(
        path,
        f"unknown tensor file ({len(tensors)} tensors)",
        "not a PuLID-Flux adapter, EVA-CLIP checkpoint or face-parsing file",
    )


def _onnx(path: Path) -> FileReport:
    found = signature(path)
    if found is None:
        return FileReport(path, "unreadable ONNX file", "not an ONNX model (empty, truncated or another format)")
    known = KNOWN_ONNX.get(sha256(path))
    kind = role(path)
    if kind == "recognizer":
        size = found.outputs[0][-1] if found.outputs[0] else None
        what = (
            known
            or f"insightface-style face recognizer ({size or '?'}-d embeddings; "
            "not antelopev2's glintr100, so PuLID-Flux refuses it unless allowed on PuLID-Flux Load)"
        )
        return FileReport(path, what)
    if kind == "detector":
        landmarks = len(found.outputs) in SCRFD_OUTPUTS_WITH_LANDMARKS
        what = known or f"insightface-style face detector ({'with' if landmarks else 'without'} 5 landmarks)"
        return FileReport(path, what, "" if landmarks else "it gives no facial landmarks; use an SCRFD *_kps detector")
    return FileReport(
        path,
        "ONNX model that is neither a face detector nor a recognizer",
        "only a pack's detector and recognizer are used (landmark, gender/age models are not)",
    )


def run(paths: list[Path]) -> int:
    """Print one line per file; 0 when every file would load, 1 otherwise."""
    reports = [inspect(path) for path in paths]
    for report in reports:
        print(report.line())
    return 0 if all(r.loads for r in reports) else 1
