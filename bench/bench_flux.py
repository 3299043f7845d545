"""Per-step cost of identity injection: the patched Flux against the unpatched one, measured in one run.

    .venv/bin/python bench/bench_flux.py                            # a toy Flux on the CPU
    python bench/bench_flux.py --real-size                          # Flux.1's real block stack on the GPU
    python bench/bench_flux.py --real-size --double 4 --single 8    # a few real-size blocks (smaller GPUs)
    python bench/bench_flux.py --real-size --true-cfg               # cfg 2, the negative pass with no-ID tokens

Both use ComfyUI's own Flux class and sampler (`comfy.sample.sample`, euler, cfg 1: one model call per step;
with --true-cfg cfg 2, a negative prompt batched with the positive one, as ComfyUI runs CFG) with
random weights, and a PuLID-Flux adapter with random weights attached as the node attaches it (`attach`, ComfyUI's
casting ops), one subject. Real size: width 3072, 24 heads, a 1024×1024 image (4096 image tokens) and 512 text
tokens, bf16 on CUDA, the published adapter sizes with one cross-attention per place in the stack. Prints the
per-step times (best of --repeat) and the ratio patched / unpatched. Aim at real size: at most 1.10.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(os.environ.get("IDENTITY_COMFYUI") or str(ROOT / ".comfyui" / "ComfyUI"))  # as the tests pick it

from identity.flux import PULID_FLUX_V09, AdapterConfig, Injection, PuLIDFlux, Subject, attach, placements  # noqa: E402
from identity.flux.injection import DOUBLE_INTERVAL, SINGLE_INTERVAL  # noqa: E402

TOY = dict(
    hidden_size=256,
    num_heads=4,
    axes_dim=[16, 24, 24],
    context_in_dim=64,
    vec_in_dim=64,
    depth=4,
    depth_single_blocks=8,
)
REAL = dict(hidden_size=3072, num_heads=24, axes_dim=[16, 56, 56], context_in_dim=4096, vec_in_dim=768)


def flux_model(sizes: dict, device: torch.device, dtype: torch.dtype):
    """ComfyUI's Flux (as `UNETLoader` wraps it: `model_base.Flux` in a `ModelPatcher`), random weights."""
    import comfy.ldm.flux.model
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models

    if "txt_ids_dims" in {f.name for f in dataclasses.fields(comfy.ldm.flux.model.FluxParams)}:
        sizes = {**sizes, "txt_ids_dims": []}  # required since ComfyUI v0.4 ([] for Flux.1), refused before
    config = comfy.supported_models.Flux(
        {
            "image_model": "flux",
            "in_channels": 16,
            "out_channels": 16,
            "mlp_ratio": 4.0,
            "theta": 10000,
            "patch_size": 2,
            "qkv_bias": True,
            "guidance_embed": True,
            **sizes,
        }
    )
    config.set_inference_dtype(dtype, None)
    model = comfy.model_base.Flux(config, device=device)
    randomize(model.diffusion_model)
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=torch.device("cpu"))


def randomize(module: torch.nn.Module) -> None:
    generator = torch.Generator(device=next(module.parameters()).device).manual_seed(0)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.endswith(("scale", "norm1.weight", "norm2.weight")) or parameter.ndim == 1 and "norm" in name:
                parameter.fill_(1.0)
            else:
                parameter.normal_(0.0, 0.02, generator=generator)


def adapter_for(config: AdapterConfig, device: torch.device, dtype: torch.dtype) -> PuLIDFlux:
    import comfy.ops

    with torch.device(device):
        adapter = PuLIDFlux(config, comfy.ops.manual_cast).to(dtype)
    randomize(adapter)
    return adapter.eval().requires_grad_(False)


def per_step(model, latent: tuple, text: tuple, pooled: int, steps: int, repeat: int, cfg: float = 1.0) -> float:
    import comfy.sample

    generator = torch.Generator().manual_seed(0)
    conditioning = [
        [torch.randn(1, *text, generator=generator), {"pooled_output": torch.randn(1, pooled, generator=generator)}]
    ]
    negative = [
        [torch.randn(1, *text, generator=generator), {"pooled_output": torch.randn(1, pooled, generator=generator)}]
    ]
    noise = torch.randn(1, *latent, generator=generator)
    times = []
    for _ in range(repeat + 1):  # the first run warms up (loading, kernels)
        start = time.perf_counter()
        comfy.sample.sample(
            model,
            noise,
            steps,
            cfg,
            "euler",
            "simple",
            conditioning,
            negative if cfg > 1 else conditioning,
            torch.zeros(1, *latent),
            seed=0,
            disable_pbar=True,
        )
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / steps)
    return min(times[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real-size", action="store_true", help="Flux.1's real sizes, bf16 on CUDA")
    parser.add_argument("--double", type=int, default=19, help="double blocks at real size (Flux.1: 19)")
    parser.add_argument("--single", type=int, default=38, help="single blocks at real size (Flux.1: 38)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--true-cfg", action="store_true", help="cfg 2 with the no-identity tokens on the negative pass"
    )
    args = parser.parse_args()

    import comfy.cli_args

    comfy.cli_args.args.cpu = not args.real_size
    if args.real_size and not torch.cuda.is_available():
        print("--real-size needs a CUDA GPU", file=sys.stderr)
        return 2
    device = torch.device("cuda" if args.real_size else "cpu")
    dtype = torch.bfloat16 if args.real_size else torch.float32
    if args.real_size:
        sizes, latent, text = (
            {**REAL, "depth": args.double, "depth_single_blocks": args.single},
            (16, 128, 128),
            (512, 4096),
        )
        adapter_config = PULID_FLUX_V09
    else:
        sizes, latent, text = TOY, (16, 32, 32), (32, 64)
        adapter_config = AdapterConfig(
            flux_dim=256,
            token_dim=128,
            cross_attention_inner=256,
            encoder_dim=64,
            encoder_inner=64,
            encoder_depth=5,
            mlp_dim=64,
            vit_dim=64,
            id_input=96,
        )
    places = len(range(0, sizes["depth"], DOUBLE_INTERVAL)) + len(
        range(0, sizes["depth_single_blocks"], SINGLE_INTERVAL)
    )
    adapter_config = dataclasses.replace(adapter_config, cross_attentions=places)

    model = flux_model(sizes, device, dtype)
    flux = model.model.diffusion_model
    where = placements(adapter_config, flux.hidden_size, len(flux.double_blocks), len(flux.single_blocks))
    adapter = adapter_for(adapter_config, device, dtype)
    tokens = torch.randn(1, adapter_config.queries, adapter_config.token_dim)
    sampling = model.get_model_object("model_sampling")
    uncond = torch.randn(1, adapter_config.queries, adapter_config.token_dim) if args.true_cfg else None
    injection = Injection(
        adapter.pulid_ca,
        [Subject(tokens, uncond=uncond)],
        1.0,
        sampling.percent_to_sigma(0.0),
        sampling.percent_to_sigma(1.0),
    )
    patched = attach(model, injection, where)

    image_tokens = latent[1] * latent[2] // 4
    print(
        f"{'real-size' if args.real_size else 'toy'} Flux on {device} ({dtype}): width {flux.hidden_size}, "
        f"{len(flux.double_blocks)} double + {len(flux.single_blocks)} single blocks, {len(where)} cross-attentions, "
        f"{image_tokens} image + {text[0]} text tokens, {args.steps} steps, best of {args.repeat}"
        f"{', true CFG (cfg 2)' if args.true_cfg else ''}"
    )
    cfg = 2.0 if args.true_cfg else 1.0
    plain_step = per_step(model, latent, text, sizes["vec_in_dim"], args.steps, args.repeat, cfg)
    patched_step = per_step(patched, latent, text, sizes["vec_in_dim"], args.steps, args.repeat, cfg)
    print(f"unpatched: {plain_step * 1000:8.2f} ms/step")
    print(f"patched:   {patched_step * 1000:8.2f} ms/step")
    print(f"ratio:     {patched_step / plain_step:8.3f}  (overhead {100 * (patched_step / plain_step - 1):+.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
