"""Loading the adapter's weight files strictly: every tensor the model has, at its shape, and nothing else.

The PuLID-Flux adapter, the EVA-CLIP tower its encoder reads, and the face-parsing network that prepares that
tower's input. The `check_*` functions are the whole verdict on a file; `python -m identity weights` runs them
too, so the CLI and a node that refuses a file say the same thing.

Sizes are read from a few anchor tensors, so a scaled-down adapter (the tests build those) loads through the same
path as the published one (`adapter.PULID_FLUX_V09`, `eva_clip.EVA02_CLIP_L_14_336`); whatever the sizes, each
key is then checked against the model built from them. Only tensors are ever read: safetensors, or a `.pt`
through `torch.load(weights_only=True)` (EVA-CLIP ships one), never pickled code.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from ..cache import BoundedCache
from ..errors import ModelFilesMissing, WeightsMismatch
from .adapter import AdapterConfig, PuLIDFlux
from .eva_clip import HEAD_DIM, EvaConfig, EvaVisionTower
from .parsing import BiSeNet

PULID_FILE = "pulid_flux_v0.9.1.safetensors"  # or v0.9.0: the same layout
PULID_SOURCE = "Hugging Face guozinan/PuLID"
EVA_FILE = "EVA02_CLIP_L_336_psz14_s6B.pt"
EVA_SOURCE = "Hugging Face QuanSun/EVA-CLIP"
PARSING_FILE = "parsing_bisenet.pth"
PARSING_SOURCE = "facexlib release v0.2.0"
#: Problems listed per kind in an error before "and N more".
SHOWN = 5


def missing_weights(what: str, folder: Path, name: str, source: str) -> ModelFilesMissing:
    return ModelFilesMissing(f"no {what} weights found: put {name} ({source}) in {folder}")


def require_file(path: Path, what: str, name: str, source: str) -> Path:
    """`path`, or a `ModelFilesMissing` naming the file and the folder it belongs in."""
    path = Path(path)
    if not path.is_file():
        raise ModelFilesMissing(f"{what} weights not found: {path} is missing; put {name} ({source}) in {path.parent}")
    return path


def read_tensors(path: Path, shapes_only: bool = False) -> dict[str, torch.Tensor]:
    """Every tensor in a safetensors file, or in a `.pt`/`.pth` state dict (loaded with `weights_only`, memory-
    mapped); with `shapes_only`, a safetensors file's tensors are meta tensors read from its header alone."""
    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as handle:
                if not shapes_only:
                    return {key: handle.get_tensor(key) for key in handle.keys()}
                return {key: torch.empty(handle.get_slice(key).get_shape(), device="meta") for key in handle.keys()}
        except Exception as exc:  # safetensors raises its own types for damaged headers
            raise WeightsMismatch(f"{path} is not a readable safetensors file ({exc}); re-download it") from None
    try:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # an old-style (non-zip) file cannot be memory-mapped
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsMismatch(
            f"{path} holds more than tensors, and pickled code is never run: use a "
            f".safetensors or plain state-dict file ({str(exc).splitlines()[0]})"
        ) from None
    except (EOFError, RuntimeError) as exc:  # empty, truncated or not a torch file at all
        raise WeightsMismatch(
            f"{path} is not a readable state-dict file ({str(exc).splitlines()[0] if str(exc) else 'empty'}); "
            "re-download it"
        ) from None
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
    if not isinstance(loaded, dict):
        raise WeightsMismatch(f"{path} holds no state dict of tensors")
    return {key.removeprefix("module."): value for key, value in loaded.items() if isinstance(value, torch.Tensor)}


def _shape(tensors: dict[str, torch.Tensor], key: str, path: Path, kind: str) -> tuple[int, ...]:
    if key not in tensors:
        raise WeightsMismatch(f"{path} is not {kind} file: it has no tensor '{key}'")
    return tuple(tensors[key].shape)


def _count(tensors: dict[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return 1 + max((int(m.group(1)) for m in map(pattern.match, tensors) if m), default=-1)


def shapes_of(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _listing(label: str, items: list[str]) -> str:
    """ "label: a, b, c, d, e and N more"."""
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return f"{label}: {', '.join(items[:SHOWN])}{more}"


def check_shapes(expected: dict[str, tuple[int, ...]], tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Raise `WeightsMismatch` naming every missing, unexpected and mis-shaped key (a few of each)."""
    missing = [f"'{k}'" for k in expected if k not in tensors]
    unexpected = [f"'{k}'" for k in tensors if k not in expected]
    misshaped = [
        f"'{k}' should be {list(expected[k])} but is {list(tensors[k].shape)}"
        for k in expected
        if k in tensors and tuple(tensors[k].shape) != expected[k]
    ]
    found = [
        _listing(label, items)
        for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
        if items
    ]
    if found:
        raise WeightsMismatch(
            f"{path} does not match the model it is loaded into ({'; '.join(found)}); re-download the file"
        )


def _build(make, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """`make()`'s model holding `tensors` (already checked), without a first, throw-away initialisation."""
    with torch.device("meta"):
        model = make()
    model.load_state_dict(tensors, strict=True, assign=True)
    return model.eval().requires_grad_(False)


def _expected(make) -> dict[str, tuple[int, ...]]:
    """The tensor shapes of `make()`'s model, built on the meta device (no memory, no initialisation)."""
    with torch.device("meta"):
        return shapes_of(make())


# ----- PuLID-Flux -------------------------------------------------------------------------------------------


def adapter_config(tensors: dict[str, torch.Tensor], path: Path) -> AdapterConfig:
    """The sizes a PuLID-Flux file was made with, from its anchor tensors."""
    kind = "a PuLID-Flux"
    _, queries, encoder_dim = _shape(tensors, "pulid_encoder.latents", path, kind)
    token_dim = _shape(tensors, "pulid_encoder.proj_out", path, kind)[1]
    mlp_dim, id_input = _shape(tensors, "pulid_encoder.id_embedding_mapping.0.weight", path, kind)
    id_rows = _shape(tensors, "pulid_encoder.id_embedding_mapping.6.weight", path, kind)[0]
    vit_dim = _shape(tensors, "pulid_encoder.mapping_0.0.weight", path, kind)[1]
    encoder_inner = _shape(tensors, "pulid_encoder.layers.0.0.to_q.weight", path, kind)[0]
    ff_rows = _shape(tensors, "pulid_encoder.layers.0.1.1.weight", path, kind)[0]
    cross_inner, flux_dim = _shape(tensors, "pulid_ca.0.to_q.weight", path, kind)
    try:
        return AdapterConfig(
            flux_dim=flux_dim,
            token_dim=token_dim,
            cross_attention_inner=cross_inner,
            cross_attentions=_count(tensors, "pulid_ca."),
            encoder_dim=encoder_dim,
            encoder_inner=encoder_inner,
            encoder_depth=_count(tensors, "pulid_encoder.layers."),
            ff_mult=ff_rows // encoder_dim,
            id_tokens=id_rows // encoder_dim,
            queries=queries,
            mlp_dim=mlp_dim,
            vit_dim=vit_dim,
            id_input=id_input,
        )
    except ValueError as exc:
        raise WeightsMismatch(f"{path} is not a usable PuLID-Flux file ({exc})") from None


def check_pulid(tensors: dict[str, torch.Tensor], path: Path) -> AdapterConfig:
    """The file's sizes, once every tensor is found at its shape (else `WeightsMismatch` naming them)."""
    config = adapter_config(tensors, path)
    check_shapes(_expected(lambda: PuLIDFlux(config, nn)), tensors, path)
    return config


def load_pulid(path: Path, ops=nn) -> PuLIDFlux:
    """The adapter in `path` (its file dtype, on the CPU), loaded strictly."""
    path = require_file(path, "PuLID-Flux", PULID_FILE, PULID_SOURCE)
    tensors = read_tensors(path)
    config = check_pulid(tensors, path)
    return _build(lambda: PuLIDFlux(config, ops), tensors)


# ----- EVA-CLIP ---------------------------------------------------------------------------------------------

#: Keys of a whole EVA-CLIP checkpoint beside its vision tower: the text tower and the logit scale (not loaded).
TEXT_TOWER = ("text.", "logit_scale")
#: The rotary tables EVA-CLIP registers as buffers, once for the tower and once per block (the reference's
#: loader drops them and recomputes them, so files may hold them or not; when present, all must be).
ROPE = re.compile(r"(blocks\.\d+\.attn\.)?rope\.freqs_(cos|sin)")


def vision_tensors(tensors: dict[str, torch.Tensor], path: Path | str = "") -> dict[str, torch.Tensor]:
    """The vision tower of an EVA-CLIP file (a whole checkpoint's `visual.` part, or a tower alone), rope
    buffers included; anything beside the tower that is not the text tower is refused by name."""
    if not any(key.startswith("visual.") for key in tensors):
        return tensors
    strays = [f"'{k}'" for k in tensors if not k.startswith(("visual.", *TEXT_TOWER))]
    if strays:
        raise WeightsMismatch(
            f"{path} is not an EVA-CLIP checkpoint ({_listing('unexpected', strays)}); re-download the file"
        )
    return {key[len("visual.") :]: value for key, value in tensors.items() if key.startswith("visual.")}


def rope_shapes(config: EvaConfig) -> dict[str, tuple[int, ...]]:
    """The rotary buffers' names and shapes for a tower of `config`: `[grid², head width]` each."""
    shape = (config.grid**2, HEAD_DIM)
    names = ["rope"] + [f"blocks.{i}.attn.rope" for i in range(config.depth)]
    return {f"{name}.freqs_{part}": shape for name in names for part in ("cos", "sin")}


def eva_config(tensors: dict[str, torch.Tensor], path: Path) -> EvaConfig:
    """The sizes of an EVA02 vision tower, from its anchor tensors."""
    kind = "an EVA02-CLIP"
    width, _, patch, _ = _shape(tensors, "patch_embed.proj.weight", path, kind)
    positions = _shape(tensors, "pos_embed", path, kind)[1]
    grid = round((positions - 1) ** 0.5)
    try:
        return EvaConfig(
            image_size=grid * patch,
            patch_size=patch,
            width=width,
            depth=_count(tensors, "blocks."),
            mlp_dim=_shape(tensors, "blocks.0.mlp.w1.weight", path, kind)[0],
            embed_dim=_shape(tensors, "head.weight", path, kind)[0],
        )
    except ValueError as exc:
        raise WeightsMismatch(f"{path} is not a usable EVA02-CLIP vision tower ({exc})") from None


def check_eva(tensors: dict[str, torch.Tensor], path: Path) -> tuple[EvaConfig, dict[str, torch.Tensor]]:
    """The tower's sizes and its tensors without the rope buffers, once the file's vision tower is complete:
    every tensor at its shape, and either no rope buffers or all of them."""
    tensors = vision_tensors(tensors, path)
    config = eva_config(tensors, path)
    expected = _expected(lambda: EvaVisionTower(config, nn))
    if any(ROPE.fullmatch(k) for k in tensors):
        expected.update(rope_shapes(config))
    check_shapes(expected, tensors, path)
    return config, {k: v for k, v in tensors.items() if not ROPE.fullmatch(k)}


def load_eva(path: Path, ops=nn) -> EvaVisionTower:
    """The EVA02-CLIP vision tower in `path` (a whole EVA-CLIP checkpoint or its `visual.` part), strictly."""
    path = require_file(path, "EVA-CLIP", EVA_FILE, EVA_SOURCE)
    config, tensors = check_eva(read_tensors(path), path)
    return _build(lambda: EvaVisionTower(config, ops), tensors)


# ----- face parsing -----------------------------------------------------------------------------------------


def check_parsing(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Every tensor of facexlib's BiSeNet at its shape, and nothing else."""
    _shape(tensors, "cp.resnet.conv1.weight", path, "a BiSeNet face-parsing")
    check_shapes(_expected(BiSeNet), tensors, path)


def load_parsing(path: Path) -> BiSeNet:
    """facexlib's `parsing_bisenet.pth` (a weights-only read), strictly, on the CPU in float32."""
    path = require_file(path, "face-parsing", PARSING_FILE, PARSING_SOURCE)
    tensors = read_tensors(path)
    check_parsing(tensors, path)
    return _build(BiSeNet, {k: v if v.dtype == torch.int64 else v.float() for k, v in tensors.items()})


# ----- both -------------------------------------------------------------------------------------------------

#: Profiles' ID tokens an adapter keeps (one set is `queries × token_dim` floats, 128 kB for PuLID-Flux).
ID_TOKEN_SETS = 32


@dataclass
class FluxAdapter:
    """A PuLID-Flux adapter and the EVA-CLIP tower its encoder reads.

    `parser` whitens the encoder's faces as PuLID does (None: a fixed face ellipse does, see `faces`);
    `any_recognizer` lets another ArcFace than antelopev2's glintr100 feed the encoder. `tokens` holds the
    profiles' ID tokens it computed (see `tokens.profile_tokens`).
    """

    pulid: PuLIDFlux
    eva: EvaVisionTower
    parser: BiSeNet | None = None
    any_recognizer: bool = False
    tokens: BoundedCache = field(default_factory=lambda: BoundedCache(ID_TOKEN_SETS), repr=False, compare=False)

    @property
    def config(self) -> AdapterConfig:
        return self.pulid.config

    @property
    def cross_attentions(self) -> nn.Module:
        """The modules that inject the ID tokens into Flux's blocks (PuLID's `pulid_ca`)."""
        return self.pulid.pulid_ca

    @property
    def arcface_dim(self) -> int:
        """The ArcFace embedding size the encoder was trained on (512: antelopev2's glintr100)."""
        return self.config.id_input - self.eva.config.embed_dim


def load_adapter(
    pulid_path: Path, eva_path: Path, ops=nn, parser: BiSeNet | None = None, any_recognizer: bool = False
) -> FluxAdapter:
    """Both files, strictly, and a check that the encoder reads this EVA tower's features (see `FluxAdapter`)."""
    pulid, eva = load_pulid(pulid_path, ops), load_eva(eva_path, ops)
    if pulid.config.vit_dim != eva.config.width or pulid.config.id_input <= eva.config.embed_dim:
        raise WeightsMismatch(
            f"{Path(pulid_path).name} reads {pulid.config.vit_dim}-wide EVA-CLIP features and a "
            f"{pulid.config.id_input}-long ID vector, but {Path(eva_path).name} is {eva.config.width} wide with "
            f"{eva.config.embed_dim}-long embeddings: use {EVA_FILE}"
        )
    return FluxAdapter(pulid, eva, parser, any_recognizer)
