"""Record the facts in this folder by running the reference modules themselves (not part of the test suite).

    python tests/data/flux/record_facts.py REFERENCE_DIR

REFERENCE_DIR holds, side by side, `eva_clip/` and `pulid/` from ToTheBeginning/PuLID and `facexlib/` from
xinntao/facexlib (at the commits named below; facexlib needs a `version.py` and eva_clip's tokenizer an `ftfy`
module, neither used here: stubs will do), with timm and einops installed. Nothing of theirs is copied here:
this script imports their modules and writes names, shapes, inputs and outputs.
"""

import datetime
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, str(HERE.parent.parent))
import numpy as np
import torch
from reference_weights import pattern_weights
from safetensors.torch import save_file

OUT = str(HERE)
PULID = ("ToTheBeginning/PuLID", "1aa2fc7df4bf51080df39f355f9abdc1cbfefbaa")
FACEXLIB = ("xinntao/facexlib", "260620ae93990a300f4b16448df9bb459f1caba9")
DATE = datetime.date.today().isoformat()


def manifest(model, name, source, module, note):
    sd = model.state_dict()
    data = {
        "source": {"repo": source[0], "commit": source[1], "module": module, "recorded": DATE},
        "note": note,
        "count": len(sd),
        "tensors": {k: list(v.shape) for k, v in sd.items()},
    }
    with open(f"{OUT}/{name}", "w") as f:
        json.dump(data, f, indent=0)
    print(name, len(sd))


from pulid.encoders_transformer import IDFormer, PerceiverAttentionCA
from torch import nn


class Adapter(nn.Module):  # the pipeline's two attributes, as load_pretrain fills them
    def __init__(self):
        super().__init__()
        self.pulid_encoder = IDFormer()
        num_ca = 19 // 2 + 38 // 4 + (1 if 19 % 2 else 0) + (1 if 38 % 4 else 0)
        self.pulid_ca = nn.ModuleList([PerceiverAttentionCA() for _ in range(num_ca)])


with torch.device("meta"):
    manifest(
        Adapter(),
        "pulid_flux_v0.9.json",
        PULID,
        "pulid/pipeline_flux.py PuLIDPipeline.pulid_encoder + pulid_ca",
        "pulid_flux_v0.9.0 and v0.9.1 .safetensors hold exactly these keys (load_pretrain loads each module strictly)",
    )

os.environ.pop("RoPE", None)
from eva_clip.factory import get_model_config
from eva_clip.model import CustomCLIP

cfg = get_model_config("EVA02-CLIP-L-14-336")
torch.set_default_dtype(torch.float16)  # shapes only: half the memory (meta tensors cannot .item() here)
clip = CustomCLIP(**cfg)
torch.set_default_dtype(torch.float32)
manifest(
    clip,
    "eva02_clip_l_14_336.json",
    PULID,
    "eva_clip create_model('EVA02-CLIP-L-14-336', force_custom_clip=True) state_dict",
    "the whole CLIP (visual + text); the rope buffers (visual.rope.*, visual.blocks.N.attn.rope.*) are dropped "
    "by the reference loader when the config has rope (RoPE=1) and recomputed, so a file may hold them or not",
)

from facexlib.parsing.bisenet import BiSeNet

with torch.device("meta"):
    manifest(
        BiSeNet(num_class=19),
        "parsing_bisenet.json",
        FACEXLIB,
        "facexlib.parsing.init_parsing_model('bisenet')",
        "parsing_bisenet.pth (facexlib release v0.2.0) is loaded into BiSeNet(num_class=19) strictly",
    )

# ----- parity: IDFormer, PerceiverAttentionCA, EVA vision tower, BiSeNet ------------------------------------
torch.manual_seed(0)


def inputs_like(*shape):
    return torch.randn(*shape)


idf = IDFormer(dim=128, depth=5, dim_head=64, heads=2, num_id_token=2, num_queries=4, output_dim=96, ff_mult=2).eval()
idf.load_state_dict(pattern_weights({k: tuple(v.shape) for k, v in idf.state_dict().items()}))
id_vec, hidden = inputs_like(2, 1280), [inputs_like(2, 10, 1024) for _ in range(5)]
with torch.no_grad():
    out = idf(id_vec, hidden)
save_file(
    {"id_vector": id_vec, **{f"hidden.{i}": h for i, h in enumerate(hidden)}, "tokens": out.contiguous()},
    f"{OUT}/parity_idformer.safetensors",
    metadata={
        "source": json.dumps(PULID),
        "module": "IDFormer(dim=128, depth=5, dim_head=64, heads=2, "
        "num_id_token=2, num_queries=4, output_dim=96, ff_mult=2)",
        "recorded": DATE,
    },
)

ca = PerceiverAttentionCA(dim=256, dim_head=128, heads=2, kv_dim=96).eval()
ca.load_state_dict(pattern_weights({k: tuple(v.shape) for k, v in ca.state_dict().items()}))
ids, img = inputs_like(2, 4, 96), inputs_like(2, 12, 256)
with torch.no_grad():
    out = ca(ids, img)
save_file(
    {"id_tokens": ids, "image": img, "update": out.contiguous()},
    f"{OUT}/parity_ca.safetensors",
    metadata={
        "source": json.dumps(PULID),
        "module": "PerceiverAttentionCA(dim=256, dim_head=128, heads=2, kv_dim=96)",
        "recorded": DATE,
    },
)

from functools import partial

from eva_clip.eva_vit_model import EVAVisionTransformer
from eva_clip.transformer import LayerNorm

os.environ["RoPE"] = "1"  # as create_model sets it for rope configs
v = cfg["vision_cfg"]
small = dict(
    img_size=56,
    patch_size=14,
    num_classes=32,
    use_mean_pooling=False,
    init_values=None,
    patch_dropout=0.0,
    embed_dim=128,
    depth=21,
    num_heads=2,
    mlp_ratio=v["mlp_ratio"],
    qkv_bias=True,
    drop_path_rate=0.0,
    norm_layer=partial(LayerNorm, eps=1e-6),
    xattn=False,
    rope=True,
    postnorm=False,
    pt_hw_seq_len=v["pt_hw_seq_len"],
    intp_freq=v["intp_freq"],
    naiveswiglu=v["naiveswiglu"],
    subln=v["subln"],
)
eva = EVAVisionTransformer(**small).eval()
shapes = {k: tuple(t.shape) for k, t in eva.state_dict().items() if "rope." not in k}
eva.load_state_dict(pattern_weights(shapes), strict=False)
pixels = inputs_like(2, 3, 56, 56)
with torch.no_grad():
    emb, hid = eva(pixels, return_all_features=False, return_hidden=True, shuffle=False)
save_file(
    {
        "pixels": pixels,
        "embedding": emb.contiguous(),
        **{f"hidden.{i}": h.contiguous() for i, h in enumerate(hid)},
        "rope.freqs_cos": eva.rope.freqs_cos.contiguous(),
        "rope.freqs_sin": eva.rope.freqs_sin.contiguous(),
    },
    f"{OUT}/parity_eva.safetensors",
    metadata={
        "source": json.dumps(PULID),
        "module": "EVAVisionTransformer, EVA02-CLIP-L-14-336's vision_cfg with "
        + json.dumps(
            {k: small[k] for k in ("img_size", "patch_size", "num_classes", "embed_dim", "depth", "num_heads")}
        )
        + " (xattn off: xformers absent; the same attention without it)",
        "recorded": DATE,
    },
)

net = BiSeNet(num_class=19).eval()
net.load_state_dict(pattern_weights({k: tuple(t.shape) for k, t in net.state_dict().items()}))
image = torch.rand(1, 3, 64, 64)
with torch.no_grad():
    parsed = net(image)[0]
save_file(
    {"image": image, "out": parsed.contiguous()},
    f"{OUT}/parity_bisenet.safetensors",
    metadata={"source": json.dumps(FACEXLIB), "module": "BiSeNet(num_class=19), first output", "recorded": DATE},
)

# ----- FFHQ alignment: facexlib FaceRestoreHelper(face_size=512, crop_ratio=(1, 1)).align_warp_face ------
import facexlib.utils.face_restoration_helper as frh
from facexlib.utils.face_restoration_helper import FaceRestoreHelper

frh.init_detection_model = frh.init_parsing_model = lambda *args, **kwargs: (
    None
)  # no downloads: alignment needs neither
helper = FaceRestoreHelper(
    upscale_factor=1, face_size=512, crop_ratio=(1, 1), det_model="retinaface_resnet50", save_ext="png", device="cpu"
)  # as pipeline_flux.py makes it
yy, xx = np.mgrid[0:300, 0:400]
photo = np.stack([(xx * 0.6) % 256, (yy * 0.8) % 256, ((xx + yy) * 0.4) % 256], -1).astype(np.uint8)  # BGR
landmarks = np.array([[170.0, 120.0], [232.0, 126.0], [199.0, 160.0], [172.0, 190.0], [226.0, 195.0]])
helper.input_img, helper.all_landmarks_5 = photo, [landmarks]
helper.align_warp_face()
save_file(
    {
        "photo_bgr": torch.from_numpy(photo.copy()),
        "landmarks": torch.from_numpy(landmarks).float(),
        "matrix": torch.from_numpy(helper.affine_matrices[0]).double(),
        "face_bgr": torch.from_numpy(helper.cropped_faces[0].copy()),
    },
    f"{OUT}/ffhq_align.safetensors",
    metadata={
        "source": json.dumps(FACEXLIB),
        "module": "FaceRestoreHelper(upscale_factor=1, face_size=512, crop_ratio=(1, 1)).align_warp_face",
        "template": json.dumps(helper.face_template.tolist()),
        "recorded": DATE,
    },
)
print("done")
