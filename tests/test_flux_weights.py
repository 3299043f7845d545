"""PuLID-Flux and EVA-CLIP weights: the published layout, strict loading, and errors that say what to fix."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest
import torch
from conftest import TESTPACK
from safetensors.torch import save_file
from tiny_models import adapter_state, eva_state, tiny_adapter_config, tiny_eva_config, write_adapter

from identity.errors import ModelFilesMissing, WeightsMismatch
from identity.flux import (
    EVA02_CLIP_L_14_336,
    PULID_FLUX_V09,
    EvaVisionTower,
    PuLIDFlux,
    load_adapter,
    load_eva,
    load_pulid,
)
from identity.flux.eva_clip import normalize
from identity.flux.parsing import BiSeNet
from identity.flux.weights import (
    TEXT_TOWER,
    adapter_config,
    check_eva,
    eva_config,
    load_parsing,
    rope_shapes,
    shapes_of,
)
from identity.weights import inspect


def meta_state(model_type, config) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return model_type(config).state_dict()


def meta_shapes(model_type, config) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in meta_state(model_type, config).items()}


def test_the_published_pulid_flux_layout():
    state = meta_state(PuLIDFlux, PULID_FLUX_V09)
    assert len(state) == 312, "pulid_flux_v0.9.x.safetensors holds 312 tensors"
    assert sum(t.numel() for t in state.values()) == 571_033_600  # 1.14 GB in bf16, as published
    shapes = {
        "pulid_encoder.latents": (1, 32, 1024),
        "pulid_encoder.proj_out": (1024, 2048),
        "pulid_encoder.id_embedding_mapping.0.weight": (1024, 1280),  # ArcFace 512 + EVA-CLIP 768
        "pulid_encoder.id_embedding_mapping.6.weight": (5120, 1024),  # 5 ID tokens of 1024
        "pulid_encoder.mapping_4.6.weight": (1024, 1024),
        "pulid_encoder.layers.9.0.to_kv.weight": (2048, 1024),
        "pulid_encoder.layers.9.1.1.weight": (4096, 1024),
        "pulid_encoder.layers.9.1.3.weight": (1024, 4096),
        "pulid_ca.19.norm1.weight": (2048,),
        "pulid_ca.19.norm2.weight": (3072,),
        "pulid_ca.19.to_q.weight": (2048, 3072),
        "pulid_ca.19.to_kv.weight": (4096, 2048),
        "pulid_ca.19.to_out.weight": (3072, 2048),
    }
    assert {k: tuple(state[k].shape) for k in shapes} == shapes
    assert "pulid_ca.20.to_q.weight" not in state and "pulid_encoder.layers.10.0.to_q.weight" not in state
    assert adapter_config(state, "published") == PULID_FLUX_V09, "sizes are read back from the anchors"


def test_the_published_eva02_clip_l_336_tower():
    state = meta_state(EvaVisionTower, EVA02_CLIP_L_14_336)
    shapes = {
        "pos_embed": (1, 577, 1024),
        "patch_embed.proj.weight": (1024, 3, 14, 14),
        "blocks.23.attn.q_bias": (1024,),
        "blocks.23.mlp.w1.weight": (2730, 1024),
        "blocks.23.mlp.ffn_ln.weight": (2730,),
        "head.weight": (768, 1024),
    }
    assert {k: tuple(state[k].shape) for k in shapes} == shapes
    assert eva_config(state, "published") == EVA02_CLIP_L_14_336


def test_tiny_files_load_strictly(tmp_path):
    pulid, eva = write_adapter(tmp_path / "pulid", tmp_path / "clip_vision")
    adapter = load_adapter(pulid, eva)
    assert adapter.config == tiny_adapter_config() and adapter.eva.config == tiny_eva_config()
    assert adapter.arcface_dim == 128
    expected = adapter_state(tiny_adapter_config())
    assert all(torch.equal(adapter.pulid.state_dict()[k], v) for k, v in expected.items())


@pytest.mark.parametrize(
    "damage, named",
    [
        (lambda s: s.pop("pulid_ca.1.to_kv.weight"), "missing: 'pulid_ca.1.to_kv.weight'"),
        (
            lambda s: s.update({"pulid_encoder.layers.2.0.to_q.weight": torch.zeros(64, 63)}),
            "'pulid_encoder.layers.2.0.to_q.weight' should be [64, 64] but is [64, 63]",
        ),
        (lambda s: s.update({"pulid_ca.0.extra": torch.zeros(1)}), "unexpected: 'pulid_ca.0.extra'"),
        (
            lambda s: s.pop("pulid_encoder.latents"),
            "is not a PuLID-Flux file: it has no tensor 'pulid_encoder.latents'",
        ),
    ],
)
def test_a_damaged_adapter_fails_naming_the_key(tmp_path, damage, named):
    state = adapter_state(tiny_adapter_config())
    damage(state)
    save_file(state, str(tmp_path / "damaged.safetensors"))
    with pytest.raises(WeightsMismatch) as error:
        load_pulid(tmp_path / "damaged.safetensors")
    assert named in str(error.value) and "damaged.safetensors" in str(error.value)


def test_missing_files_name_the_file_and_folder(tmp_path):
    with pytest.raises(ModelFilesMissing, match=r"pulid_flux_v0\.9\.1\.safetensors .*in .*models.pulid"):
        load_pulid(tmp_path / "models" / "pulid" / "pulid_flux_v0.9.1.safetensors")
    with pytest.raises(ModelFilesMissing, match=r"EVA02_CLIP_L_336_psz14_s6B\.pt .*in .*clip_vision"):
        load_eva(tmp_path / "models" / "clip_vision" / "EVA02_CLIP_L_336_psz14_s6B.pt")


def test_eva_clip_checkpoints_load_from_pt_files_without_running_pickled_code(tmp_path):
    state = eva_state()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "eva.pt")
    tower = load_eva(tmp_path / "eva.pt")
    assert tower.config == tiny_eva_config()
    assert torch.equal(tower.state_dict()["blocks.3.attn.q_bias"], state["visual.blocks.3.attn.q_bias"])

    class Payload:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    torch.save({"visual.cls_token": Payload()}, tmp_path / "hostile.pt")
    with pytest.raises(WeightsMismatch, match="pickled code is never run"):
        load_eva(tmp_path / "hostile.pt")


def test_an_adapter_and_a_tower_that_do_not_fit_are_refused(tmp_path):
    from identity.flux import EvaConfig

    pulid, _ = write_adapter(tmp_path, tmp_path)
    other = EvaConfig(image_size=56, patch_size=14, width=128, depth=21, mlp_dim=170, embed_dim=24)
    save_file(eva_state(other), str(tmp_path / "wide_eva.safetensors"))
    with pytest.raises(WeightsMismatch, match="reads 64-wide EVA-CLIP features"):
        load_adapter(pulid, tmp_path / "wide_eva.safetensors")


def test_the_eva_tower_matches_timms_eva02(tmp_path):
    """Against an independent implementation (timm's EVA02, which loads the real EVA-CLIP weights), fed through
    timm's own EVA-CLIP key converter: same class embedding, same hidden states."""
    from timm.models.eva import Eva, checkpoint_filter_fn

    config = tiny_eva_config()
    state = eva_state(config)
    ours = EvaVisionTower(config)
    ours.load_state_dict(check_eva(state, "tiny")[1])  # the tower's tensors as the loader passes them on
    theirs = Eva(
        img_size=config.image_size,
        patch_size=config.patch_size,
        embed_dim=config.width,
        depth=config.depth,
        num_heads=config.width // 64,
        mlp_ratio=config.mlp_dim / config.width,
        qkv_fused=False,
        swiglu_mlp=True,
        scale_mlp=True,
        scale_attn_inner=True,
        use_rot_pos_emb=True,
        ref_feat_shape=(16, 16),
        global_pool="token",
        num_classes=config.embed_dim,
    )
    theirs.load_state_dict(checkpoint_filter_fn(state, theirs), strict=True)
    pixels = normalize(
        torch.rand(2, 3, config.image_size, config.image_size, generator=torch.Generator().manual_seed(0))
    )
    with torch.no_grad():
        embedding, hidden = ours.eval()(pixels)
        x, rope = theirs.eval()._pos_embed(theirs.patch_embed(pixels))
        reference_hidden = []
        for index, block in enumerate(theirs.blocks):
            if index in (4, 8, 12, 16, 20):
                reference_hidden.append(x)
            x = block(x, rope=rope)
        reference = theirs.forward_head(theirs.norm(x))
    torch.testing.assert_close(embedding, reference, rtol=1e-5, atol=1e-5)
    for ours_state, theirs_state in zip(hidden, reference_hidden, strict=True):
        torch.testing.assert_close(ours_state, theirs_state, rtol=1e-5, atol=1e-5)


# ----- the published layouts, as the reference implementation's own modules name them ------------------------

DATA = Path(__file__).parent / "data" / "flux"


def manifest(name: str) -> dict[str, tuple[int, ...]]:
    """Names and shapes recorded from the reference modules (see the file's `source`)."""
    return {key: tuple(shape) for key, shape in json.loads((DATA / name).read_text())["tensors"].items()}


def write_layout(path: Path, shapes: dict[str, tuple[int, ...]], dtype=torch.bfloat16) -> Path:
    """A file with exactly these tensors, all zero: a `.pt` of expanded views of one zero (a few kB), or a sparse
    `.safetensors` (its header, then a hole the size of the data)."""
    if path.suffix in (".pt", ".pth"):
        zero = torch.zeros((), dtype=dtype)
        torch.save({key: zero.expand(shape) for key, shape in shapes.items()}, path)
        return path
    header, offset = {}, 0
    for key, shape in shapes.items():
        size = math.prod(shape) * dtype.itemsize
        header[key] = {
            "dtype": {torch.bfloat16: "BF16", torch.float32: "F32"}[dtype],
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)) + encoded)
        handle.truncate(8 + len(encoded) + offset)
    return path


def test_our_models_have_the_reference_layouts():
    pulid = manifest("pulid_flux_v0.9.json")
    assert len(pulid) == 312 and meta_shapes(PuLIDFlux, PULID_FLUX_V09) == pulid
    clip = manifest("eva02_clip_l_14_336.json")
    vision = {k.removeprefix("visual."): v for k, v in clip.items() if k.startswith("visual.")}
    assert len(vision) == 562 and len(clip) == 712
    assert {**meta_shapes(EvaVisionTower, EVA02_CLIP_L_14_336), **rope_shapes(EVA02_CLIP_L_14_336)} == vision
    assert all(k.startswith(TEXT_TOWER) for k in clip if not k.startswith("visual."))
    with torch.device("meta"):
        assert shapes_of(BiSeNet()) == manifest("parsing_bisenet.json")


def eva_layouts() -> dict[str, dict[str, tuple[int, ...]]]:
    """The EVA-CLIP files users have: the published whole checkpoint, with the rope buffers the reference model
    saves or without them (the reference loader drops them), and its vision tower alone (a conversion)."""
    clip = manifest("eva02_clip_l_14_336.json")
    return {
        "whole": clip,
        "whole without rope": {k: v for k, v in clip.items() if "rope." not in k},
        "vision tower": {k.removeprefix("visual."): v for k, v in clip.items() if k.startswith("visual.")},
    }


@pytest.mark.parametrize("layout", ["whole", "whole without rope", "vision tower"])
def test_eva_clip_files_in_the_published_layouts_load(tmp_path, layout):
    path = write_layout(tmp_path / "EVA02_CLIP_L_336_psz14_s6B.pt", eva_layouts()[layout])
    assert path.stat().st_size < 1_000_000
    tower = load_eva(path)
    assert tower.config == EVA02_CLIP_L_14_336
    report = inspect(path)
    assert report.loads and "EVA02-CLIP-L-14-336" in report.what
    assert ("without rope" in report.what) == (layout == "whole without rope")


def test_the_published_adapter_layout_loads(tmp_path):
    path = write_layout(tmp_path / "pulid_flux_v0.9.1.safetensors", manifest("pulid_flux_v0.9.json"))
    report = inspect(path)
    assert report.loads and report.what == "PuLID-Flux adapter, v0.9.1 layout (312 tensors)"
    pulid = load_pulid(path)
    assert pulid.config == PULID_FLUX_V09 and pulid.pulid_ca[19].to_out.weight.dtype == torch.bfloat16


def test_the_published_parsing_layout_loads(tmp_path):
    path = write_layout(tmp_path / "parsing_bisenet.pth", manifest("parsing_bisenet.json"), torch.float32)
    assert inspect(path).loads
    assert isinstance(load_parsing(path), BiSeNet)


@pytest.mark.parametrize(
    "damage, named",
    [
        (lambda s: s.pop("visual.blocks.7.attn.rope.freqs_sin"), "missing: 'blocks.7.attn.rope.freqs_sin'"),
        (lambda s: s.pop("visual.blocks.23.mlp.w3.weight"), "missing: 'blocks.23.mlp.w3.weight'"),
        (
            lambda s: s.update({"visual.blocks.0.attn.relative_position_bias_table": (10, 16)}),
            "unexpected: 'blocks.0.attn.relative_position_bias_table'",
        ),
        (
            lambda s: s.update({"visual.blocks.3.attn.q_bias": (1023,)}),
            "'blocks.3.attn.q_bias' should be [1024] but is [1023]",
        ),
        (
            lambda s: s.update({"visual.rope.freqs_cos": (577, 64)}),
            "'rope.freqs_cos' should be [576, 64] but is [577, 64]",
        ),
        (lambda s: s.update({"teacher.head.weight": (8, 8)}), "unexpected: 'teacher.head.weight'"),
    ],
)
def test_a_damaged_eva_clip_file_is_refused_naming_the_tensor(tmp_path, damage, named):
    shapes = dict(eva_layouts()["whole"])
    damage(shapes)
    path = write_layout(tmp_path / "EVA02_CLIP_L_336_psz14_s6B.pt", shapes)
    with pytest.raises(WeightsMismatch) as error:
        load_eva(path)
    assert named in str(error.value) and path.name in str(error.value)
    report = inspect(path)
    assert not report.loads and report.problem == str(error.value), "the CLI says what the loader says"


@pytest.mark.parametrize(
    "damage, named",
    [
        (lambda s: s.pop("pulid_ca.12.norm2.bias"), "missing: 'pulid_ca.12.norm2.bias'"),
        (lambda s: s.update({"pulid_ca.3.to_v.weight": (2048, 3072)}), "unexpected: 'pulid_ca.3.to_v.weight'"),
        (
            lambda s: s.update({"pulid_encoder.mapping_3.4.weight": (512,)}),
            "'pulid_encoder.mapping_3.4.weight' should be [1024] but is [512]",
        ),
    ],
)
def test_a_damaged_published_adapter_is_refused_by_the_cli_and_the_loader_alike(tmp_path, damage, named):
    shapes = dict(manifest("pulid_flux_v0.9.json"))
    damage(shapes)
    path = write_layout(tmp_path / "pulid_flux_v0.9.0.safetensors", shapes)
    report = inspect(path)
    assert not report.loads and named in report.problem
    with pytest.raises(WeightsMismatch) as error:
        load_pulid(path)
    assert str(error.value) == report.problem


def test_a_damaged_parsing_file_is_refused(tmp_path):
    shapes = dict(manifest("parsing_bisenet.json"))
    shapes.pop("conv_out16.conv_out.weight")
    path = write_layout(tmp_path / "parsing_bisenet.pth", shapes, torch.float32)
    with pytest.raises(WeightsMismatch, match="missing: 'conv_out16.conv_out.weight'"):
        load_parsing(path)


def test_identity_weights_names_each_file_and_fails_for_one_that_would_not_load(tmp_path, capsys):
    from identity.cli import main

    good = write_layout(tmp_path / "EVA02_CLIP_L_336_psz14_s6B.pt", eva_layouts()["whole"])
    assert main(["weights", str(good)]) == 0
    assert (
        "EVA02-CLIP checkpoint (vision and text towers), EVA02-CLIP-L-14-336, with rope buffers; loads"
        in capsys.readouterr().out
    )
    shapes = dict(manifest("parsing_bisenet.json"))
    shapes["cp.resnet.conv1.weight"] = (64, 3, 3, 3)
    bad = write_layout(tmp_path / "parsing_bisenet.pth", shapes, torch.float32)
    assert main(["weights", str(good), str(bad)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"{bad}: BiSeNet face parsing") and "would NOT load" in lines[1]
    assert "'cp.resnet.conv1.weight' should be [64, 3, 7, 7] but is [64, 3, 3, 3]" in lines[1]
    (tmp_path / "notes.safetensors").write_bytes(b"not a safetensors file")
    assert main(["weights", str(tmp_path / "notes.safetensors")]) == 1
    assert "not a readable safetensors file" in capsys.readouterr().out


def test_identity_weights_tells_insightface_detectors_and_recognizers_apart(capsys):
    if not TESTPACK.is_dir():
        pytest.skip("the shared insightface test pack is absent")
    detector, recognizer = inspect(TESTPACK / "det_500m.onnx"), inspect(TESTPACK / "fr_feature.onnx")
    assert detector.loads and "face detector (with 5 landmarks)" in detector.what
    assert (
        recognizer.loads and "recognizer (512-d" in recognizer.what and "not antelopev2's glintr100" in recognizer.what
    )
