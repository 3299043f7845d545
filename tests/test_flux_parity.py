"""Our PuLID-Flux modules against the reference implementation's own outputs (ToTheBeginning/PuLID, facexlib).

The fixtures in `tests/data/flux/` were made by running the reference modules (IDFormer, PerceiverAttentionCA,
the EVA02-CLIP vision tower, facexlib's BiSeNet) at small sizes of the same code, with the weights of
`reference_weights.pattern_weights` on fixed inputs; each file's metadata names the module and the commit.
"""

from __future__ import annotations

from pathlib import Path

import torch
from reference_weights import pattern_weights
from safetensors import safe_open

from identity.flux import AdapterConfig, EvaConfig, EvaVisionTower
from identity.flux.adapter import IDFormer, PerceiverAttentionCA
from identity.flux.eva_clip import HEAD_DIM, rotary_tables
from identity.flux.parsing import BiSeNet
from identity.flux.weights import shapes_of

DATA = Path(__file__).parent / "data" / "flux"


def assert_matches(ours: torch.Tensor, reference: torch.Tensor) -> None:
    """Equal to float32 rounding: the reference orders its attention arithmetic differently, and residual streams
    grow along the blocks, so the absolute tolerance follows the values' scale."""
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5 * max(1.0, float(reference.abs().max())))


def fixture(name: str) -> dict[str, torch.Tensor]:
    with safe_open(str(DATA / name), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}


def with_pattern_weights(model: torch.nn.Module) -> torch.nn.Module:
    model.load_state_dict(pattern_weights(shapes_of(model)), strict=True)
    return model.eval()


def test_the_id_encoder_matches_the_reference_idformer():
    data = fixture("parity_idformer.safetensors")
    # IDFormer(dim=128, depth=5, dim_head=64, heads=2, num_id_token=2, num_queries=4, output_dim=96, ff_mult=2);
    # its input mappings are fixed at 1024 (EVA width) and 1280 (ArcFace 512 + CLIP 768) in the reference.
    config = AdapterConfig(
        token_dim=96,
        encoder_dim=128,
        encoder_inner=128,
        encoder_depth=5,
        ff_mult=2,
        id_tokens=2,
        queries=4,
        mlp_dim=1024,
        vit_dim=1024,
        id_input=1280,
    )
    encoder = with_pattern_weights(IDFormer(config))
    with torch.no_grad():
        tokens = encoder(data["id_vector"], [data[f"hidden.{i}"] for i in range(5)])
    assert_matches(tokens, data["tokens"])


def test_the_cross_attention_matches_the_reference_perceiver_attention_ca():
    data = fixture("parity_ca.safetensors")
    # PerceiverAttentionCA(dim=256, dim_head=128, heads=2, kv_dim=96)
    attention = with_pattern_weights(
        PerceiverAttentionCA(AdapterConfig(flux_dim=256, token_dim=96, cross_attention_inner=256))
    )
    with torch.no_grad():
        update = attention(data["id_tokens"], data["image"])
    assert_matches(update, data["update"])


def test_the_eva_tower_matches_the_reference_eva_vision_transformer():
    data = fixture("parity_eva.safetensors")
    # EVA02-CLIP-L-14-336's vision settings at 56 px, width 128, 21 blocks, a 32-d head
    config = EvaConfig(image_size=56, patch_size=14, width=128, depth=21, mlp_dim=int(128 * 2.6667), embed_dim=32)
    tower = with_pattern_weights(EvaVisionTower(config))
    with torch.no_grad():
        embedding, hidden = tower(data["pixels"])
    assert_matches(embedding, data["embedding"])
    assert len(hidden) == 5
    for index, state in enumerate(hidden):
        assert_matches(state, data[f"hidden.{index}"])
    cos, sin = rotary_tables(config.grid, HEAD_DIM)
    torch.testing.assert_close(cos, data["rope.freqs_cos"])  # the buffers EVA-CLIP files may carry
    torch.testing.assert_close(sin, data["rope.freqs_sin"])


def test_the_parsing_network_matches_facexlibs_bisenet():
    data = fixture("parity_bisenet.safetensors")
    parser = with_pattern_weights(BiSeNet())
    with torch.no_grad():
        logits = parser(data["image"])
    assert_matches(logits, data["out"])
    assert torch.equal(logits.argmax(1), data["out"].argmax(1))
