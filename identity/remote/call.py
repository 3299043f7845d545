"""One provider call: what it carries, how its images and words are laid out, and how its failures read.

The layout is where identity happens for a closed model: the input images first, then each subject's
reference portraits, and text that says which image shows whom, in the convention the model understands
(numbered images for most, `<img>N</img>` tags for Reve). `[[ref]]`s in the prompt become the person's name
with the images that show them.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field

import httpx

from ..errors import ModelMoved, ModerationRefused, ProviderError
from ..profile import Profile
from ..prompt import compile_prompt, numbered
from .http import Transport, gateway_timeout
from .keys import KEY_VARIABLES, Credentials, excerpt
from .models import BaseModel, overrides_file, provider_facts

_INTROS = {
    "generate": "",
    "edit": "{inputs} {is_are} the photo{s} to edit.",
    "enhance": "{inputs} is the photo to enhance: keep its composition and lighting, and restore every face so that "
    "each person looks exactly like themselves.",
    "remix": "{first} is the input image and {second} is the style reference: keep the input's content and people, "
    "in the style of the reference.",
}


@dataclass(kw_only=True)
class Call:
    operation: str
    model: BaseModel
    resolution: str
    aspect_ratio: str
    quality: str
    prompt: str
    subjects: list[Profile]
    references: list[list[bytes]]  # per subject, encoded portraits (JPEG)
    inputs: list[bytes] = field(default_factory=list)  # encoded input images (PNG), in operation order
    outputs: int = 1
    seed: int | None = None
    external_ids: list[str] = field(default_factory=list)  # Phota's own profile ids
    ratio: float | None = None  # output width / height (`auto`: the input photo's), None: the model decides
    request_id: str | None = None  # ours: sent where the provider takes one, named when a charge is uncertain


@dataclass
class Generated:
    image: bytes
    request_id: str | None = None
    cost_usd: float | None = None  # what the provider reported, in USD, when it does
    provider_cost: dict | None = None  # what the provider reported in its own units
    notice: str | None = None  # the provider says this model is deprecated (a sentence naming the fix)


@dataclass
class Layout:
    images: list[bytes]
    text: str


def layout(call: Call, tags: bool = False) -> Layout:
    """Images in sending order and the full text; `tags` gives Reve's 0-based `<img>N</img>` convention."""

    def refer(numbers: list[int]) -> str:
        return " ".join(f"<img>{n - 1}</img>" for n in numbers) if tags else numbered(numbers)

    images = list(call.inputs)
    lines = []
    count = len(call.inputs)
    if count and _INTROS[call.operation]:
        intro = _INTROS[call.operation].format(
            inputs=refer(list(range(1, count + 1))),
            first=refer([1]),
            second=refer([2]),
            is_are="is" if count == 1 else "are",
            s="" if count == 1 else "s",
        )
        lines.append(intro[0].upper() + intro[1:])
    described = {}
    for subject, references in zip(call.subjects, call.references):
        first = len(images) + 1
        numbers = list(range(first, first + len(references)))
        images += references
        if tags:
            described[subject.id] = f"{subject.name} {refer(numbers)}"
        else:
            shows = "shows" if len(numbers) == 1 else "show"
            lines.append(f"{refer(numbers).capitalize()} {shows} {subject.name}.")
            described[subject.id] = f"{subject.name} (the {subject.kind} in {refer(numbers)})"
    text = compile_prompt(call.prompt, call.subjects, lambda p: described[p.id])
    unnamed = [s for s in call.subjects if s.name not in text]
    if unnamed:
        keep = ", ".join(described[s.id] for s in unnamed)
        lines.append(f"Keep the identity of {keep}." if call.operation != "generate" else f"Show {keep}.")
    return Layout(images, " ".join(lines) + ("\n\n" + text if text else ""))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def mime(data: bytes) -> str:
    return "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"


def data_url(data: bytes) -> str:
    return f"data:{mime(data)};base64,{b64(data)}"


def decode_b64(text, provider: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise ProviderError(f"{provider} sent image data that is not valid base64", provider) from None


def body(response: httpx.Response, credentials: Credentials) -> dict:
    """The JSON object of an answer, or a clear error (with the key blanked out) when it is anything else."""
    provider = credentials.provider
    try:
        data = response.json()
    except ValueError:
        if response.status_code >= 400:  # an error page (a gateway's HTML): the status says what happened
            raise fail(response, credentials, f"a body that is not JSON ({excerpt(response.text, 80)!r})") from None
        raise ProviderError(
            f"{provider} answered HTTP {response.status_code} with a body that is not JSON "
            f"({excerpt(response.text, 80)!r})",
            provider,
            response.status_code,
        ) from None
    if not isinstance(data, dict):
        raise ProviderError(
            f"{provider} answered HTTP {response.status_code} with JSON that is not an object "
            f"({excerpt(response.text, 80)!r})",
            provider,
            response.status_code,
        )
    return data


def member(data, *path, kind: type = dict):
    """`data[path[0]][path[1]]…` when every step exists and the value is a `kind`, else an empty `kind`.

    Providers' answers are read through this: a field of an unexpected type becomes "missing", which the
    caller reports in one sentence, instead of a TypeError deep inside.
    """
    for key in path:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return kind()
    return data if isinstance(data, kind) and not (kind is int and isinstance(data, bool)) else kind()


def message(value) -> str:
    """A provider's error detail as text, whatever its type (a string, an object with a message, a list …)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("message", "msg", "detail", "error", "status", "code"):
            if value.get(key):
                return message(value[key])
    if isinstance(value, list) and value:
        return "; ".join(message(v) for v in value[:3])
    return "" if value is None else json.dumps(value)[:200]


async def download(
    transport: Transport, url: str, credentials: Credentials, request_id: str | None, headers: dict | None = None
) -> bytes:
    """A result image that a provider answers with a URL (valid for minutes to hours: fetched at once)."""
    image = await transport.request("GET", url, kind="download", headers=headers or {})
    if image.status_code != 200:
        raise fail(image, credentials, f"downloading the result failed (HTTP {image.status_code})", request_id)
    return image.content


#: What vendors answer when a model id is unknown or retired (Gemini "models/x is not found", OpenAI "does not
#: exist" / model_not_found, DashScope "Model not exist", and the words of deprecation notices).
_GONE = re.compile(
    r"not.found|does not exist|not exist|no longer|deprecat|retired|shut.?down|decommission|unknown model|sunset",
    re.IGNORECASE,
)


def moved_fix(model: BaseModel) -> str:
    """The fix for a model the vendor moved: the override that names its new id."""
    example = json.dumps({"models": {model.name: {"api_model": "<the new id>"}}})
    return (
        f"set the id the vendor serves now in {overrides_file()} ({example}) or pick another base model; "
        "`python -m identity models --check` lists the ids each vendor still serves"
    )


def deprecation(response: httpx.Response, call: Call) -> str | None:
    """A sentence for a successful answer that says, in its headers, that the model is deprecated (`Deprecation`,
    `Sunset`, RFC 9745 / RFC 8594), or None."""
    when = response.headers.get("sunset") or response.headers.get("deprecation")
    if not when or not call.model.api_model:
        return None
    return (
        f"{call.model.provider} says model {call.model.api_model!r} "
        f"({call.model.name}) is deprecated (until {when}); {moved_fix(call.model)}"
    )


def fail(
    response: httpx.Response,
    credentials: Credentials,
    detail: str = "",
    request_id: str | None = None,
    moderation: bool = False,
    model: BaseModel | None = None,
) -> ProviderError:
    """The error for a provider's error answer, phrased for the user and with the key blanked out. With `model`
    (the answer to the paid call itself), an answer that the model is unknown or retired says so, with the fix."""
    provider, status = credentials.provider, response.status_code
    detail = excerpt(detail or response.text)  # scrubbed of every key in use, before it is cut
    if moderation:
        return ModerationRefused(
            f"{provider} refused the request on content grounds: {detail}", provider, status, request_id
        )
    if model is not None and model.api_model and _moved(response, detail):
        return ModelMoved(
            f"{provider} no longer serves model {model.api_model!r} for {model.name} (HTTP {status}: {detail}); "
            f"{moved_fix(model)}",
            provider,
            status,
            request_id,
        )
    if status in (401, 403):
        text = f"{provider} rejected the API key (HTTP {status}); check {' / '.join(KEY_VARIABLES[provider])}"
    elif status == 402:
        text = f"{provider} says the account is out of credit (HTTP 402)"
    elif status == 429:
        text = f"{provider} is rate-limiting requests (HTTP 429) and retries did not get through; wait and try again"
    elif status == 504:
        refunded = provider_facts(provider).refunds_gateway_timeouts
        then = "; try again later" if refunded else ", check the provider's dashboard before retrying"
        text = gateway_timeout(provider) + then
    elif status >= 500:
        text = f"{provider} had a server error (HTTP {status}) on every retry; try again later"
    else:
        text = f"{provider} rejected the request (HTTP {status})"
    return ProviderError(f"{text}: {detail}" if detail else text, provider, status, request_id)


def _moved(response: httpx.Response, detail: str) -> bool:
    """A 404/410 to the model's own call, or a 400 whose text says the model is unknown or retired; or any refusal
    that carries a deprecation header."""
    status = response.status_code
    if status in (404, 410) or (
        400 <= status < 500 and ("sunset" in response.headers or "deprecation" in response.headers)
    ):
        return True
    return status == 400 and "model" in detail.lower() and bool(_GONE.search(detail))
