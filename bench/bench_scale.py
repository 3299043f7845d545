"""Throughput of `batch-score` per Ray worker, and how it scales from 1 worker to 2 (or more), in one run.

Starts a local Ray runtime with `--cpus` CPUs (default 2), then runs the real command (`python -m identity
batch-score --ray 127.0.0.1:PORT --workers N`) on the same images for each worker count, into fresh results
folders, plus once in this machine's single process for reference. Rates are the steady pace after the first
answer (start-up, which Ray pays once per run, is printed apart); the worker counts take turns `--repeat` times
and each keeps its best pace, so that load from other programs skews the ratio less.

    .venv/bin/python bench/bench_scale.py [--copies 4] [--workers 1 2] [--cpus 2] [--repeat 2] [--engine embedded]

Baseline: 1 worker. Aim: 2 workers at least 1.6x one worker where 2 cores are free.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from identity.faces import load_engine  # noqa: E402
from identity.profile import ProfileStore  # noqa: E402
from identity.scale.cluster import LOOPBACK_ONLY  # noqa: E402
from identity.training import photos_from_paths, train  # noqa: E402
from identity.training.jobs import JobRegistry  # noqa: E402

os.environ.update(LOOPBACK_ONLY)  # the bench's Ray runtime and the commands that join it stay on 127.0.0.1

SHARED = ROOT.parent / "shared"
FACES = SHARED / "fixtures" / "faces"


def dataset(folder: Path, copies: int) -> int:
    """The fixture photos `copies` times over (distinct paths, same pixels); returns how many images."""
    for n in range(copies):
        shutil.copytree(FACES, folder / f"copy{n}", ignore=shutil.ignore_patterns("*.json"))
    return sum(1 for p in folder.rglob("*") if p.is_file())


def batch(store: Path, images: Path, out: Path, engine: str, extra: list[str]) -> dict:
    command = [
        sys.executable,
        "-m",
        "identity",
        "batch-score",
        str(images),
        "--profile",
        "Barack Obama",
        "--profile",
        "Joe Biden",
        "--engine",
        engine,
        "--store",
        str(store),
        "--out",
        str(out),
        "--chunk",
        "4",
        "--json",
        *extra,
    ]
    environment = {**os.environ, "IDENTITY_MODELS_DIR": str(SHARED / "models")}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        sys.exit(f"batch-score failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)["this_run"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4, help="copies of the fixture photos to score (24 each)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker counts; the first is the baseline"
    )
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray runtime")
    parser.add_argument("--repeat", type=int, default=2, help="runs per worker count (the best pace counts)")
    parser.add_argument(
        "--engine", default="embedded", help="'embedded' or an insightface pack (name or insightface:DIR)"
    )
    args = parser.parse_args()
    if not FACES.is_dir():
        print(f"needs the fixture photos in {FACES}", file=sys.stderr)
        return 2
    import ray

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        tmp = Path(tmp)
        engine = load_engine(args.engine, "cpu")
        store = ProfileStore(tmp / "profiles")
        for name, folder in (("Barack Obama", "obama"), ("Joe Biden", "biden")):
            train(photos_from_paths([FACES / folder]), name, engine, store, registry=JobRegistry())
        count = dataset(tmp / "images", args.copies)
        print(
            f"{count} images ({args.copies}x the fixture photos), engine {engine.name}, "
            f"Ray runtime of {args.cpus} CPUs on this machine ({os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f} before the runs: cores busy with other work cap the scaling)"
        )

        local = batch(tmp / "profiles", tmp / "images", tmp / "local", args.engine, [])
        print(
            f"this process (all cores): {local['images_per_second']:.2f} images/s "
            f"(start-up {local['startup_seconds']:.1f} s)"
        )

        ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING")
        try:
            address = ray.get_runtime_context().gcs_address
            rates: dict[int, float] = {}
            for turn in range(args.repeat):
                for workers in args.workers:
                    run = batch(
                        tmp / "profiles",
                        tmp / "images",
                        tmp / f"ray{workers}-{turn}",
                        args.engine,
                        ["--ray", address, "--workers", str(workers)],
                    )
                    rates[workers] = max(rates.get(workers, 0.0), run["images_per_second"])
                    print(
                        f"Ray, {workers} worker(s): {run['images_per_second']:.2f} images/s, "
                        f"{run['images_per_second'] / workers:.2f} per worker (start-up {run['startup_seconds']:.1f} s)"
                    )
        finally:
            ray.shutdown()
    base = args.workers[0]
    for workers in args.workers:
        print(f"best: {workers} worker(s) {rates[workers]:.2f} images/s, {rates[workers] / workers:.2f} per worker")
    for workers in args.workers[1:]:
        ratio = rates[workers] / rates[base]
        print(
            f"scaling {base} -> {workers} workers: {ratio:.2f}x (ideal {workers / base:.0f}x; "
            f"efficiency {ratio / (workers / base):.0%}; load average now {os.getloadavg()[0]:.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
