"""Whole-process scoring speed: `python -m identity score` against a FaceAnalysis script, in one run.

Both are fresh processes on the same ~100 fixture images with the same pack, so start-up, imports and
decoding count, as a user running either from a terminal would pay them. Baseline: insightface `FaceAnalysis`
loaded once (`prepare(det_size=(640, 640))`), `cv2.imread` and `get()` per image — what existing packs do.

    .venv/bin/python bench/bench_process.py [--pack DIR] [--repeat N] [--images N] [--profile]

Prints both wall times and their ratio (aim: ours at least 2x faster). `--profile` then times each stage of
both on the same images, one after another (imports, model loading, decoding, detection, recognition), to show
where the whole-process time goes.
"""

from __future__ import annotations

import argparse
import statistics
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


def stages(pack: Path, paths: list[Path]) -> list[tuple[str, float, float]]:
    """(stage, baseline seconds, ours seconds) for each step both pipelines take, run one after another."""
    import cv2
    from insightface.app import FaceAnalysis
    from insightface.app.common import Face

    from identity.faces import Engines
    from identity.faces.engine import DETECT_SIZE
    from identity.images import load_reduced

    def imports(code: str) -> float:
        return min(timed([sys.executable, "-c", code]) for _ in range(3)) - min(
            timed([sys.executable, "-c", "pass"]) for _ in range(3)
        )

    rows = [
        ("imports", imports("import cv2; from insightface.app import FaceAnalysis"), imports("import identity.cli"))
    ]
    start = time.perf_counter()
    app = FaceAnalysis(name=str(pack), providers=["CPUExecutionProvider"])
    app.prepare(ctx_id=0, det_size=(640, 640))
    base_load = time.perf_counter() - start
    start = time.perf_counter()
    engine = Engines().load(f"insightface:{pack}", "cpu")  # a fresh load, not the process's cached engine
    rows.append(("loading the models", base_load, time.perf_counter() - start))

    start = time.perf_counter()
    decoded = [cv2.imread(str(p)) for p in paths]
    base_decode = time.perf_counter() - start
    start = time.perf_counter()
    reduced = [load_reduced(p, DETECT_SIZE).pixels for p in paths]
    rows.append(("decoding", base_decode, time.perf_counter() - start))

    detector, recognizer = app.models["detection"], app.models["recognition"]
    start = time.perf_counter()
    boxes = [detector.detect(image, max_num=0, metric="default") for image in decoded]
    base_detect = time.perf_counter() - start
    start = time.perf_counter()
    found = engine.find(reduced)
    rows.append(("detection", base_detect, time.perf_counter() - start))

    start = time.perf_counter()
    for image, (bboxes, points) in zip(decoded, boxes):
        for box, kps in zip(bboxes, points):
            recognizer.get(image, Face(bbox=box[:4], kps=kps, det_score=box[4]))
    base_embed = time.perf_counter() - start
    start = time.perf_counter()
    engine.describe(reduced, found)
    faces = sum(len(f) for f in found)
    rows.append((f"alignment and recognition ({faces} faces)", base_embed, time.perf_counter() - start))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, default=DEFAULT_PACK)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="then time each stage of both, one after another")
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
        profile = stages(args.pack, paths) if args.profile else []
    base, mine = statistics.median(t_base), statistics.median(t_ours)
    print(
        f"whole process, {len(paths)} images: baseline (FaceAnalysis, get() per image) {base:.2f} s; "
        f"python -m identity score {mine:.2f} s (median of {args.repeat})"
    )
    print(f"whole-process speed-up (baseline / ours): {base / mine:.2f}x  (aim >= 2x)")
    if profile:
        print(f"\n{'stage':<40} {'baseline':>9} {'ours':>9} {'ratio':>7}")
        for stage, theirs, ours_s in profile:
            print(f"{stage:<40} {theirs:>8.2f}s {ours_s:>8.2f}s {theirs / max(ours_s, 1e-9):>6.2f}x")
        print(
            f"{'sum of the stages':<40} {sum(r[1] for r in profile):>8.2f}s {sum(r[2] for r in profile):>8.2f}s"
            "  (stages run one after another here; the CLI overlaps decoding and detection)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
