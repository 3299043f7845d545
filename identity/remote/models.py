"""The base models a request can go to, as data: what each accepts, and what it costs.

Every combination a model cannot take is refused here, before any network call, with a message that names
the allowed values. Prices are list prices used for the cost estimates in reports (USD); where a provider
reports the real charge (BFL `cost`, Reve `credits_used`, OpenAI token usage) the report uses that instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InvalidRequest

OPERATIONS = ("generate", "edit", "enhance", "remix")

_COMMON_RATIOS = ("auto", "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


@dataclass(frozen=True)
class BaseModel:
    name: str
    provider: str  # gemini | openai | dashscope | bfl | reve | phota
    resolutions: tuple[str, ...]
    aspect_ratios: tuple[str, ...]
    max_input_images: int  # per request, input images and identity references together
    max_outputs_per_request: int  # 1: one call per output image, run concurrently
    operations: tuple[str, ...]
    pricing: str  # "flat" (per image, by resolution) | "tokens" (metered)
    prices: dict = field(default_factory=dict)  # flat: {resolution: usd}; tokens: usd per 1M {text_in, image_in, image_out}
    qualities: tuple[str, ...] = ()  # only where the provider has a quality setting
    pinned: dict = field(default_factory=dict)  # operation -> resolution it always runs at
    api_model: str = ""  # the provider's own model id, where the request names one
    via: str = ""  # for Phota: the base model Phota routes to

    def validate(self, operation: str, resolution: str, aspect_ratio: str, quality: str, outputs: int) -> str:
        """Refuse what this model cannot take; returns the resolution the request will run at."""
        _check(operation, self.operations, f"{self.name} cannot {operation}", "operations")
        if operation in self.pinned:
            resolution = self.pinned[operation]  # e.g. enhance always runs at 2K, whatever was picked
        _check(resolution, self.resolutions, f"{self.name} does not offer resolution {resolution!r}", "resolutions")
        _check(aspect_ratio, self.aspect_ratios, f"{self.name} does not offer aspect ratio {aspect_ratio!r}", "aspect ratios")
        if self.qualities:
            _check(quality, self.qualities, f"{self.name} does not offer quality {quality!r}", "qualities")
        elif quality not in ("", "auto"):
            raise InvalidRequest(f"quality applies only to gpt-image-2; {self.name} takes quality 'auto' (got {quality!r})")
        if not 1 <= outputs <= 4:
            raise InvalidRequest(f"num_output_images must be 1 to 4 (got {outputs})")
        return resolution

    def estimated_cost(self, resolution: str, images: int) -> float | None:
        if self.pricing == "flat" and resolution in self.prices:
            return round(self.prices[resolution] * images, 4)
        return None


def _check(value, allowed, problem: str, what: str) -> None:
    if value not in allowed:
        raise InvalidRequest(f"{problem}; allowed {what}: {', '.join(allowed)}")


_BASE = [
    BaseModel("nb2", "gemini", ("1K", "2K", "4K"), _COMMON_RATIOS + ("1:4", "4:1", "1:8", "8:1"), 14, 1,
              OPERATIONS, "flat", {"1K": 0.067, "2K": 0.101, "4K": 0.151}, pinned={"enhance": "2K"},
              api_model="gemini-3.1-flash-image-preview"),
    BaseModel("gpt-image-2", "openai", ("1K", "2K", "4K"), ("auto", "1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9"),
              16, 4, ("generate", "edit", "remix"), "tokens",
              {"text_in": 5.0, "image_in": 10.0, "image_out": 40.0}, qualities=("auto", "low", "medium", "high"),
              api_model="gpt-image-2"),
    BaseModel("qwen-image-2", "dashscope", ("1K", "2K"), ("auto", "1:1", "16:9", "9:16", "4:3", "3:4"), 3, 4,
              ("generate", "edit", "remix"), "flat", {"1K": 0.035, "2K": 0.05}, api_model="qwen-image-2.0-pro"),
    BaseModel("flux-2", "bfl", ("1K", "2K"), _COMMON_RATIOS, 8, 1, ("generate", "edit", "remix"), "flat",
              {"1K": 0.03, "2K": 0.06}, api_model="flux-2-pro"),
    BaseModel("reve", "reve", ("1K",), ("auto", "16:9", "9:16", "3:2", "2:3", "4:3", "3:4", "1:1"), 6, 1,
              ("generate", "edit", "remix"), "flat", {"1K": 0.04}),
]

#: Phota routes to a base model itself; its limits are Phota's (10 input images, 4 outputs per request). Its
#: /enhance always runs on nb2 at 2K and its /remix at 2K, so only the base models that can, offer them.
_PHOTA = [
    BaseModel(f"phota/{m.name}", "phota", m.resolutions, ("auto", "1:1", "3:4", "4:3", "9:16", "16:9"), 10, 4,
              ("generate", "edit") + (("enhance",) if m.name == "nb2" else ()) + (("remix",) if "2K" in m.resolutions else ()),
              "flat", {}, qualities=m.qualities, pinned={"enhance": "2K", "remix": "2K"}, via=m.name)
    for m in _BASE
]

BASE_MODELS: dict[str, BaseModel] = {m.name: m for m in _BASE + _PHOTA}
DEFAULT_MODEL = "nb2"


def base_model(name: str) -> BaseModel:
    if name not in BASE_MODELS:
        raise InvalidRequest(f"unknown base model {name!r}; choose one of: {', '.join(BASE_MODELS)}")
    return BASE_MODELS[name]


def all_values(attribute: str) -> list[str]:
    """Every value any model offers (for the node's pickers), in first-seen order."""
    return list(dict.fromkeys(v for m in BASE_MODELS.values() for v in getattr(m, attribute)))
