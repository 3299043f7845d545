"""Each open edit model's conditioning from profiles equals what ComfyUI's own nodes build from the same pictures:
`TextEncodeQwenImageEditPlus` (Qwen-Image-Edit 2509/2511, positive and negative) and `VAEEncode` + core
`ReferenceLatent` (FLUX.2, Kontext). In process, on tiny random models built in memory (no download)."""

from __future__ import annotations

import dataclasses
import importlib
import sys
import types

import numpy as np
import pytest
import torch
from conftest import ROOT

pytestmark = pytest.mark.comfyui


@pytest.fixture(scope="module")
def comfy_nodes():
    """ComfyUI's `nodes` module and the pack's edit-conditioning nodes, imported as ComfyUI imports them: ComfyUI's
    folder first on the path, so that the pack's own `nodes/` (and other top-level names) do not stand in."""
    from tiny_models import load_comfy

    load_comfy()
    from comfyui import COMFYUI

    shadowed = {name: sys.modules.pop(name) for name in ("nodes", "utils") if name in sys.modules}
    path = list(sys.path)
    sys.path[:] = [str(COMFYUI)] + [p for p in path if p not in (str(COMFYUI), str(ROOT), "")]
    core = importlib.import_module("nodes")
    sys.path.insert(0, str(COMFYUI))  # ComfyUI's nodes.py put comfy/ (and its utils.py) first
    pack = types.ModuleType("identity_pack")
    pack.__path__ = [str(ROOT)]
    sys.modules["identity_pack"] = pack
    edit = importlib.import_module("identity_pack.nodes.identity_condition_edit")
    yield core, edit
    sys.path[:] = path
    for name in [n for n in sys.modules if n == "identity_pack" or n.startswith("identity_pack.")]:
        del sys.modules[name]
    for name in ("nodes", "utils"):
        sys.modules.pop(name, None)
    sys.modules.update(shadowed)


@pytest.fixture(autouse=True)
def inference():
    """As ComfyUI runs nodes: no autograd."""
    with torch.inference_mode():
        yield


def tiny_qwen_clip(monkeypatch):
    """ComfyUI's Qwen-Image text encoder (Qwen2.5-VL with its vision tower) at toy sizes, random weights."""
    import comfy.sd
    import comfy.supported_models_base
    import comfy.text_encoders.llama as llama
    import comfy.text_encoders.qwen_image as qwen_image
    import comfy.text_encoders.qwen_vl as qwen_vl

    @dataclasses.dataclass
    class Tiny(llama.Qwen25_7BVLI_Config):
        hidden_size: int = 64
        intermediate_size: int = 96
        num_hidden_layers: int = 2
        num_attention_heads: int = 4
        num_key_value_heads: int = 2
        head_dim = 16
        rope_dims = [2, 3, 3]

    vision = qwen_vl.Qwen2VLVisionTransformer

    def tiny_vision(**sizes):
        return vision(**{**sizes, "hidden_size": 32, "intermediate_size": 48, "num_heads": 2, "num_layers": 1})

    monkeypatch.setattr(llama, "Qwen25_7BVLI_Config", Tiny)
    monkeypatch.setattr(qwen_vl, "Qwen2VLVisionTransformer", tiny_vision)
    target = comfy.supported_models_base.ClipTarget(qwen_image.QwenImageTokenizer, qwen_image.te())
    clip = comfy.sd.CLIP(target, model_options={"dtype": torch.float32})
    generator = torch.Generator().manual_seed(0)
    model = clip.cond_stage_model
    model.load_state_dict(
        {k: torch.randn(v.shape, generator=generator) * 0.05 for k, v in model.state_dict().items()}, strict=False
    )
    return clip


def tiny_vae():
    import comfy.sd
    import comfy.taesd.taesd
    from tiny_models import random_state

    from identity.flux.weights import shapes_of

    with torch.device("meta"):
        model = comfy.taesd.taesd.TAESD(latent_channels=16)
    state = {}
    for part in ("encoder", "decoder"):
        module = getattr(model, f"taesd_{part}")
        state |= {f"taesd_{part}.{k}": v for k, v in random_state(shapes_of(module), 3).items()}
    state["vae_scale"], state["vae_shift"] = torch.tensor(0.3611), torch.tensor(0.1159)
    return comfy.sd.VAE(sd=state)


def people(tom_profile, count: int, side: int):
    """`count` profiles whose large portraits are distinct gradients of `side` px."""
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    made = []
    for n in range(count):
        image = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], np.full((side, side), 60.0 * n)), -1)
        made.append(
            dataclasses.replace(
                tom_profile, id=f"person-{n}", name=f"Person {n}", large_portraits=image[None].astype(np.uint8)
            )
        )
    return made


def equal_conditioning(ours, theirs) -> None:
    assert len(ours) == len(theirs)
    for (tokens, options), (core_tokens, core_options) in zip(ours, theirs):
        assert torch.equal(tokens, core_tokens)
        assert sorted(options) == sorted(core_options)
        for key, value in options.items():
            if key == "reference_latents":
                assert len(value) == len(core_options[key])
                assert all(torch.equal(a, b) for a, b in zip(value, core_options[key]))
            elif isinstance(value, torch.Tensor):
                assert torch.equal(value, core_options[key]), key


def test_qwen_image_edit_conditioning_is_text_encode_qwen_image_edit_plus(comfy_nodes, tom_profile, monkeypatch):
    from comfy_extras.nodes_qwen import TextEncodeQwenImageEditPlus

    from identity.targets import references_for

    _, edit = comfy_nodes
    clip, vae = tiny_qwen_clip(monkeypatch), tiny_vae()
    alice, bob, carol = people(tom_profile, 3, 512)
    photo = torch.rand(1, 200, 296, 3, generator=torch.Generator().manual_seed(1))
    prompt, negative = "[[person-0]] sits at the table", "blurry, [[person-0]] frowning"
    positive_out, negative_out, report = edit.IdentityConditionQwenEdit.execute(
        clip, vae, [alice], prompt, negative, 1, photo
    ).result
    pictures = [photo, torch.from_numpy(alice.large_portraits[:1]).float() / 255.0]
    written = references_for([alice], "qwen-image-edit", prompt, 1, 1).prompt
    assert written == "the person in Picture 2 (Person 0) sits at the table", "Picture 1 is the photo to edit"
    core_positive = TextEncodeQwenImageEditPlus.execute(clip, written, vae, *pictures).result[0]
    core_negative = TextEncodeQwenImageEditPlus.execute(
        clip, "blurry, the person in Picture 2 (Person 0) frowning", vae, *pictures
    ).result[0]
    equal_conditioning(positive_out, core_positive)
    equal_conditioning(negative_out, core_negative)
    assert len(positive_out[0][1]["reference_latents"]) == 2, "the photo and the portrait as reference latents"
    assert report.splitlines() == ["Picture 1: your own image", "Picture 2: Person 0 (person-0), 512x512 px"]
    without = TextEncodeQwenImageEditPlus.execute(clip, written, vae, photo).result[0]
    assert not torch.equal(without[0][0], positive_out[0][0]), "the portrait's vision tokens reach the encoder"
    with pytest.raises(Exception, match=r"at most 3 images \(comfy_extras/nodes_qwen.py"):
        edit.IdentityConditionQwenEdit.execute(clip, vae, [alice, bob, carol], prompt, "", 1, photo)


@pytest.mark.parametrize("target", ["flux2", "kontext"])
def test_flux_reference_latents_are_core_reference_latent(comfy_nodes, tom_profile, target):
    from comfy_extras.nodes_edit_model import ReferenceLatent

    core, edit = comfy_nodes
    vae = tiny_vae()
    alice, bob = people(tom_profile, 2, 1024)
    generator = torch.Generator().manual_seed(2)
    scene = torch.randn(1, 16, 8, 8, generator=generator)
    conditioning = [[torch.randn(1, 6, 32, generator=generator), {"reference_latents": [scene], "guidance": 2.5}]]
    ours, report = edit.IdentityConditionReferenceLatents.execute(conditioning, vae, [alice, bob], target, 1).result
    expected = conditioning
    for profile in (alice, bob):
        (latent,) = core.VAEEncode().encode(vae, torch.from_numpy(profile.large_portraits[:1]).float() / 255.0)
        expected = ReferenceLatent.execute(expected, latent).result[0]
    equal_conditioning(ours, expected)
    latents = ours[0][1]["reference_latents"]
    assert latents[0] is scene and [tuple(x.shape[-2:]) for x in latents[1:]] == [(128, 128)] * 2, "1 MP each"
    assert conditioning[0][1]["reference_latents"] == [scene], "the input conditioning is not modified"
    assert "image 2: Person 1 (person-1), 1024x1024 px" in report
