"""Headless Debian Chromium driven by Playwright (never a downloaded browser), and what tests do with a page."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest
from conftest import ARTIFACTS, SCREENSHOTS

CHROMIUM = Path("/usr/bin/chromium")
# The network is closed: background networking and component updates would stall or fail start-up.
# Playwright adds --headless, --no-sandbox and a new, empty --user-data-dir itself.
FLAGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = ARTIFACTS / "web"

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect
except ImportError:  # sync_playwright() then skips every browser test, saying why
    PlaywrightTimeout, expect = TimeoutError, None


def launch(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)


def sync_playwright():
    """Playwright's entry point, or a skip that says what is missing (scripts/setup.sh installs both)."""
    if not CHROMIUM.is_file():
        pytest.skip(
            f"Debian chromium is not installed at {CHROMIUM}: scripts/setup.sh installs it with apt-get "
            "where apt-get is available (as root)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed: run bash scripts/setup.sh")
    return sync_playwright()


def identity_tab(page):
    """The pack's sidebar tab, by its role and accessible name (the tab's tooltip), as every frontend labels it."""
    return page.get_by_role("button", name=re.compile(r"^Identity profiles: train from photos"))


def clear_screenshots(config) -> None:
    """Empties the screenshot folder once per test session: each browser test module starts its own browser, and
    the second used to delete the first one's screenshots, failures' included."""
    if SCREENSHOTS in config.stash:
        return
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    config.stash[SCREENSHOTS] = []


def shot(page, config, name: str) -> Path:
    """A full-window screenshot kept as a test artifact (output/test-artifacts/web/<name>.png)."""
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    config.stash.setdefault(SCREENSHOTS, []).append(path)
    return path


_DROP = """(target, files) => {
  const transfer = new DataTransfer();
  for (const file of files) {
    let bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
    if (file.size > bytes.length) {
      const padded = new Uint8Array(file.size);
      padded.set(bytes);
      bytes = padded;
    }
    transfer.items.add(new File([bytes], file.name, { type: file.type }));
  }
  for (const type of ["dragenter", "dragover", "drop"]) {
    target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
  }
}"""


def drop_files(target, files: list[dict]) -> None:
    """Drags files onto the element of the locator `target` as a person would from their file manager (a real
    DataTransfer).

    Each file is `{"name", "data": bytes, "type"}`, plus `"size"` to pad it with zeros in the page (large
    files are made there rather than sent through Playwright)."""
    encoded = [
        {
            "name": f["name"],
            "data": base64.b64encode(f["data"]).decode(),
            "type": f.get("type", "image/jpeg"),
            "size": f.get("size", 0),
        }
        for f in files
    ]
    target.evaluate(_DROP, encoded)


def train_in_panel(page, photos: list[dict], timeout: float) -> dict[str, tuple[str | None, str | None, str]]:
    """Drops `photos` (as `drop_files` takes them) on the panel's form, trains, and waits for READY: each listed
    file's name → (its verdict, its code, the row's text)."""
    form = page.locator(".identity-new")
    drop_files(form.locator(".identity-dropzone"), photos)
    form.get_by_role("button", name="Train profile").click()
    form.locator(".identity-job-status[data-status=READY]").wait_for(timeout=timeout)
    return {
        row.locator("strong").inner_text(): (
            row.get_attribute("data-verdict"),
            row.get_attribute("data-code"),
            row.inner_text(),
        )
        for row in form.locator(".identity-verdict").all()
    }
