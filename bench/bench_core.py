"""Speed of the identity core against the straightforward pipeline, measured in one run on the same photos.

Baseline: what existing ComfyUI packs do — insightface `FaceAnalysis` with its default modules, loaded once,
`prepare(det_size=(640, 640))`, then `get()` on one image at a time (recognition face by face).
Ours: `FaceEngine.analyze` (bounded detection, one recognizer batch) and `identity.training.train`.

    .venv/bin/python bench/bench_core.py [--pack DIR] [--repeat N]

Prints both timings and their ratio. Aims (2-core machine, test pack): training 20 photos under 3 s; scoring
at least 3× the baseline's faces per second (the whole-process comparison is bench/bench_process.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from identity.faces import load_engine  # noqa: E402
from identity.images import collect_photos, load_image  # noqa: E402
from identity.training import Photo, train  # noqa: E402
from identity.training.jobs import JobRegistry  # noqa: E402

SHARED = ROOT.parent / "shared"
DEFAULT_PACK = SHARED / "models" / "insightface" / "models" / "testpack"
FACES = SHARED / "fixtures" / "faces"


def training_photos() -> list[Photo]:
    """20 photos of one person: the 6 Obama portraits and group shots, plus mirrored and re-framed copies."""
    sources = [load_image(p) for p in collect_photos([FACES / "obama"])] + [
        load_image(FACES / "groups" / n) for n in ("obama_biden_a.jpg", "biden_obama_b.jpg")
    ]
    variants = []
    for image in sources:
        h, w = image.shape[:2]
        variants += [image, image[:, ::-1].copy(), image[h // 20 : h - h // 20, w // 20 : w - w // 20].copy()]
    return [Photo(f"photo {i + 1}", v) for i, v in enumerate(variants[:20])]


def scoring_images() -> list[np.ndarray]:
    return [
        load_image(p)
        for p in collect_photos([FACES / d for d in sorted(m.name for m in FACES.iterdir() if m.is_dir())])
    ]


def median_of(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, default=DEFAULT_PACK)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not FACES.is_dir() or not args.pack.is_dir():
        print(f"needs {FACES} and a pack ({args.pack})", file=sys.stderr)
        return 2
    from insightface.app import FaceAnalysis

    warnings.filterwarnings("ignore", category=FutureWarning)  # insightface's own deprecation notices

    baseline = FaceAnalysis(name=str(args.pack), providers=["CPUExecutionProvider"])
    baseline.prepare(ctx_id=0, det_size=(640, 640))
    engine = load_engine(f"insightface:{args.pack}", "cpu")

    # ----- scoring throughput --------------------------------------------------------------------------
    images = scoring_images()
    bgr = [np.ascontiguousarray(i[:, :, ::-1]) for i in images]
    baseline_faces = sum(len(baseline.get(i)) for i in bgr)
    our_faces = sum(len(f) for f in engine.analyze(images))
    t_base = median_of(args.repeat, lambda: [baseline.get(i) for i in bgr])
    t_ours = median_of(args.repeat, lambda: engine.analyze(images))
    base_rate, our_rate = baseline_faces / t_base, our_faces / t_ours
    print(
        f"scoring: {len(images)} images; baseline {baseline_faces} faces in {t_base:.3f} s ({base_rate:.1f} faces/s); "
        f"ours {our_faces} faces in {t_ours:.3f} s ({our_rate:.1f} faces/s)"
    )
    print(f"scoring speed-up (ours / baseline faces per second): {our_rate / base_rate:.2f}x  (aim >= 3x)")

    # ----- training from 20 photos -----------------------------------------------------------------------
    photos = training_photos()

    def baseline_training():
        vectors = []
        for photo in photos:
            found = baseline.get(np.ascontiguousarray(photo.source[:, :, ::-1]))
            if found:
                largest = max(found, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
                vectors.append(largest.normed_embedding)
        return np.mean(vectors, axis=0)

    t_base_train = median_of(args.repeat, baseline_training)
    jobs = []
    t_train = median_of(args.repeat, lambda: jobs.append(train(photos, "Bench", engine, registry=JobRegistry())))
    accepted = len(jobs[-1].profile.embeddings)
    print(
        f"training: {len(photos)} photos; baseline (largest face per photo, averaged) {t_base_train:.3f} s; "
        f"ours (verdicts, subject, calibration, references) {t_train:.3f} s, {accepted} accepted"
    )
    print(
        f"training time ratio (ours / baseline): {t_train / t_base_train:.2f}  (aim: ours < 3 s: "
        f"{'met' if t_train < 3 else 'NOT met'})"
    )
    print(f"(median of {args.repeat} runs each; both pipelines on the same decoded images, CPU provider)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
