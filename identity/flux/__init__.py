"""Local Flux with identity: a PuLID-Flux-compatible adapter in plain torch, applied through block patches.

- `adapter`: the ID encoder (IDFormer) and the per-block cross-attentions, with PuLID's parameter names;
- `eva_clip`: the EVA02-CLIP vision tower whose features the encoder reads;
- `parsing`: facexlib's BiSeNet face parsing, which prepares the tower's input as the reference does;
- `weights`: strict loading of the three files (`load_adapter`, `load_parsing`), with errors that name the file,
  key and shape (`python -m identity weights` runs the same checks);
- `faces` / `tokens`: a profile's ID tokens from its stored FFHQ-aligned faces (true CFG: `uncond_tokens`);
- `injection`: the block patches, gated by sigma and masked per subject; `regions`: where each subject is.

Nothing here imports ComfyUI; `nodes/identity_condition_flux.py` is the glue.
"""

from .adapter import PULID_FLUX_V09, AdapterConfig, PuLIDFlux
from .eva_clip import EVA02_CLIP_L_14_336, EvaConfig, EvaVisionTower
from .injection import Injection, Placement, Subject, attach, check_flux1, placements
from .tokens import profile_tokens
from .weights import EVA_FILE, PULID_FILE, FluxAdapter, load_adapter, load_eva, load_pulid

__all__ = [
    "AdapterConfig",
    "EVA02_CLIP_L_14_336",
    "EVA_FILE",
    "EvaConfig",
    "EvaVisionTower",
    "FluxAdapter",
    "Injection",
    "PULID_FILE",
    "PULID_FLUX_V09",
    "Placement",
    "PuLIDFlux",
    "Subject",
    "attach",
    "check_flux1",
    "load_adapter",
    "load_eva",
    "load_pulid",
    "placements",
    "profile_tokens",
]
