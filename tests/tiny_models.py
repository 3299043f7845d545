"""Tiny random-weight models for the Flux identity tests: made here, never downloaded.

- PuLID-Flux adapters with the published key names at scaled-down sizes, and EVA-CLIP towers in the EVA-CLIP
  checkpoint layout (`visual.…`, with the text tower and rotary buffers a real file carries beside it);
- ComfyUI's own Flux class at toy sizes (in-process tests), and for the live server a Flux checkpoint that
  ComfyUI's loader recognises (it fixes the hidden size at 3072: one double and one single block, fp8), a
  CLIP-L text encoder (fp8) and TAEF1 VAE files.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch
from comfyui import COMFYUI
from safetensors.torch import save_file

from identity.flux.weights import shapes_of


def load_comfy():
    """ComfyUI's modules in this process (CPU), importable as `comfy.*` afterwards."""
    if not (COMFYUI / "comfy").is_dir():
        pytest.skip(
            f"no ComfyUI at {COMFYUI}: run bash scripts/setup.sh, or set IDENTITY_COMFYUI to a ComfyUI checkout"
        )
    if str(COMFYUI) not in sys.path:
        sys.path.append(str(COMFYUI))
    import comfy.cli_args

    comfy.cli_args.args.cpu = True


def random_state(shapes: dict[str, tuple], seed: int, std: float = 0.05) -> dict[str, torch.Tensor]:
    """Normal weights; LayerNorm-style scales (1-D '…weight'/'…scale' of norms) start at 1 so signals keep their size."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        value = torch.randn(shape, generator=generator) * std
        if len(shape) == 1 and ("norm" in key or "ln" in key.split(".")[-2]) and key.endswith(("weight", "scale")):
            value += 1.0
        state[key] = value
    return state


# ----- the adapter ------------------------------------------------------------------------------------------


def tiny_eva_config():
    from identity.flux import EvaConfig

    return EvaConfig(image_size=56, patch_size=14, width=64, depth=21, mlp_dim=170, embed_dim=24)


def tiny_adapter_config(flux_dim: int = 64, arcface_dim: int = 128, cross_attentions: int = 3, eva=None):
    """Scaled down in every size; depth 5 (one layer per EVA scale); 3 cross-attentions fit the toy Flux."""
    from identity.flux import AdapterConfig

    eva = eva or tiny_eva_config()
    return AdapterConfig(
        flux_dim=flux_dim,
        token_dim=32,
        cross_attention_inner=128,
        cross_attentions=cross_attentions,
        encoder_dim=64,
        encoder_inner=64,
        encoder_depth=5,
        ff_mult=2,
        id_tokens=2,
        queries=4,
        mlp_dim=48,
        vit_dim=eva.width,
        id_input=arcface_dim + eva.embed_dim,
    )


def adapter_state(config, seed: int = 0) -> dict[str, torch.Tensor]:
    from identity.flux import PuLIDFlux

    with torch.device("meta"):
        model = PuLIDFlux(config)
    return random_state(shapes_of(model), seed)


def eva_state(config=None, seed: int = 1) -> dict[str, torch.Tensor]:
    """An EVA-CLIP checkpoint's tensors: the `visual.` tower, rotary buffers, and a (tiny) text tower."""
    from identity.flux import EvaVisionTower

    config = config or tiny_eva_config()
    with torch.device("meta"):
        tower = EvaVisionTower(config)
    from identity.flux.weights import rope_shapes

    state = {f"visual.{k}": v for k, v in random_state(shapes_of(tower), seed).items()}
    state.update({f"visual.{k}": torch.zeros(shape) for k, shape in rope_shapes(config).items()})  # tower and blocks
    state.update({"text.token_embedding.weight": torch.zeros(10, 8), "logit_scale": torch.ones(())})
    return state


def write_adapter(
    pulid_folder: Path, eva_folder: Path, *, flux_dim: int = 64, cross_attentions: int = 3, arcface_dim: int = 128
) -> tuple[Path, Path]:
    """A tiny adapter (`tiny_pulid.safetensors`) and EVA tower (`tiny_EVA02_CLIP.safetensors`); their paths."""
    pulid, eva = pulid_folder / "tiny_pulid.safetensors", eva_folder / "tiny_EVA02_CLIP.safetensors"
    for folder in (pulid_folder, eva_folder):
        folder.mkdir(parents=True, exist_ok=True)
    save_file(adapter_state(tiny_adapter_config(flux_dim, arcface_dim, cross_attentions)), str(pulid))
    save_file(eva_state(), str(eva))
    return pulid, eva


# ----- Flux -------------------------------------------------------------------------------------------------

TOY_FLUX = dict(
    in_channels=16,
    out_channels=16,
    vec_in_dim=32,
    context_in_dim=32,
    hidden_size=64,
    mlp_ratio=4.0,
    num_heads=4,
    depth=3,
    depth_single_blocks=2,
    axes_dim=[4, 6, 6],
    theta=10000,
    patch_size=2,
    qkv_bias=True,
    guidance_embed=True,
)


def flux_sizes(**sizes) -> dict:
    """Flux.1 sizes as this ComfyUI's `FluxParams` takes them: it requires `txt_ids_dims` since v0.4 (`[]` for
    Flux.1) and refuses it before."""
    load_comfy()
    import comfy.ldm.flux.model

    if "txt_ids_dims" in {f.name for f in dataclasses.fields(comfy.ldm.flux.model.FluxParams)}:
        return {**sizes, "txt_ids_dims": []}
    return sizes


def toy_flux(seed: int = 0, weight_dtype: torch.dtype = torch.float32, compute_dtype: torch.dtype | None = None):
    """ComfyUI's Flux class at toy sizes, 3 double and 2 single blocks (PuLID's spacing puts a 3-cross-attention
    adapter after double blocks 0 and 2 and single block 0), wrapped as ComfyUI wraps a loaded Flux:
    `supported_models.Flux` → `model_base.Flux` → `ModelPatcher`; weights stored in `weight_dtype`, computed in
    `compute_dtype` when given (as ComfyUI runs fp8 checkpoints)."""
    load_comfy()
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models

    config = comfy.supported_models.Flux({"image_model": "flux", **flux_sizes(**TOY_FLUX)})
    config.set_inference_dtype(weight_dtype, compute_dtype)
    model = comfy.model_base.Flux(config, device="cpu")
    model.diffusion_model.load_state_dict(random_state(shapes_of(model.diffusion_model), seed))
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))


def _small_weights(shapes: dict[str, tuple], seed: int) -> dict[str, torch.Tensor]:
    """Matrices as random e4m3 values of magnitude ≤ 0.12, made as bytes (sign, a small exponent, any mantissa)
    and cut from one shared pool, which is fast for half a billion weights; norms 1, biases 0."""
    pool = torch.randint(0, 256, (1 << 24,), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    pool &= 0b10011111
    state = {}
    for offset, (key, shape) in enumerate(shapes.items()):
        if len(shape) >= 2:
            count = torch.Size(shape).numel()
            state[key] = (
                pool.roll(offset * 7919).repeat(-(-count // len(pool)))[:count].view(torch.float8_e4m3fn).reshape(shape)
            )
        elif key.endswith(("scale", "weight")) and "norm" in key:
            state[key] = torch.ones(shape, dtype=torch.bfloat16)
        else:
            state[key] = torch.zeros(shape, dtype=torch.bfloat16)
    return state


def write_loadable_flux(path: Path, seed: int = 0) -> Path:
    """A Flux.1-dev-shaped checkpoint that `UNETLoader` detects (hidden 3072, 24 heads), with 1 double and 1
    single block, CLIP-L-sized text and pooled inputs; fp8 weights (~0.5 GB)."""
    load_comfy()
    import comfy.ldm.flux.model
    import comfy.ops

    with torch.device("meta"):
        model = comfy.ldm.flux.model.Flux(
            operations=comfy.ops.disable_weight_init,
            **flux_sizes(
                in_channels=16,
                out_channels=16,
                vec_in_dim=768,
                context_in_dim=768,
                hidden_size=3072,
                mlp_ratio=4.0,
                num_heads=24,
                depth=1,
                depth_single_blocks=1,
                axes_dim=[16, 56, 56],
                theta=10000,
                patch_size=2,
                qkv_bias=True,
                guidance_embed=True,
            ),
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(_small_weights(shapes_of(model), seed), str(path))
    return path


def write_clip_l(path: Path, seed: int = 0) -> Path:
    """A CLIP-L text encoder (random, fp8) in the layout `CLIPLoader` reads."""
    load_comfy()
    import comfy.sd1_clip

    with torch.device("meta"):
        model = comfy.sd1_clip.SDClipModel(device="meta")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(_small_weights(shapes_of(model.transformer), seed), str(path))
    return path


def write_taef1(folder: Path, seed: int = 0) -> None:
    """`taef1_encoder` / `taef1_decoder` files for `VAELoader("taef1")` (random, 16 latent channels)."""
    load_comfy()
    import comfy.taesd.taesd

    with torch.device("meta"):
        model = comfy.taesd.taesd.TAESD(latent_channels=16)
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("encoder", "decoder"):
        module = getattr(model, f"taesd_{part}")
        save_file(
            {k: v.contiguous() for k, v in random_state(shapes_of(module), seed).items()},
            str(folder / f"taef1_{part}.safetensors"),
        )
