"""`python -m identity generate|edit|phota-link|models`: closed models from scripts and CI, without ComfyUI.

Keys and base URLs as for the nodes: `…_API_KEY` and `IDENTITY_<PROVIDER>_BASE_URL` in the environment, or the
keys file (`user/identity_layer/keys.json`, or `--keys-file`). Exit 0 when outputs were saved; otherwise one
line on stderr and a non-zero exit (the top-level CLI prints every `IdentityError` that way).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from PIL import Image

from ..errors import InvalidRequest
from ..faces import load_engine
from ..images import load_image
from ..paths import profiles_dir
from ..profile import ProfileStore
from ..prompt import PROFILE_REF
from ..text import printable
from .keys import KeyStore
from .models import DEFAULT_MODEL, all_values, model_names, quality_choices, user_folder


def register(command) -> None:
    """Adds the subcommands; `command(name, run, help, store=…, engine=…)` is the top-level CLI's helper."""
    sub = command("generate", _generate, "Generate images of people with a closed model, verified.", engine=True)
    _request_options(sub, profiles_required=True)
    sub = command(
        "edit", _edit, "Edit photos with a closed model; the people in them keep their identity.", engine=True
    )
    sub.add_argument("photos", nargs="+", type=Path, help="the photos to edit")
    _request_options(sub, profiles_required=False)
    sub = command(
        "phota-link",
        _phota_link,
        "Link a local profile to the Phota profile of the same person "
        "(checked with Phota, whose training status is shown).",
    )
    sub.add_argument("profile", help="local profile id or name")
    sub.add_argument("phota_id", nargs="?", help="the id POST /v1/phota/profiles/add returned (omit with --unlink)")
    sub.add_argument("--unlink", action="store_true", help="remove the link")
    sub.add_argument("--keys-file", type=Path, default=None, help=f"default: {user_folder() / 'keys.json'}")
    sub = command(
        "models",
        _models,
        "Show the closed models (vendor id, limits, price, source); --check asks each vendor that lists its "
        "models which ids it still serves (no paid call; exit 1 if one is not).",
        store=False,
    )
    sub.add_argument("--check", action="store_true", help="ask the vendors' models listings (needs the keys)")
    sub.add_argument("--keys-file", type=Path, default=None, help=f"default: {user_folder() / 'keys.json'}")


def _request_options(sub, profiles_required: bool) -> None:
    sub.add_argument("--prompt", required=profiles_required, default="", help="text; name people as [[profile-id]]")
    sub.add_argument(
        "--profile",
        action="append",
        dest="profiles",
        required=profiles_required,
        default=None,
        metavar="ID_OR_NAME",
        help="a profile to carry (repeat for several)",
    )
    sub.add_argument("--base-model", default=DEFAULT_MODEL, choices=model_names(), help=f"default: {DEFAULT_MODEL}")
    sub.add_argument("--resolution", default="1K", choices=all_values("resolutions"))
    sub.add_argument("--aspect-ratio", default="auto", choices=all_values("aspect_ratios"))
    sub.add_argument("--quality", default="auto", choices=quality_choices())
    sub.add_argument("--outputs", type=int, default=1, help="images to keep (1-4)")
    sub.add_argument("--rerolls", type=int, default=0, help="extra images for outputs that fail verification")
    sub.add_argument("--max-cost-usd", type=float, default=0.0, help="stop re-rolling past this (0: no limit)")
    sub.add_argument("--seed", type=int, default=None)
    sub.add_argument("--out", type=Path, required=True, help="folder for the images")
    sub.add_argument("--keys-file", type=Path, default=None, help=f"default: {user_folder() / 'keys.json'}")
    sub.add_argument("--json", action="store_true", help="print the report the nodes give, as JSON")


def _generate(args) -> int:
    return _run(args, "generate", [])


def _edit(args) -> int:
    return _run(args, "edit", [load_image(path) for path in args.photos])


def _run(args, operation: str, inputs: list) -> int:
    from .runner import RemoteRequest, run  # here: `python -m identity score` should not pay for httpx

    out = _writable_folder(args.out)  # before anything costs time or money
    store = ProfileStore(args.store or profiles_dir())
    chosen = [store.load(store.resolve(value)) for value in args.profiles or []]
    profiles = chosen
    if operation == "edit" and not chosen:  # the people are those the prompt names, from the whole store
        if not PROFILE_REF.search(args.prompt):
            raise InvalidRequest("name the people to keep as [[profile-id]] in --prompt, or pass --profile")
        profiles = [store.load(s["id"]) for s in store.summaries()]
        if not profiles:
            raise InvalidRequest(
                f"the profile folder {printable(str(store.folder))} holds no profiles: train one first "
                "(python -m identity train PHOTOS --name NAME), or pass --store"
            )
    request = RemoteRequest(
        operation=operation,
        model=args.base_model,
        profiles=profiles,
        prompt=args.prompt,
        resolution=args.resolution,
        aspect_ratio=args.aspect_ratio,
        quality=args.quality,
        candidates=[p.id for p in chosen] if operation == "edit" else [],
        inputs=inputs,
        outputs=args.outputs,
        rerolls=args.rerolls,
        max_cost=args.max_cost_usd,
        seed=args.seed,
        cohort=store,
    )
    result = run(request, _keys(args), load_engine(args.engine, args.provider))
    saved = []
    for rank, image in enumerate(result.images, 1):
        path = out / f"{operation}_{rank}.png"
        Image.fromarray(image).save(path)
        saved.append(str(path))
    for notice in result.report["notices"]:
        print(f"warning: {notice}", file=sys.stderr)
    if args.json:
        print(json.dumps({**result.report, "saved": saved}, indent=2, ensure_ascii=False))
    else:
        for path, score in zip(saved, result.scores):
            print(f"{path}  weakest similarity {score:.3f}")
        print(
            f"cost ${result.report['cost_usd']:.3f}{' (estimated)' if result.report['cost_estimated'] else ''}",
            file=sys.stderr,
        )
    return 0


def _phota_link(args) -> int:
    from .phota_links import default_links

    store = ProfileStore(args.store or profiles_dir())
    profile = store.load(store.resolve(args.profile))
    links = default_links()
    if args.unlink:
        print(f"{profile.name}: {'unlinked' if links.unlink(profile.id) else 'was not linked'}")
        return 0
    if not args.phota_id:
        raise InvalidRequest("give the Phota profile id to link (or --unlink)")
    state = asyncio.run(links.link_checked(profile.id, args.phota_id, _keys(args).credentials("phota")))
    note = f" ({state['message']})" if isinstance(state.get("message"), str) and state["message"] else ""
    print(f"{profile.name} ({profile.id}) → Phota profile {args.phota_id}: {state['status']}{note}")
    if state["status"] != "READY":
        print(
            "phota/… requests with this profile wait until Phota reports READY (training takes about 20 minutes)",
            file=sys.stderr,
        )
    return 0


def _models(args) -> int:
    from . import catalog
    from .models import registry  # with the user's overrides: what a request would call

    models = registry()
    if not args.check:
        print(catalog.markdown(models))
        return 0
    results = catalog.check({n: m for n, m in models.items() if m.provider != "phota"}, _keys(args))
    for result in results:
        print(result.line())
    return 1 if any(r.served is False for r in results) else 0


def _keys(args) -> KeyStore:
    return KeyStore(args.keys_file or user_folder() / "keys.json")


def _writable_folder(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:
        raise InvalidRequest(
            f"--out {folder} cannot be used as a folder ({getattr(exc, 'strerror', None) or exc}); "
            "give a folder you can write to"
        ) from None
    if not os.access(folder, os.W_OK):
        raise InvalidRequest(f"--out {folder} is not writable; give a folder you can write to")
    return folder
