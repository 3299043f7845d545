"""A cat profile from the Identity panel in a real browser: the kind is chosen in the form, every dropped photo
gets its verdict, and the card and its details say it is a cat and what its scores measure."""

from __future__ import annotations

import io

from browser import shot, train_in_panel
from pets import DOG, chelsea, variants
from PIL import Image
from test_web_ui import TRAIN_MS, browser, page  # noqa: F401  (fixtures)

from identity.pets.engine import install


def png(image) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_cat_trained_in_the_panel_is_shown_as_a_cat(page, comfyui, request):
    install(comfyui.base / "models" / "pets")
    form = page.locator(".identity-new")
    form.get_by_role("textbox", name="Name").fill("Chelsea (browser)")
    form.get_by_role("combobox", name="Of a").select_option("pet")
    photos = [
        {"name": f"{label}.png", "data": png(image), "type": "image/png"}
        for label, image in variants(chelsea()).items()
    ]
    if DOG.is_file():
        photos.append({"name": "dog.jpg", "data": DOG.read_bytes()})
    verdicts = {name: (verdict, text) for name, (verdict, _, text) in train_in_panel(page, photos, TRAIN_MS).items()}
    assert [v for v, _ in verdicts.values()].count("accepted") == 4
    if DOG.is_file():
        assert verdicts["dog.jpg"][0] == "rejected" and "wrong species" in verdicts["dog.jpg"][1]
    card = page.locator(".identity-card", has_text="Chelsea (browser)")
    assert card.locator(".identity-badge.kind").inner_text() == "cat"
    card.get_by_role("button", name="Details").click()
    details = card.locator(".identity-details dl")
    details.wait_for()
    assert "cat (scores measure appearance similarity (not identity))" in details.inner_text()
    card.scroll_into_view_if_needed()
    shot(page, request.config, "pet-cat-card")
