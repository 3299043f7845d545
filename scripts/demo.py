"""The main job on the embedded engine: train a profile from sample photos, then score images against it.

Sample photos come from `../shared/fixtures/faces` when it is beside the checkout, else from the images that
ship inside the insightface wheel. Everything is written under `output/demo/`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from identity.cli import main  # noqa: E402

OUT = ROOT / "output" / "demo"
FIXTURES = ROOT.parent / "shared" / "fixtures" / "faces"


def samples() -> tuple[str, list[Path], list[Path]]:
    """(name, training photos, images to score)."""
    if FIXTURES.is_dir():
        obama = FIXTURES / "obama"
        train = [obama / f"obama{i}.jpg" for i in (1, 2, 3, 4)] + [FIXTURES / "groups" / "obama_biden_a.jpg",
                                                                 FIXTURES / "kit_harington" / "kit1.jpg"]
        score = [obama / "obama5_720p.jpg", FIXTURES / "groups" / "biden_obama_b.jpg",
                 FIXTURES / "groups" / "rose_kit.jpg"]
        return "Barack Obama", train, score
    images = Path(list(importlib.util.find_spec("insightface").submodule_search_locations)[0]) / "data" / "images"
    return "Tom Hanks", [images / "Tom_Hanks_54745.png"], [images / "Tom_Hanks_54745.png", images / "t1.jpg"]


def run() -> int:
    name, train_photos, score_images = samples()
    store = str(OUT / "profiles")
    print(f"== training {name!r} from {len(train_photos)} photos (embedded engine)")
    code = main(["train", *map(str, train_photos), "--name", name, "--store", store, "--engine", "embedded", "--overwrite"])
    if code:
        return code
    print(f"\n== scoring {len(score_images)} images against {name!r}")
    code = main(["score", *map(str, score_images), "--profile", name, "--store", store, "--engine", "embedded",
                 "--annotate", str(OUT / "annotated")])
    if code == 0:
        print(f"\nprofile: {OUT / 'profiles'}\nannotated images: {OUT / 'annotated'}")
    return code


if __name__ == "__main__":
    sys.exit(run())
