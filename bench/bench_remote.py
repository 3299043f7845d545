"""The identity layer's own cost per closed-model request, and the fan-out speed-up, against the fake providers.

    .venv/bin/python bench/bench_remote.py [--repeat N] [--delay SECONDS]

Stages timed per request (nb2, one subject, one output): plan (validation, subject resolution, reference
choice and JPEG encoding), request building (layout + base64 JSON), decoding the returned image, and
verification (face detection + ArcFace scoring). Printed as milliseconds and as a share of the end-to-end
time. Fan-out: 4 outputs from a provider that returns one image per call, with each call held `--delay`
seconds by the fake: sequential calls (baseline) against the layer's concurrent calls, as a ratio. Input
fitting: a 12 MP photo fitted to DashScope's limits (downscale, PNG or JPEG) against plain PNG encoding of the
same photo (the old path), as a ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
from fake_providers import Fake  # noqa: E402
from PIL import Image  # noqa: E402

from identity.faces import load_engine  # noqa: E402
from identity.images import encode_png, load_image  # noqa: E402
from identity.remote.http import Policy  # noqa: E402
from identity.remote.keys import KeyStore  # noqa: E402
from identity.remote.models import provider_facts  # noqa: E402
from identity.remote.providers import gemini  # noqa: E402
from identity.remote.runner import RemoteRequest, execute, plan  # noqa: E402
from identity.remote.sizes import fit  # noqa: E402
from identity.remote.verify import check_outputs  # noqa: E402
from identity.training import photos_from_paths, train  # noqa: E402
from identity.training.jobs import JobRegistry  # noqa: E402

FACES = ROOT.parent / "shared" / "fixtures" / "faces"


def best(repeat: int, work) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.5)
    args = parser.parse_args()
    if not FACES.is_dir():
        print(f"needs the fixture photos in {FACES}", file=sys.stderr)
        return 2
    engine = load_engine("embedded", "cpu")
    profile = train(photos_from_paths([FACES / "obama"]), "Barack Obama", engine, registry=JobRegistry()).profile
    fake = Fake([load_image(FACES / "alex_lacamoire" / "alex1.jpg")]).start()
    keys = KeyStore(fake.keys_file(Path(tempfile.mkdtemp())), environ={})
    policy = Policy(base_delay=0.05)
    request = RemoteRequest(
        operation="generate", model="nb2", profiles=[profile], prompt="A portrait of [[barack-obama]]"
    )
    try:
        t_plan, planned = best(args.repeat, lambda: plan(request, keys, engine))
        t_build, _ = best(args.repeat, lambda: gemini.request_body(planned.call(1, 0)))
        t_total, result = best(args.repeat, lambda: asyncio.run(execute(planned, engine, policy)))
        image = result.images[0]
        png = fake.scene([profile.portraits[0]], None)
        t_decode, _ = best(args.repeat, lambda: load_image(png))
        t_verify, _ = best(args.repeat, lambda: check_outputs([image], [profile], engine))
        end_to_end = t_plan + t_total
        print("per request (nb2, 1 subject, 1 output, fake provider on 127.0.0.1), best of", args.repeat)
        for name, seconds in [
            ("plan: checks, subjects, 4 references encoded", t_plan),
            ("request body: layout + base64 JSON", t_build),
            ("decode the returned image", t_decode),
            ("verify: detect + ArcFace + assignment", t_verify),
            ("end to end (plan + execute)", end_to_end),
        ]:
            print(f"  {name:<48} {seconds * 1000:8.1f} ms")
        own = t_plan + t_build + t_decode + t_verify
        print(
            f"layer's own work / end to end: {own / end_to_end:.2f}  "
            f"(the rest is HTTP and the fake's own image composition)"
        )

        fake.reset(delay=args.delay)
        sequential, _ = best(1, lambda: [asyncio.run(execute(planned, engine, policy)) for _ in range(4)])
        fan_out = plan(
            RemoteRequest(
                operation="generate",
                model="nb2",
                profiles=[profile],
                prompt="A portrait of [[barack-obama]]",
                outputs=4,
            ),
            keys,
            engine,
        )
        concurrent, _ = best(1, lambda: asyncio.run(execute(fan_out, engine, policy)))
        print(
            f"fan-out, 4 images with {args.delay:.1f} s per call: sequential {sequential:.2f} s, concurrent "
            f"{concurrent:.2f} s, speed-up {sequential / concurrent:.2f}x"
        )

        photo = load_image(FACES / "groups" / "obama_biden_a.jpg")
        large = np.asarray(Image.fromarray(photo).resize((4000, 3000)))
        t_png, as_png = best(1, lambda: encode_png(large))
        t_fit, fitted = best(1, lambda: fit(large, provider_facts("dashscope").inputs))
        print(
            f"input fitting, 4000x3000 photo for DashScope: plain PNG {t_png * 1000:.0f} ms ({len(as_png) / 1e6:.1f} MB), "
            f"fitted {t_fit * 1000:.0f} ms ({len(fitted) / 1e6:.1f} MB), time ratio {t_fit / t_png:.2f}"
        )
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
