"""References for a chosen image model: the profiles' portraits as images that model's node takes, and the
prompt written the way that model names its input images.

Each target's limits are read from the node or model source named beside it (ComfyUI 0.33.0 unless said).
Counts are refused before anything runs; sizes are fitted (downscaled, never upscaled). A reference is square,
so every target's references share one size and travel as one IMAGE batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import IdentityError
from .profile import Profile
from .prompt import compile_prompt


@dataclass(frozen=True)
class Target:
    key: str
    label: str  # the node or model, as the user knows it
    max_images: int  # the user's own images and the references together
    max_side: int  # px a square reference is fitted within (ComfyUI scales or uploads no larger)
    word: str  # how the model's prompt names input image N: "{word}{N}"
    source: str  # where the limits are read


TARGETS = {
    t.key: t
    for t in (
        # comfy_extras/nodes_qwen.py TextEncodeQwenImageEditPlus: inputs image1..image3; each labelled
        # "Picture {i+1}: " in the prompt; vision tokens at 384*384 px, reference latents at 1024*1024 px.
        Target(
            "qwen-image-edit",
            "Qwen-Image-Edit 2509/2511 (TextEncodeQwenImageEditPlus)",
            3,
            1024,
            "Picture ",
            "comfy_extras/nodes_qwen.py TextEncodeQwenImageEditPlus",
        ),
        # comfy_extras/nodes_edit_model.py ReferenceLatent appends each latent to `reference_latents` without a
        # limit, and comfy/ldm/flux/model.py concatenates them all: the count is this pack's (4 profiles, each
        # reference ~4096 attention tokens at 1 MP); references are encoded at about 1 MP
        # (ImageScaleToTotalPixels, comfy_extras/nodes_post_processing.py, megapixels 1.0).
        Target(
            "flux2",
            "FLUX.2 [dev] (ReferenceLatent)",
            4,
            1024,
            "image ",
            "comfy_extras/nodes_edit_model.py ReferenceLatent",
        ),
        # comfy_extras/nodes_flux.py FluxKontextImageScale: PREFERRED_KONTEXT_RESOLUTIONS, 1024x1024 for a square;
        # references chain through ReferenceLatent as for FLUX.2.
        Target(
            "kontext",
            "FLUX.1 Kontext [dev] (ReferenceLatent)",
            4,
            1024,
            "image ",
            "comfy_extras/nodes_flux.py FluxKontextImageScale",
        ),
        # comfy_api_nodes/nodes_gemini.py GeminiImage2Node / GeminiNanoBanana2: "The current maximum number of
        # supported images is 14."; one IMAGE batch; upload_images_to_comfyapi downscales to 2048*2048 px.
        # The node names no images in its prompt: they are numbered in batch order.
        Target(
            "gemini",
            "Gemini / Nano Banana (GeminiImage2Node, GeminiNanoBanana2)",
            14,
            2048,
            "image ",
            "comfy_api_nodes/nodes_gemini.py",
        ),
        # comfy_api_nodes/nodes_openai.py OpenAIGPTImageNodeV2: image_1..image_16, "Up to 16 images."; each
        # image is downscaled to 2048*2048 px (downscale_image_tensor) before upload.
        Target(
            "gpt-image",
            "OpenAI GPT Image (OpenAIGPTImage1, OpenAIGPTImageNodeV2)",
            16,
            2048,
            "image ",
            "comfy_api_nodes/nodes_openai.py OpenAIGPTImageNodeV2",
        ),
        # comfy_api_nodes/nodes_bfl.py Flux2ImageNode: image_1..image_8, "The current maximum number of supported
        # images is 8."; each sent as input_image, input_image_2, … at up to 2048*2048 px (tensor_to_base64_string).
        Target(
            "flux2-pro",
            "FLUX.2 [pro]/[max] (Flux2ImageNode)",
            8,
            2048,
            "image ",
            "comfy_api_nodes/nodes_bfl.py Flux2ImageNode",
        ),
        # comfy_api_nodes/nodes_qwen.py QwenImageEditApi: "A maximum of 3 reference images is supported";
        # the prompt names them "@Image1, @Image2, @Image3, numbered in input order"; sent at up to 2048*2048 px.
        Target(
            "qwen-image-api",
            "Qwen Image 3 Edit (QwenImageEditApi)",
            3,
            2048,
            "@Image",
            "comfy_api_nodes/nodes_qwen.py QwenImageEditApi",
        ),
        # Any other node: as Identity Prompt (Reference) numbers them, at up to 1 MP.
        Target("generic", "generic (any IMAGE input)", 16, 1024, "reference image ", "this pack"),
    )
}


@dataclass(frozen=True)
class References:
    images: list[np.ndarray]  # square RGB uint8, all one size
    prompt: str
    report: list[str]  # which image shows whom


def target(key: str) -> Target:
    if key not in TARGETS:
        raise IdentityError(f"unknown reference target {key!r}; choose one of {', '.join(TARGETS)}")
    return TARGETS[key]


def best_portraits(profile: Profile) -> np.ndarray:
    """The profile's reference portraits at the best resolution it holds: the large ones where training kept
    them (best first), else the 384 px ones."""
    return profile.portraits if profile.large_portraits is None else profile.large_portraits


def best_portrait(profile: Profile, index: int) -> np.ndarray:
    """Portrait `index` (of `profile.portraits`) at the best resolution the profile holds: its large version where
    training kept one (the remote references pick portraits by index, by pose)."""
    if profile.large_references is not None:
        larger = np.flatnonzero(np.asarray(profile.large_references) == index)
        if len(larger):
            return profile.large_portraits[larger[0]]
    return profile.portraits[index]


def names(t: Target, numbers: list[int]) -> str:
    """'Picture 2', 'image 2 and image 3', '@Image1, @Image2 and @Image4'."""
    words = [f"{t.word}{n}" for n in numbers]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def references_for(
    profiles: list[Profile], key: str, prompt: str, portraits: int = 1, own_images: int = 0
) -> References:
    """The profiles' references for target `key`, numbered after the user's `own_images` (e.g. the photo to
    edit as the model's first image), and the prompt with each `[[ref]]` naming its images."""
    t = target(key)
    if not profiles:
        raise IdentityError("references need at least one profile: connect Profile Load")
    kinds = sorted({p.kind for p in profiles})
    if len(kinds) > 1:
        raise IdentityError(f"the profiles mix kinds ({', '.join(kinds)}): connect profiles of one kind")
    chosen = [best_portraits(p)[:portraits] for p in profiles]
    count = sum(len(c) for c in chosen) + own_images
    if count > t.max_images:
        raise IdentityError(
            f"{t.label} takes at most {t.max_images} images ({t.source}); {len(profiles)} profile(s) give "
            f"{count - own_images} reference(s) and {own_images} image(s) are your own, {count} in all: "
            f"connect fewer profiles or lower 'portraits'"
        )
    side = min(t.max_side, *(len(c[0]) for c in chosen))
    images, numbers = [], {}
    report = [f"{t.word}{n}: your own image" for n in range(1, own_images + 1)]
    for profile, portraits_of in zip(profiles, chosen):
        numbers[profile.id] = []
        for portrait in portraits_of:
            number = own_images + len(images) + 1
            images.append(
                portrait if len(portrait) == side else cv2.resize(portrait, (side, side), interpolation=cv2.INTER_AREA)
            )
            numbers[profile.id].append(number)
            report.append(f"{t.word}{number}: {profile.name} ({profile.id}), {side}x{side} px")
    written = compile_prompt(prompt, profiles, lambda p: f"the {p.kind} in {names(t, numbers[p.id])} ({p.name})")
    return References(images, written, report)
