"""The base models a request can go to, read from `models.json`: what each accepts, and what it costs.

The facts (provider model ids, limits, prices, timeouts) live in data with the source and date of each, because
they change under us: Google retires model ids, vendors change prices. A user can override a model id or a
price, or add a model id that behaves like a known one, in `user/identity_layer/models.json`, without code.
Every combination a model cannot take is refused here, before any network call, with the allowed values.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import InvalidRequest
from ..paths import PACK_ROOT, comfyui_root
from .user_files import parse_json, read_text

log = logging.getLogger(__name__)

FACTS_FILE = Path(__file__).with_name("models.json")
DEFAULT_MODEL = "nb2"
_SIDE = {"1K": 1024, "2K": 2048, "4K": 4096}
_MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_API_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")  # goes into a URL path: no '/', '?' or '#'


#: What is retried where a provider documents nothing else: timeouts, rate limits and passing server errors.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ProviderFacts:
    timeouts: dict  # seconds: connect, generate (the paid request), poll, download, job (an async job's budget)
    idempotency_key: str | None  # the request field that makes a re-sent submit safe, where documented
    inputs: dict  # max_side, min_side, max_pixels, max_image_bytes, max_request_bytes
    listing: str | None = None  # the documented path that lists the model ids a key may call, where there is one
    retry_statuses: frozenset = RETRY_STATUSES  # answers worth sending the request again for
    retry_header: str | None = None  # a header whose "true"/"false" overrides the status (OpenAI's x-should-retry)
    refunds_gateway_timeouts: bool = False  # a request that timed out (HTTP 504) is documented as not charged


@dataclass(frozen=True)
class BaseModel:
    name: str
    provider: str  # gemini | openai | dashscope | bfl | reve | phota
    resolutions: tuple[str, ...]
    aspect_ratios: tuple[str, ...]
    max_input_images: int  # per request, input images and identity references together
    max_outputs_per_request: int  # 1: one call per output image, run concurrently
    operations: tuple[str, ...]
    prices: dict  # {"kind": per_image|tokens|per_megapixel|per_operation, "usd"|"usd_per_million": {...}}
    qualities: tuple[str, ...] = ()  # only where the provider has a quality setting
    pinned: dict = field(default_factory=dict)  # operation -> resolution it always runs at
    api_model: str = ""  # the provider's own model id, where the request names one
    via: str = ""  # for Phota: the base model Phota routes to
    pixels: dict = field(default_factory=dict)  # output size rules: min/max_pixels, multiple, min_side …
    options: dict = field(default_factory=dict)  # provider-specific request settings (e.g. Gemini's thinking level)
    sources: dict = field(default_factory=dict)  # fact -> {url, checked, note}: where each fact was checked, and when

    def validate(self, operation: str, resolution: str, aspect_ratio: str, quality: str, outputs: int) -> str:
        """Refuse what this model cannot take; returns the resolution the request will run at."""
        _check(operation, self.operations, f"{self.name} cannot {operation}", "operations")
        if operation in self.pinned:
            resolution = self.pinned[operation]  # e.g. enhance always runs at 2K, whatever was picked
        _check(resolution, self.resolutions, f"{self.name} does not offer resolution {resolution!r}", "resolutions")
        _check(
            aspect_ratio,
            self.aspect_ratios,
            f"{self.name} does not offer aspect ratio {aspect_ratio!r}",
            "aspect ratios",
        )
        if self.qualities:
            _check(quality, self.qualities, f"{self.name} does not offer quality {quality!r}", "qualities")
        elif quality not in ("", "auto"):
            offering = ", ".join(m.name for m in _BUNDLED.values() if m.qualities and m.provider != "phota")
            raise InvalidRequest(
                f"quality applies only to {offering}; {self.name} takes quality 'auto' (got {quality!r})"
            )
        if not 1 <= outputs <= 4:
            raise InvalidRequest(f"num_output_images must be 1 to 4 (got {outputs})")
        return resolution

    def estimated_cost(
        self, resolution: str, images: int, operation: str = "generate", input_pixels: int = 0
    ) -> float | None:
        """List price of `images` outputs (USD), or None where it is metered (tokens) or not known. Where the
        price depends on the endpoint the provider module picks (Reve), the dearest is assumed here and the module
        reports what its call cost."""
        kind, usd = self.prices.get("kind"), self.prices.get("usd") or {}
        if kind == "per_image" and resolution in usd:
            return round(usd[resolution] * images, 4)
        if kind == "per_operation" and operation in usd:
            return round(usd[operation] * images, 4)
        if kind == "per_endpoint" and usd:
            return round(max(usd.values()) * images, 4)
        if kind == "per_megapixel":
            out_mp = min(_SIDE[resolution] ** 2, self.pixels.get("max_pixels", 10**9)) / 1e6
            one = usd["first_mp"] + usd["extra_mp"] * max(0.0, out_mp - 1) + usd["input_mp"] * input_pixels / 1e6
            return round(one * images, 4)
        return None


def _check(value, allowed, problem: str, what: str) -> None:
    if value not in allowed:
        raise InvalidRequest(f"{problem}; allowed {what}: {', '.join(allowed)}")


# ----- the facts file ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _facts() -> dict:
    """The shipped facts, read once (treat as read-only)."""
    return json.loads(FACTS_FILE.read_text())


def _model(name: str, entry: dict) -> BaseModel:
    return BaseModel(
        name,
        entry["provider"],
        tuple(entry["resolutions"]),
        tuple(entry["aspect_ratios"]),
        entry["max_input_images"],
        entry["max_outputs_per_request"],
        tuple(entry["operations"]),
        entry["prices"],
        tuple(entry.get("qualities", ())),
        dict(entry.get("pinned", {})),
        entry.get("api_model", ""),
        pixels=dict(entry.get("pixels", {})),
        options=dict(entry.get("options", {})),
        sources=dict(entry.get("sources", {})),
    )


def _phota(models: dict[str, BaseModel], phota: dict) -> list[BaseModel]:
    """Phota routes to a base model itself (one of its five names); its limits are Phota's. Its /enhance and
    /remix run on nb2 only."""
    pinned_to = phota["pinned_base_model"]
    return [
        BaseModel(
            f"phota/{m.name}",
            "phota",
            m.resolutions,
            tuple(phota["aspect_ratios"]),
            phota["max_input_images"],
            phota["max_outputs_per_request"],
            ("generate", "edit") + tuple(op for op, base in pinned_to.items() if base == m.name),
            phota["prices"],
            m.qualities,
            dict(phota["pinned"]),
            via=m.name,
            sources=dict(phota["sources"]),
        )
        for m in (models[name] for name in phota["base_models"])
    ]


def provider_facts(provider: str) -> ProviderFacts:
    entry = _facts()["providers"][provider]
    retry = entry.get("retry", {})
    return ProviderFacts(
        entry["timeouts_s"],
        entry["idempotency_key"],
        entry["inputs"],
        entry.get("listing"),
        frozenset(retry.get("statuses", RETRY_STATUSES)),
        retry.get("header"),
        entry.get("refunds_gateway_timeouts", False),
    )


# ----- user overrides ---------------------------------------------------------------------------------------


def user_folder() -> Path:
    """`user/identity_layer/`: in ComfyUI's user folder when installed, else beside the checkout;
    `IDENTITY_USER_DIR` overrides both."""
    if os.environ.get("IDENTITY_USER_DIR"):
        return Path(os.environ["IDENTITY_USER_DIR"]).expanduser()
    root = comfyui_root()
    return (root / "user" if root else PACK_ROOT / "user") / "identity_layer"


def overrides_file() -> Path:
    return user_folder() / "models.json"


def _line(text: str, *needles: str) -> int:
    """The line where the needles appear in this order (for error messages); 1 if they cannot be found."""
    lines, at = text.splitlines(), 0
    for needle in needles:
        quoted = json.dumps(needle)
        at = next((i for i in range(at, len(lines)) if quoted in lines[i]), at)
    return at + 1


def apply_overrides(models: dict[str, BaseModel], path: Path) -> dict[str, BaseModel]:
    """`models` with the user's overrides from `path` applied; raises `InvalidRequest` naming the bad line."""
    text = read_text(path)  # a regular file of UTF-8 text, or one sentence (see user_files.py)
    if text is None:
        return dict(models)
    where = f"{path}"
    data = parse_json(text, path)
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or set(data) - {"models"}:
        raise InvalidRequest(f'{where} line 1: expected {{"models": {{"<name>": {{...}}}}}} and nothing else')
    result = dict(models)
    for name, entry in entries.items():
        bad = lambda problem, *keys: InvalidRequest(
            f"{where} line {_line(text, name, *keys)}: model {name!r}: {problem}"
        )
        if not _MODEL_NAME.fullmatch(name):
            raise bad("a model name is lower-case letters, digits, '.', '_' or '-' (no '/')")
        if not isinstance(entry, dict):
            raise bad("expected an object with api_model, prices or like")
        unknown = set(entry) - {"like", "api_model", "prices"}
        if unknown:
            key = sorted(unknown)[0]
            raise bad(f"unknown field {key!r}; allowed: like, api_model, prices", key)
        like = entry.get("like", name)
        if like not in models:
            raise bad(
                f"{'like' if 'like' in entry else 'a new model needs'} names no known model "
                f"(known: {', '.join(models)})",
                *(["like"] if "like" in entry else []),
            )
        base = replace(models[like], name=name)
        if "api_model" in entry:
            if not isinstance(entry["api_model"], str) or not _API_MODEL.fullmatch(entry["api_model"]):
                raise bad(
                    "api_model must be the provider's model id (letters, digits, '.', '_', ':', '-')", "api_model"
                )
            base = replace(
                base,
                api_model=entry["api_model"],
                sources={**base.sources, "api_model": {"note": f"your override in {path}"}},
            )
        if "prices" in entry:
            base = replace(base, prices=_prices(base, entry["prices"], lambda p: bad(p, "prices")))
        result[name] = base
    return result


def _prices(model: BaseModel, given, bad) -> dict:
    table = "usd_per_million" if model.prices["kind"] == "tokens" else "usd"
    known = model.prices[table]
    if not isinstance(given, dict) or set(given) - set(known) or not given:
        raise bad(f"prices takes {', '.join(known)} (USD{' per 1M tokens' if table != 'usd' else ''})")
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise bad(f"price {key!r} must be a number of dollars, 0 or more (got {value!r})")
    return {**model.prices, table: {**known, **given}}


# ----- the registry -----------------------------------------------------------------------------------------


def _bundled() -> dict[str, BaseModel]:
    facts = _facts()
    models = {name: _model(name, entry) for name, entry in facts["models"].items()}
    return {**models, **{m.name: m for m in _phota(models, facts["phota"])}}


_BUNDLED = _bundled()
_loaded: dict = {"stamp": None, "models": _BUNDLED, "error": None}


def registry() -> dict[str, BaseModel]:
    """Every base model, with the user's overrides (re-read when the file changes); raises if they are invalid."""
    path = overrides_file()
    try:
        stat = path.stat()
        stamp = (str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None
    if stamp != _loaded["stamp"]:
        _loaded.update(stamp=stamp, models=_BUNDLED, error=None)
        if stamp is not None:
            try:
                _loaded["models"] = apply_overrides(_BUNDLED, path)
            except InvalidRequest as exc:
                _loaded["error"] = exc
                log.warning("identity layer: %s (the shipped models are listed meanwhile)", exc)
    if _loaded["error"] is not None:
        raise _loaded["error"]
    return _loaded["models"]


def model_names() -> list[str]:
    """For the node's picker: never fails (a broken overrides file is reported when a request runs)."""
    try:
        return list(registry())
    except InvalidRequest:
        return list(_BUNDLED)


def base_model(name: str) -> BaseModel:
    models = registry()
    if name not in models:
        raise InvalidRequest(f"unknown base model {name!r}; choose one of: {', '.join(models)}")
    return models[name]


def list_prices(operation: str) -> dict[str, tuple[float, float] | None]:
    """Per model that can do `operation`: its list price for one output image at its cheapest and dearest
    resolution (an edit's input pixels not counted), or None where it is metered (tokens) or not listed: what the
    paid nodes show before anything is queued."""
    prices = {}
    for model in registry().values():
        if operation not in model.operations:
            continue
        resolutions = [model.pinned[operation]] if operation in model.pinned else model.resolutions
        costs = [c for c in (model.estimated_cost(r, 1, operation) for r in resolutions) if c is not None]
        prices[model.name] = (min(costs), max(costs)) if costs else None
    return prices


def all_values(attribute: str) -> list[str]:
    """Every value any model offers (for the node's pickers), in first-seen order."""
    return list(dict.fromkeys(v for m in _BUNDLED.values() for v in getattr(m, attribute)))


def quality_choices() -> list[str]:
    """'auto' (which every model takes) and every quality any model offers: the CLI's and the node's choices."""
    return list(dict.fromkeys(["auto", *all_values("qualities")]))


BASE_MODELS = _BUNDLED  # the models as shipped (README's table is checked against these)
