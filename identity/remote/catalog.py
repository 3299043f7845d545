"""The closed models as a table, and a check of them against what each vendor serves today.

`python -m identity models` prints the table README shows (one renderer: a test keeps README equal to it);
`--check` asks each vendor that documents a models listing (Gemini `GET /v1beta/models`, OpenAI `GET /v1/models`)
which of the configured ids it still serves, with no paid call. Vendors move: a model that is no longer served
is named with the models.json override that points it at its new id.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlparse

import httpx

from ..errors import IdentityError
from .call import moved_fix
from .http import Policy, Transport
from .keys import KeyStore
from .models import BaseModel, provider_facts
from .providers import PROVIDERS

_VENDORS = {
    "gemini": "Gemini",
    "openai": "OpenAI Images",
    "dashscope": "DashScope",
    "bfl": "Black Forest Labs",
    "reve": "Reve",
    "phota": "Phota",
}
_COLUMNS = (
    "base model",
    "provider",
    "vendor id",
    "resolutions",
    "images in",
    "outputs per call",
    "quality",
    "price (USD)",
    "source",
    "checked",
)


def price_text(model: BaseModel) -> str:
    """The list price in a few words, as models.json holds it."""
    prices, kind = model.prices, model.prices.get("kind")
    usd = prices.get("usd") or {}
    if kind == "per_image":
        return " / ".join(f"{v:g} ({k})" for k, v in usd.items()) + " per image"
    if kind == "tokens":
        rates = prices["usd_per_million"]
        return "per 1M tokens: " + ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in rates.items())
    if kind == "per_megapixel":
        return f"{usd['first_mp']:g} first MP + {usd['extra_mp']:g} per more MP, {usd['input_mp']:g} per input MP"
    listed = ", ".join(f"{k} {v:g}" for k, v in usd.items())
    return f"{listed}; generate and edit as Phota bills them" if kind == "per_operation" else listed


def _vendor_id(model: BaseModel) -> str:
    if model.provider == "phota":
        return "its own profiles; `base_model` passes through"
    if model.provider == "reve":
        return "`/v2/image/create`" if model.api_model == "v2" else "`/v1/image/{create,edit,remix}`"
    return f"`{model.api_model}`"


def _source(model: BaseModel) -> tuple[str, str]:
    """(a link to where the vendor id was checked, the oldest check date among the model's facts)."""
    sources = model.sources
    first = sources.get("api_model") or sources.get("limits") or next(iter(sources.values()), {})
    url = first.get("url", "")
    host = urlparse(url).netloc.removeprefix("www.")
    dates = sorted(s["checked"] for s in sources.values() if s.get("checked"))
    return (f"[{host}]({url})" if url else "—"), (dates[0] if dates else "—")


def rows(models: dict[str, BaseModel]) -> list[list[str]]:
    table = []
    for model in models.values():
        source, checked = _source(model)
        table.append(
            [
                f"`{model.name}`",
                _VENDORS[model.provider] + (f" → `{model.via}`" if model.via else ""),
                _vendor_id(model),
                ", ".join(model.resolutions),
                str(model.max_input_images),
                str(model.max_outputs_per_request),
                "/".join(model.qualities) or "—",
                price_text(model),
                source,
                checked,
            ]
        )
    return table


def markdown(models: dict[str, BaseModel]) -> str:
    """The models table, as README shows it."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "| " + " | ".join("---" for _ in _COLUMNS) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows(models)]
    return "\n".join(lines)


# ----- the vendor check ------------------------------------------------------------------------------------------


@dataclass
class Served:
    model: BaseModel
    served: bool | None  # None: not checked (no listing documented, or no key)
    note: str

    def line(self) -> str:
        verdict = {True: "served", False: "NOT SERVED", None: "not checked"}[self.served]
        return f"{self.model.name}: {self.model.api_model or '-'} ({self.model.provider}): {verdict}; {self.note}"


def check(models: dict[str, BaseModel], keys: KeyStore, policy: Policy | None = None) -> list[Served]:
    """Whether each configured id is still served, from each vendor's listing (no paid call)."""
    return asyncio.run(_check(models, keys, policy or Policy()))


async def _check(models: dict[str, BaseModel], keys: KeyStore, policy: Policy) -> list[Served]:
    providers = {m.provider for m in models.values()}
    async with httpx.AsyncClient(follow_redirects=False) as client:
        answers = await asyncio.gather(*(_listing(p, keys, client, policy) for p in sorted(providers)))
    listed = dict(zip(sorted(providers), answers))
    results = []
    for model in models.values():
        ids, why = listed[model.provider]
        if ids is None:
            results.append(Served(model, None, why))
        elif model.api_model in ids:
            results.append(Served(model, True, f"listed by {model.provider}"))
        else:
            results.append(Served(model, False, f"{model.provider} does not list it: {moved_fix(model)}"))
    return results


async def _listing(provider: str, keys: KeyStore, client: httpx.AsyncClient, policy: Policy):
    """(the ids the vendor lists, None) or (None, why it was not checked)."""
    if not provider_facts(provider).listing:
        return None, f"{_VENDORS[provider]} documents no models listing"
    try:
        credentials = keys.credentials(provider)
        return await PROVIDERS[provider].served(Transport(provider, client, policy), credentials), ""
    except IdentityError as exc:
        return None, str(exc)
