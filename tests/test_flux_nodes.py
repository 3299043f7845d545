"""The local-model identity nodes inside the real ComfyUI: full KSampler runs with tiny models made here.

The Flux checkpoint is as small as ComfyUI's loader allows (it fixes the width at 3072: one double and one single
block, fp8); text comes from a random CLIP-L, images go through a random TAEF1. The PuLID adapter fits that Flux
(width 3072, two cross-attentions) and the embedded face engine (128-d), everything else scaled down.
"""

from __future__ import annotations

import numpy as np
import torch
from comfyui import api_twin
from conftest import TINY_PROFILE, TOM_HANKS
from PIL import Image
from safetensors.torch import load_file

from identity.profile import ProfileStore
from identity.targets import best_portraits

NODES = {
    "IdentityPuLIDLoader": (
        "PuLID-Flux Load",
        ["pulid", "eva_clip", "allow_other_recognizer"],
        ["IDENTITY_FLUX_ADAPTER"],
    ),
    "IdentityConditionFlux": (
        "Identity Condition (Flux)",
        [
            "model",
            "adapter",
            "weight",
            "start_at",
            "end_at",
            "profiles",
            "masks",
            "image",
            "face_engine",
            "true_cfg",
            "photos",
        ],
        ["MODEL", "STRING", "IMAGE"],
    ),
    "IdentityConditionReference": (
        "Identity Condition (Reference)",
        ["conditioning", "vae", "profiles", "portraits", "size"],
        ["CONDITIONING"],
    ),
    "IdentityPromptReference": ("Identity Prompt (Reference)", ["prompt", "profiles"], ["STRING"]),
}


def saved_profile(comfyui):
    store = ProfileStore(comfyui.base / "models" / "identity_profiles")
    return store.load(store.resolve(TINY_PROFILE))


def sampling_graph(prefix: str, model: list, positive: list) -> dict:
    """KSampler on the tiny Flux (2 steps, 64×64 px) → SaveLatent; `model`/`positive` are links."""
    return {
        "10": {"class_type": "UNETLoader", "inputs": {"unet_name": "tiny_flux.safetensors", "weight_dtype": "default"}},
        "11": {
            "class_type": "CLIPLoader",
            "inputs": {"clip_name": "tiny_clip_l.safetensors", "type": "stable_diffusion"},
        },
        "12": {"class_type": "CLIPTextEncode", "inputs": {"text": "a portrait", "clip": ["11", 0]}},
        "13": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "14": {
            "class_type": "KSampler",
            "inputs": {
                "model": model,
                "seed": 7,
                "steps": 2,
                "cfg": 1.0,
                "sampler_name": "euler",
                "scheduler": "simple",
                "positive": positive,
                "negative": ["12", 0],
                "latent_image": ["13", 0],
                "denoise": 1.0,
            },
        },
        "15": {
            "class_type": "SaveLatent",
            "inputs": {"samples": ["14", 0], "filename_prefix": f"identity_tests/{prefix}"},
        },
    }


def identity_nodes(weight: float, start_at: float = 0.0, end_at: float = 1.0) -> dict:
    """The identity part of a Flux graph; the embedded engine (SFace) stands in for glintr100, so it is allowed."""
    return {
        "20": {"class_type": "IdentityProfileLoad", "inputs": {"profile": TINY_PROFILE}},
        "21": {
            "class_type": "IdentityPuLIDLoader",
            "inputs": {
                "pulid": "tiny_pulid.safetensors",
                "eva_clip": "tiny_EVA02_CLIP.safetensors",
                "allow_other_recognizer": True,
            },
        },
        "22": {"class_type": "IdentityFaceEngine", "inputs": {"pack": "embedded", "provider": "auto"}},
        "23": {
            "class_type": "IdentityConditionFlux",
            "inputs": {
                "model": ["10", 0],
                "profiles": ["20", 0],
                "adapter": ["21", 0],
                "weight": weight,
                "start_at": start_at,
                "end_at": end_at,
                "face_engine": ["22", 0],
            },
        },
    }


def saved_latent(comfyui, run) -> torch.Tensor:
    saved = next(i for o in run.outputs.values() for i in o.get("latents", []))
    return load_file(str(comfyui.base / "output" / saved["subfolder"] / saved["filename"]))["latent_tensor"]


def sample(comfyui, prompt: dict) -> torch.Tensor:
    run = comfyui.client.run(prompt)
    assert run.status == "success", run.error
    return saved_latent(comfyui, run)


def test_object_info_lists_the_local_model_nodes(comfyui):
    info = comfyui.client.object_info()
    for node_id, (display, inputs, outputs) in NODES.items():
        node = info[node_id]
        declared = node["input_order"].get("required", []) + node["input_order"].get("optional", [])
        assert (node["display_name"], node["category"], declared, node["output"]) == (
            display,
            "identity",
            inputs,
            outputs,
        )
    flux_inputs = NODES["IdentityConditionFlux"][1]
    assert info["IdentityConditionFlux"]["input_order"]["optional"] == flux_inputs[flux_inputs.index("profiles") :]
    assert info["IdentityPuLIDLoader"]["input"]["optional"]["allow_other_recognizer"][1]["default"] is False


def test_flux_sampling_with_identity_condition_in_the_graph(tiny):
    plain = sample(tiny, sampling_graph("plain", ["10", 0], ["12", 0]))
    with_identity = sample(tiny, {**sampling_graph("identity", ["23", 0], ["12", 0]), **identity_nodes(1.0)})
    at_zero = sample(tiny, {**sampling_graph("zero", ["23", 0], ["12", 0]), **identity_nodes(0.0)})
    after_end = sample(tiny, {**sampling_graph("late", ["23", 0], ["12", 0]), **identity_nodes(1.0, 0.9, 1.0)})
    assert torch.isfinite(with_identity).all()
    assert not torch.equal(with_identity, plain), "the identity changes the result"
    assert torch.equal(at_zero, plain), "weight 0 reproduces the unpatched model bit for bit"
    assert torch.equal(after_end, plain), "outside start/end (2 steps: sigmas 1.0 and 0.5) nothing is injected"


def test_photos_work_directly_as_the_profile_trained_from_them_and_the_encoder_input_is_shown(tiny):
    """The profile was trained from flux_tom.png with the same engine: the photo itself gives the same result."""
    with_profile = sample(tiny, {**sampling_graph("profile", ["23", 0], ["12", 0]), **identity_nodes(1.0)})
    prompt = {**sampling_graph("photo", ["23", 0], ["12", 0]), **identity_nodes(1.0)}
    del prompt["20"], prompt["23"]["inputs"]["profiles"]
    prompt["24"] = {"class_type": "LoadImage", "inputs": {"image": "flux_tom.png"}}
    prompt["23"]["inputs"]["photos"] = ["24", 0]
    prompt["30"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["23", 2], "filename_prefix": "identity_tests/seen"},
    }
    run = tiny.client.run(prompt)
    assert run.status == "success", run.error
    assert torch.equal(saved_latent(tiny, run), with_profile)
    (saved,) = run.outputs["30"]["images"]
    seen = np.asarray(Image.open(tiny.base / "output" / saved["subfolder"] / saved["filename"]).convert("RGB"))
    assert (seen[..., 0] == seen[..., 1]).all() and (seen[..., 1] == seen[..., 2]).all(), "grey, as PuLID feeds it"
    assert (seen == 255).all(axis=-1).mean() > 0.2 and (seen < 200).any(axis=-1).mean() > 0.2, "a face on white"
    assert not ProfileStore(tiny.base / "models" / "identity_profiles").named("photos"), "nothing was saved"


def test_the_report_says_which_face_input_the_encoder_read(tiny):
    """Without facexlib's parsing file: the fallback, named with the file and folder; with it: parsed input."""
    prompt = {
        **identity_nodes(1.0),
        "10": {"class_type": "UNETLoader", "inputs": {"unet_name": "tiny_flux.safetensors", "weight_dtype": "default"}},
        "30": {"class_type": "PreviewAny", "inputs": {"source": ["23", 1]}},
    }
    run = tiny.client.run(prompt)
    assert run.status == "success", run.error
    (report,) = run.outputs["30"]["text"]
    folder = tiny.base / "models" / "facexlib"
    assert report.startswith(
        f"{TINY_PROFILE}: EVA-CLIP input: FFHQ-aligned 512 px faces from the photos, outside a fixed face ellipse whitened"
    )
    assert f"parsing_bisenet.pth (facexlib release v0.2.0) was not found in {folder}" in report
    from test_flux_weights import manifest, write_layout

    folder.mkdir(parents=True, exist_ok=True)
    write_layout(folder / "parsing_bisenet.pth", manifest("parsing_bisenet.json"), torch.float32)
    try:
        run = tiny.client.run(prompt)
        assert run.status == "success", run.error
        assert run.outputs["30"]["text"] == [
            f"{TINY_PROFILE}: EVA-CLIP input: FFHQ-aligned 512 px faces from the photos, "
            "background, neck, clothes and ears whitened by face parsing as in PuLID"
        ]
    finally:
        (folder / "parsing_bisenet.pth").unlink()


def test_a_recognizer_other_than_glintr100_is_refused_unless_allowed(tiny):
    prompt = {**sampling_graph("strict", ["23", 0], ["12", 0]), **identity_nodes(1.0)}
    prompt["21"]["inputs"]["allow_other_recognizer"] = False
    run = tiny.client.run(prompt)
    message = run.error["exception_message"]
    assert run.status == "error" and "trained on antelopev2's glintr100" in message
    assert "models/insightface/models/antelopev2/" in message and "allow_other_recognizer" in message


def test_several_profiles_without_regions_are_refused(tiny):
    prompt = {**sampling_graph("two", ["23", 0], ["12", 0]), **identity_nodes(1.0)}
    prompt["24"] = {"class_type": "LoadImage", "inputs": {"image": "flux_tom.png"}}
    prompt["25"] = {
        "class_type": "IdentityProfileTrain",
        "inputs": {"name": "Flux Tom Twin", "images": ["24", 0], "overwrite": True},
    }
    prompt["26"] = {"class_type": "IdentityProfileLoad", "inputs": {"profile": TINY_PROFILE, "profiles": ["25", 0]}}
    prompt["23"]["inputs"]["profiles"] = ["26", 0]
    run = tiny.client.run(prompt)
    assert run.status == "error" and "need a place each" in run.error["exception_message"]


def test_an_image_to_edit_places_the_person(tiny):
    canvas = np.full((320, 320, 3), 128, np.uint8)
    canvas[160:272, 180:292] = np.asarray(Image.open(TOM_HANKS).convert("RGB"))  # the face low right, head box inside
    Image.fromarray(canvas).save(tiny.base / "input" / "flux_tom_scene.png")
    prompt = {**sampling_graph("placed", ["23", 0], ["12", 0]), **identity_nodes(1.0)}
    prompt["24"] = {"class_type": "LoadImage", "inputs": {"image": "flux_tom_scene.png"}}
    prompt["23"]["inputs"]["image"] = ["24", 0]
    placed = sample(tiny, prompt)
    everywhere = sample(tiny, {**sampling_graph("everywhere", ["23", 0], ["12", 0]), **identity_nodes(1.0)})
    plain = sample(tiny, sampling_graph("no_identity", ["10", 0], ["12", 0]))
    assert torch.isfinite(placed).all()

    def changed(latent):  # how much the identity moved the top-left quarter (no one there) and the bottom-right one
        change = (latent - plain).abs()[0].mean(0)
        half = change.shape[-1] // 2
        return float(change[:half, :half].mean()), float(change[half:, half:].mean())

    (placed_away, placed_there), (all_away, all_there) = changed(placed), changed(everywhere)
    assert placed_there > 0 and all_away > 0
    assert placed_away / placed_there < 0.5 * all_away / all_there, (
        f"the change is not where the person is: {placed_away:.4f} away, {placed_there:.4f} there "
        f"(without a place: {all_away:.4f}, {all_there:.4f})"
    )


def test_reference_conditioning_reaches_the_model(tiny):
    references = {
        "20": {"class_type": "IdentityProfileLoad", "inputs": {"profile": TINY_PROFILE}},
        "30": {"class_type": "VAELoader", "inputs": {"vae_name": "taef1"}},
        "31": {
            "class_type": "IdentityConditionReference",
            "inputs": {"conditioning": ["12", 0], "vae": ["30", 0], "profiles": ["20", 0], "portraits": 2, "size": 256},
        },
    }
    plain = sample(tiny, sampling_graph("plain_ref", ["10", 0], ["12", 0]))
    run = tiny.client.run({**sampling_graph("reference", ["10", 0], ["31", 0]), **references})
    assert run.status == "success", run.error
    assert tiny.client.object_info()["IdentityConditionReference"]["deprecated"], "saved workflows keep its id"
    profile = saved_profile(tiny)
    side = best_portraits(profile).shape[1]  # 'size' (256) no longer shrinks them
    expected = [f"image {n}: {TINY_PROFILE} ({profile.id}), {side}x{side} px" for n in (1, 2)]
    assert run.outputs["31"]["text"] == ["\n".join(expected[: min(2, len(best_portraits(profile)))])]
    assert not torch.equal(saved_latent(tiny, run), plain), "the reference latents are attended to"


def test_reference_prompt_names_each_profile_by_its_reference_image(tiny):
    nodes = {
        "20": {"class_type": "IdentityProfileLoad", "inputs": {"profile": TINY_PROFILE}},
        "40": {"class_type": "IdentityPromptReference", "inputs": {"prompt": "", "profiles": ["20", 0]}},
        "41": {"class_type": "PreviewAny", "inputs": {"source": ["40", 0]}},
    }
    profile_id = saved_profile(tiny).id
    nodes["40"]["inputs"]["prompt"] = f"[[{profile_id}]] waves"
    run = tiny.client.run(nodes)
    assert run.status == "success", run.error
    assert run.outputs["41"]["text"] == [f"the person in reference image 1 ({TINY_PROFILE}) waves"]
    nodes["40"]["inputs"]["prompt"] = "[[someone-else]] waves"
    run = tiny.client.run(nodes)
    assert run.status == "error" and "[[someone-else]]" in run.error["exception_message"]


def test_missing_adapter_files_name_the_file_and_folder(tiny):
    prompt = {
        "1": {
            "class_type": "IdentityPuLIDLoader",
            "inputs": {"pulid": "absent.safetensors", "eva_clip": "tiny_EVA02_CLIP.safetensors"},
        },
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
    }
    run = tiny.client.run(prompt)
    message = run.error["exception_message"]
    assert run.status == "error" and "absent.safetensors" in message and "pulid_flux_v0.9.1.safetensors" in message
    assert str(tiny.base / "models" / "pulid") in message
    prompt["1"]["inputs"]["eva_clip"] = ""  # nothing to choose from
    run = tiny.client.run(prompt)
    message = run.error["exception_message"]
    assert "no EVA-CLIP weights found: put EVA02_CLIP_L_336_psz14_s6B.pt" in message
    assert message.strip().endswith(str(tiny.base / "models" / "clip_vision"))


def test_the_generate_then_rank_example_runs_with_tiny_stand_ins(tiny):
    """example_workflows/flux_identity_then_arcface_rank with the tiny models in place of the real files."""
    prompt = api_twin("flux_identity_then_arcface_rank")
    swap = {
        "UNETLoader": {"unet_name": "tiny_flux.safetensors"},
        "VAELoader": {"vae_name": "taef1"},
        "IdentityPuLIDLoader": {
            "pulid": "tiny_pulid.safetensors",
            "eva_clip": "tiny_EVA02_CLIP.safetensors",
            "allow_other_recognizer": True,
        },
        "IdentityProfileLoad": {"profile": TINY_PROFILE},
        "EmptySD3LatentImage": {"width": 64, "height": 64},
        "KSampler": {"steps": 2},
    }
    for node in prompt.values():
        node["inputs"].update(swap.get(node["class_type"], {}))
    clip = next(k for k, n in prompt.items() if n["class_type"] == "DualCLIPLoader")
    prompt[clip] = {
        "class_type": "CLIPLoader",
        "inputs": {"clip_name": "tiny_clip_l.safetensors", "type": "stable_diffusion"},
    }
    prompt["99"] = {"class_type": "IdentityFaceEngine", "inputs": {"pack": "embedded", "provider": "auto"}}
    for node in prompt.values():
        if node["class_type"] in ("IdentityConditionFlux", "IdentityArcFaceScore"):
            node["inputs"]["face_engine"] = ["99", 0]
    run = tiny.client.run(prompt)
    assert run.status == "success", run.error
    scores = next(o["identity_scores"] for o in run.outputs.values() if "identity_scores" in o)
    assert [s["index"] for s in scores] == [0, 1, 2, 3], "all four candidates were scored"
    # The tiny random models draw noise: no face, so nobody is found and every candidate scores 0 for the person.
    assert all(s["score"] == 0.0 and s["subjects"] == {TINY_PROFILE: 0.0} for s in scores), scores


def test_a_pet_profile_is_refused_by_pulid_flux_naming_the_node_for_pets(tiny, pet_models):
    from pets import chelsea, variants

    from identity.pets.engine import load_pet_engine
    from identity.training import photos_from_paths, train
    from identity.training.jobs import JobRegistry

    photos = tiny.base / "input" / "flux_cat"
    photos.mkdir(parents=True, exist_ok=True)
    for label, image in variants(chelsea()).items():
        Image.fromarray(image).save(photos / f"{label}.png")
    cat = train(
        photos_from_paths([photos]),
        "Flux Cat",
        load_pet_engine(pet_models / "pets", pet_models / "pet_reid"),
        ProfileStore(tiny.base / "models" / "identity_profiles"),
        kind="cat",
        overwrite=True,
        registry=JobRegistry(),
    ).profile
    prompt = {**sampling_graph("cat", ["23", 0], ["12", 0]), **identity_nodes(1.0)}
    prompt["20"]["inputs"]["profile"] = cat.id
    run = tiny.client.run(prompt)
    assert run.status == "error", "a cat went through PuLID-Flux"
    message = run.error["exception_message"]
    assert "PuLID-Flux carries faces, not Flux Cat" in message and "Identity Condition (Reference)" in message
