"""Crafted profile files in ComfyUI's profile folder: a 1×70000 portrait, a header of 95 MB. The routes
answer each with a sentence (never a 500), and no reader loads the oversized header."""

from __future__ import annotations

import json
import struct
from dataclasses import replace

import numpy as np
from safetensors.numpy import save_file
from test_web_routes import call


def _folder(comfyui):
    folder = comfyui.base / "models" / "identity_profiles"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_portrait_of_1_by_70000_px_gets_a_sentence_not_a_500(comfyui, tom_profile):
    profile = replace(tom_profile, id="long-portrait-000001", name="Long Portrait")
    tensors = {**profile.tensors(), "portraits": np.zeros((1, 1, 70000, 3), np.uint8)}
    save_file(tensors, str(_folder(comfyui) / f"{profile.id}.safetensors"), metadata=profile.metadata())
    try:
        status, answer = call(comfyui, "GET", f"/identity/profiles/{profile.id}/thumbnail")
        assert status == 400, (status, answer)
        assert "1×70000" in answer["error"] and "retrain" in answer["error"], answer
    finally:
        (_folder(comfyui) / f"{profile.id}.safetensors").unlink()


def test_a_95_mb_header_is_skipped_unread(comfyui, tom_profile):
    profile = replace(tom_profile, id="huge-header-000001", name="Huge Header")
    path = _folder(comfyui) / f"{profile.id}.safetensors"
    save_file(profile.tensors(), str(path), metadata={**profile.metadata(), "padding": "x" * 95_000_000})
    with path.open("rb") as handle:
        assert struct.unpack("<Q", handle.read(8))[0] > 95_000_000, "a real, valid 95 MB header"
    try:
        status, answer = call(comfyui, "GET", "/identity/profiles")
        assert status == 200 and profile.id not in {p["id"] for p in answer["profiles"]}, answer
        status, info = call(comfyui, "GET", "/object_info/IdentityProfileLoad")
        options = json.dumps(info["IdentityProfileLoad"]["input"]["required"]["profile"])
        assert status == 200 and "Huge Header" not in options, options[:300]
        status, answer = call(comfyui, "GET", f"/identity/profiles/{profile.id}")
        assert status == 400 and "header" in answer["error"], answer
    finally:
        path.unlink()
