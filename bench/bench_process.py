"""Whole-process scoring speed: `python -m identity score` against a FaceAnalysis script, in one run.

Both are fresh processes on the same ~100 fixture images with the same pack, so start-up, imports and
decoding count, as a user running either from a terminal would pay them. Baseline: insightface `FaceAnalysis`
loaded once (`prepare(det_size=(640, 640))`), `cv2.imread` and `get()` per image — what existing packs do.

    .venv/bin/python bench/bench_process.py [--pack DIR] [--repeat N] [--images N]

Prints both wall times and their ratio (aim: ours at least 1.5x faster).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
DEFAULT_PACK = SHARED / "models" / "insightface" / "models" / "testpack"
FACES = SHARED / "fixtures" / "faces"

BASELINE = """
import sys, warnings
warnings.filterwarnings("ignore")
import cv2
from insightface.app import FaceAnalysis
app = FaceAnalysis(name=sys.argv[1], providers=["CPUExecutionProvider"])
app.prepare(ctx_id=0, det_size=(640, 640))
faces = 0
for path in sys.argv[2:]:
    faces += len(app.get(cv2.imread(path)))
print(faces)
"""


def fixture_copies(folder: Path, count: int) -> list[Path]:
    """`count` image files in `folder`, linking the fixtures round-robin (the same photos, distinct names)."""
    from identity.images import collect_photos

    sources = collect_photos(sorted(p for p in FACES.iterdir() if p.is_dir()))
    sources = [p for p in sources if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    links = []
    for i in range(count):
        source = sources[i % len(sources)]
        link = folder / f"{i:03d}_{source.name}"
        link.symlink_to(source.resolve())
        links.append(link)
    return links


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, default=DEFAULT_PACK)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--images", type=int, default=100)
    args = parser.parse_args()
    if not FACES.is_dir() or not args.pack.is_dir():
        print(f"needs {FACES} and a pack ({args.pack})", file=sys.stderr)
        return 2
    from identity.faces import load_engine
    from identity.profile import ProfileStore
    from identity.training import photos_from_paths, train
    from identity.training.jobs import JobRegistry

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = tmp / "images"
        images.mkdir()
        paths = fixture_copies(images, args.images)
        store = ProfileStore(tmp / "profiles")
        engine = load_engine(f"insightface:{args.pack}", "cpu")
        train(photos_from_paths([FACES / "obama"]), "Obama", engine, store, registry=JobRegistry())
        ours = [
            sys.executable,
            "-m",
            "identity",
            "score",
            "--store",
            str(store.folder),
            "--engine",
            f"insightface:{args.pack}",
            "--provider",
            "cpu",
            "--profile",
            "Obama",
            str(images),
        ]
        baseline = [sys.executable, "-c", BASELINE, str(args.pack)] + [str(p) for p in paths]
        t_base, t_ours = [], []
        for _ in range(args.repeat):  # interleaved, so that a busy moment hits both
            t_base.append(timed(baseline))
            t_ours.append(timed(ours))
    base, mine = min(t_base), min(t_ours)
    print(
        f"whole process, {len(paths)} images: baseline (FaceAnalysis, get() per image) {base:.2f} s; "
        f"python -m identity score {mine:.2f} s (best of {args.repeat})"
    )
    print(f"whole-process speed-up (baseline / ours): {base / mine:.2f}x  (aim >= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
