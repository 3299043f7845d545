"""A 16-bit photo is decoded within memory: a 194 KB 16-bit 100-MP PNG cost the CLI 2.9 GB."""

from __future__ import annotations

import numpy as np
from PIL import Image
from test_remote_budgets import cli_peak_rss

from identity.images import load_image


def test_sixteen_bit_grey_keeps_its_levels():
    levels = np.array([[0, 257, 32896, 65535]], np.uint16)
    assert load_image(Image.fromarray(levels))[0, :, 0].tolist() == [0, 1, 128, 255]


def test_a_100_mp_sixteen_bit_png_is_scored_within_memory(tom_profile, tmp_path):
    from identity.profile import ProfileStore

    store = ProfileStore(tmp_path / "profiles")
    store.save(tom_profile)
    photo = tmp_path / "grey16.png"
    Image.new("I;16", (10000, 10000), 4000).save(photo)
    result, peak = cli_peak_rss(
        ["score", "--store", str(store.folder), "--profile", tom_profile.id, str(photo)], {}, tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert peak < 1.5 * 1024**3, f"peak RSS {peak / 1e9:.2f} GB"
