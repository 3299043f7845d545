"""What the profile routes disclose: training photos by paths relative to ComfyUI's input folder, never the
server's absolute paths."""

from __future__ import annotations

import json
from dataclasses import replace

from test_web_routes import call

from identity.profile import ProfileStore


def test_profile_details_name_photos_relative_to_the_input_folder(comfyui, tom_profile):
    inside = str(comfyui.base / "input" / "people" / "tom" / "tom.png")
    photos = [{**p, "path": inside} for p in tom_profile.report["photos"]]
    photos += [{**photos[0], "path": "/srv/private/holiday/tom.png", "verdict": "rejected"}]
    profile = replace(
        tom_profile, id="paths-000001", name="Paths Shown", report={**tom_profile.report, "photos": photos}
    )
    store = ProfileStore(comfyui.base / "models" / "identity_profiles")
    store.save(profile)
    try:
        status, details = call(comfyui, "GET", f"/identity/profiles/{profile.id}")
        assert status == 200, details
        shown = [p["path"] for p in details["report"]["photos"]]
        assert shown == ["people/tom/tom.png"] * (len(photos) - 1) + ["tom.png"], shown
        assert details["portraits"][0]["photo"] == "people/tom/tom.png", details["portraits"]
        text = json.dumps(details)
        assert str(comfyui.base) not in text and "/srv/private" not in text, text[:400]
    finally:
        store.delete(profile.id)
