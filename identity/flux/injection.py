"""ID injection through ComfyUI's block-replacement patches (`set_model_patch_replace(fn, "dit", …)`).

After each block PuLID-Flux was trained on (double blocks 0, 2, 4, …; single blocks 0, 4, 8, …), every subject's
cross-attention adds `weight × mask × ca(id_tokens, image_tokens)` to the image tokens of the image being made:
text tokens and reference-latent tokens stay as the block left them, and a subject with a region changes only
the image tokens inside it. A diffusion-model wrapper runs once per model call: it reads the latent's size (for
the token grid), the text length and the current sigma, and decides whether the injection is active at all, so
that outside start/end (or at weight 0) every patch returns the block's own output untouched.

This module speaks ComfyUI's patch conventions (`args`/`extra` dicts, wrapper executors) without importing it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsMismatch
from .adapter import AdapterConfig

#: A cross-attention after every 2nd double block and every 4th single block: PuLID's Flux model
#: (`pulid_double_interval = 2`, `pulid_single_interval = 4`), which the published adapter was trained with.
DOUBLE_INTERVAL = 2
SINGLE_INTERVAL = 4
#: `transformer_options` key under which the wrapper leaves each injection's per-call state.
STATE_KEY = "identity_flux"
#: ComfyUI's wrapper type around the diffusion model's forward (`comfy.patcher_extension.WrappersMP`).
DIFFUSION_MODEL_WRAPPER = "diffusion_model"
#: ComfyUI's wrapper type around the batching of conds (`WrappersMP.CALC_COND_BATCH`): it sees each cond's area.
COND_BATCH_WRAPPER = "calc_cond_batch"
#: `transformer_options` key under which that wrapper leaves `{cond uuid: (area, latent height, width)}`.
AREAS_KEY = "identity_flux_areas"


@dataclass(frozen=True)
class Placement:
    """A cross-attention after one block: `block` is "double_block" or "single_block"."""

    block: str
    index: int
    cross_attention: int


#: ComfyUI's model classes (`comfy/model_base.py`) that PuLID-Flux was trained for: FLUX.1 dev, schnell, Fill and
#: Kontext all load as `Flux`; its subclasses (Flux2, Chroma, LongCatImage) and look-alikes such as HunyuanVideo
#: (width 3072, 20 double and 40 single blocks: it passes the shape check, then fails at the first step) do not.
FLUX1_CLASSES = ("Flux",)


def check_flux1(model: object) -> None:
    """Refuses a MODEL that is not FLUX.1 by its class, before any block is patched."""
    name = type(model).__name__
    if name not in FLUX1_CLASSES:
        raise WeightsMismatch(
            f"PuLID-Flux works on FLUX.1 models (dev, schnell, Fill, Kontext); this MODEL is ComfyUI's {name}: "
            "connect a FLUX.1 model, or use Identity Condition (Reference) for FLUX.2 and Qwen-Image-Edit"
        )


def placements(config: AdapterConfig, hidden_size: int, double_blocks: int, single_blocks: int) -> list[Placement]:
    """Where each of the adapter's cross-attentions goes in a Flux with these sizes; an error if it does not fit."""
    doubles = range(0, double_blocks, DOUBLE_INTERVAL)
    singles = range(0, single_blocks, SINGLE_INTERVAL)
    if hidden_size != config.flux_dim or len(doubles) + len(singles) != config.cross_attentions:
        raise WeightsMismatch(
            f"this PuLID-Flux adapter fits a Flux of width {config.flux_dim} with {config.cross_attentions} "
            f"cross-attention places (Flux.1: width 3072, 19 double and 38 single blocks, 20 places); the model has "
            f"width {hidden_size}, {double_blocks} double and {single_blocks} single blocks "
            f"({len(doubles) + len(singles)} places): use a Flux.1 model, or Identity Condition (Reference) for "
            "FLUX.2 and Qwen-Image-Edit"
        )
    return [Placement("double_block", i, n) for n, i in enumerate(doubles)] + [
        Placement("single_block", i, len(doubles) + n) for n, i in enumerate(singles)
    ]


@dataclass
class Subject:
    """One person: ID tokens `[1, Q, D]` and a region `[H, W]` in 0..1 over the image (None: everywhere).

    With `uncond` tokens (true CFG, as the official pipeline), the negative half of a CFG batch gets those
    (the encoder's output for no identity) instead; without, both halves get the person, as the ComfyUI ports do.
    """

    tokens: torch.Tensor
    region: torch.Tensor | None = None
    uncond: torch.Tensor | None = None


@dataclass
class Step:
    """What one model call needs: where the generated image's tokens are, and each subject's token weights."""

    text_tokens: int
    image_tokens: int
    masks: list[torch.Tensor | None]  # per subject `[1 or B, image_tokens, 1]`, or None for all tokens
    uncond_rows: torch.Tensor | None = None  # `[B, 1, 1]` bool: the batch rows of the negative prompt


def token_mask(region: torch.Tensor, rows: int, columns: int, like: torch.Tensor) -> torch.Tensor:
    """A region `[H, W]` averaged over each token's patch → `[1, rows·columns, 1]` in `like`'s dtype and device."""
    cells = F.adaptive_avg_pool2d(region[None, None].float(), (rows, columns))
    return cells.reshape(1, rows * columns, 1).to(like)


def area_of(region: torch.Tensor, area: tuple | None) -> torch.Tensor:
    """The part of a whole-image region under a cond's area: ComfyUI runs such a cond on that crop of the latent.

    `area` is `(area list, latent height, latent width)`, the list as `get_area_and_mult` reads it (sizes then
    offsets, its last two dims the latent's rows and columns), clipped to the latent as it clips it."""
    if area is None:
        return region
    box, height, width = area
    dims = len(box) // 2
    rows, columns, top, left = box[dims - 2], box[dims - 1], box[-2], box[-1]
    rows, columns = min(rows, height - top), min(columns, width - left)
    scale_y, scale_x = region.shape[0] / height, region.shape[1] / width
    y0, x0 = round(top * scale_y), round(left * scale_x)
    return region[y0 : max(y0 + 1, round((top + rows) * scale_y)), x0 : max(x0 + 1, round((left + columns) * scale_x))]


class Injection:
    """One Identity Condition's patches: the adapter's cross-attentions, the subjects, weight and sigma range.

    Immutable once made. ComfyUI deep-copies model options whenever a model is cloned; the injection and its
    patches are shared instead (they hold the adapter's weights).
    """

    def __init__(
        self,
        cross_attentions: nn.ModuleList,
        subjects: list[Subject],
        weight: float,
        sigma_start: float,
        sigma_end: float,
    ):
        self.cross_attentions = cross_attentions
        self.subjects = subjects
        self.weight = float(weight)
        # The sampler's sigmas are float32; PuLID compares them with its bounds in float32 (`sigma_start >=
        # timesteps`, a Python float against a float32 tensor). Rounded here, a bound equal to a step's sigma
        # in float32 includes that step, as there (the float64 bound can sit just below it: one step late).
        self.sigma_start = float(torch.tensor(sigma_start, dtype=torch.float32))
        self.sigma_end = float(torch.tensor(sigma_end, dtype=torch.float32))
        self.id = uuid.uuid4().hex
        self._tokens: dict[tuple, list[tuple[torch.Tensor, torch.Tensor | None]]] = {}

    def __deepcopy__(self, memo) -> Injection:
        return self

    def active(self, sigma: float) -> bool:
        return self.weight != 0.0 and self.sigma_end <= sigma <= self.sigma_start

    # ----- the diffusion-model wrapper ---------------------------------------------------------------------

    def wrapper(self, executor, x: torch.Tensor, *args, **kwargs):
        """Around the diffusion model's forward `(x, timestep, context, …, transformer_options)`: adds this
        injection's `Step` to (a copy of) the transformer options when it is active for the current sigma."""
        options = args[-1]
        sigmas = options.get("sigmas")  # absent outside sampling: then only the weight decides
        if not self.active(self.sigma_start if sigmas is None else float(sigmas.max())):
            return executor(x, *args, **kwargs)
        patch = getattr(executor.class_obj, "patch_size", 1)
        rows, columns = ((side + patch // 2) // patch for side in x.shape[-2:])
        step = Step(
            text_tokens=args[1].shape[1],
            image_tokens=rows * columns,
            masks=[None if s.region is None else self.mask(s.region, rows, columns, x, options) for s in self.subjects],
            uncond_rows=self.uncond_rows(options, len(x), x.device),
        )
        options = {**options, STATE_KEY: {**options.get(STATE_KEY, {}), self.id: step}}
        return executor(x, *args[:-1], options, **kwargs)

    def mask(self, region: torch.Tensor, rows: int, columns: int, x: torch.Tensor, options: dict) -> torch.Tensor:
        """The region on this call's token grid; per batch row when a cond of the batch covers only an area."""
        areas = options.get(AREAS_KEY, {})
        chunks = [areas.get(uuid) for uuid in options.get("uuids", ())]
        if not any(chunks):
            return token_mask(region, rows, columns, x)
        per_chunk = [token_mask(area_of(region, area), rows, columns, x) for area in chunks]
        return torch.cat(per_chunk).repeat_interleave(len(x) // len(chunks), dim=0)

    def areas(self, executor, model, conds: list, x_in: torch.Tensor, timestep, model_options: dict):
        """Around ComfyUI's cond batching: records each cond's area, for `mask`, in the transformer options."""
        areas = {
            cond["uuid"]: (list(cond["area"]), x_in.shape[-2], x_in.shape[-1])
            for group in conds
            if group
            for cond in group
            if cond.get("area") is not None
        }
        if areas:
            options = {**model_options.get("transformer_options", {}), AREAS_KEY: areas}
            model_options = {**model_options, "transformer_options": options}
        return executor(model, conds, x_in, timestep, model_options)

    def uncond_rows(self, options: dict, batch: int, device) -> torch.Tensor | None:
        """Which rows of this call's batch belong to the negative prompt, when some subject has uncond tokens:
        ComfyUI batches CFG's halves in equal chunks and lists them in `cond_or_uncond` (1: negative)."""
        chunks = options.get("cond_or_uncond")
        if not chunks or 1 not in chunks or all(s.uncond is None for s in self.subjects):
            return None
        rows = torch.tensor([kind == 1 for kind in chunks], device=device).repeat_interleave(batch // len(chunks))
        return rows[:, None, None]

    # ----- the block patches -------------------------------------------------------------------------------

    def patch(self, placement: Placement, previous=None) -> BlockPatch:
        """The replacement for `placement`'s block; `previous` is a replacement already there (it runs first)."""
        return BlockPatch(self, placement, previous)

    def tokens(self, like: torch.Tensor, uncond_rows: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each subject's tokens in `like`'s dtype and device; per batch row `[B, Q, D]` when rows are uncond."""
        key = (like.device, like.dtype)
        if key not in self._tokens:
            self._tokens[key] = [
                (s.tokens.to(like), None if s.uncond is None else s.uncond.to(like)) for s in self.subjects
            ]
        if uncond_rows is None:
            return [tokens for tokens, _ in self._tokens[key]]
        return [
            tokens if uncond is None else torch.where(uncond_rows, uncond, tokens)
            for tokens, uncond in self._tokens[key]
        ]

    def inject(self, cross_attention: int, img: torch.Tensor, start: int, step: Step) -> torch.Tensor:
        """`img` with the generated image's tokens (`start`…`start + image_tokens`) updated by every subject."""
        end = start + step.image_tokens
        image = img[:, start:end]
        attention = self.cross_attentions[cross_attention]
        update = None
        for tokens, mask in zip(self.tokens(image, step.uncond_rows), step.masks):
            change = attention(tokens, image)
            change = change if mask is None else change * mask
            update = change if update is None else update + change
        image = image + self.weight * update
        if start == 0 and end == img.shape[1]:
            return image
        return torch.cat([img[:, :start], image, img[:, end:]], dim=1)


class BlockPatch:
    """`fn(args, extra) -> dict` for one block: run the block (or the patch before us), then inject."""

    def __init__(self, injection: Injection, placement: Placement, previous=None):
        self.injection = injection
        self.placement = placement
        self.previous = previous

    def __deepcopy__(self, memo) -> BlockPatch:
        return self

    def __call__(self, args: dict, extra: dict) -> dict:
        out = self.previous(args, extra) if self.previous is not None else extra["original_block"](args)
        step = args.get("transformer_options", {}).get(STATE_KEY, {}).get(self.injection.id)
        if step is None:
            return out
        start = step.text_tokens if self.placement.block == "single_block" else 0
        return {**out, "img": self.injection.inject(self.placement.cross_attention, out["img"], start, step)}


def attach(model, injection: Injection, where: list[Placement]):
    """A clone of the ComfyUI `ModelPatcher` `model` with the injection's block patches and wrapper.

    `model` itself is untouched. A replacement another node already put on one of these blocks keeps running,
    before the injection.
    """
    patched = model.clone()
    existing = patched.model_options["transformer_options"].get("patches_replace", {}).get("dit", {})
    for placement in where:
        previous = existing.get((placement.block, placement.index))
        patched.set_model_patch_replace(injection.patch(placement, previous), "dit", placement.block, placement.index)
    patched.add_wrapper_with_key(DIFFUSION_MODEL_WRAPPER, STATE_KEY, injection.wrapper)
    if any(s.region is not None for s in injection.subjects):
        patched.add_wrapper_with_key(COND_BATCH_WRAPPER, STATE_KEY, injection.areas)
    return patched
