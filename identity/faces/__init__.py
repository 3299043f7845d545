"""Face engines: which one to use, loaded once per process.

An engine spec is `embedded`, `insightface:<pack folder>`, or the name of a pack found under the
insightface model folders (`models/insightface/models/<pack>/`). Without a spec, the best pack found is
used, else the embedded engine. `ENGINES` holds the loaded ones for the process; tests make their own `Engines`.
"""

from __future__ import annotations

from pathlib import Path

from ..cache import BoundedCache
from ..errors import ModelFilesMissing
from ..paths import insightface_roots
from . import embedded, insightface_pack
from .engine import EngineInfo, FaceEngine
from .face import Face
from .runtime import PROVIDER_CHOICES, execution_providers

__all__ = [
    "ENGINES",
    "EngineInfo",
    "Engines",
    "Face",
    "FaceEngine",
    "PROVIDER_CHOICES",
    "find_packs",
    "load_engine",
    "resolve_engine_spec",
]

#: Packs preferred as the default, best first; any other valid pack comes after these.
PREFERRED_PACKS = ("antelopev2", "buffalo_l", "buffalo_m", "buffalo_s", "buffalo_sc")

#: Engines kept loaded at once (pack × provider); the least recently used beyond these is closed.
LOADED_ENGINES = 4


def find_packs(roots: list[Path] | None = None) -> dict[str, Path]:
    """Valid insightface packs by name; an earlier root wins a name clash."""
    packs: dict[str, Path] = {}
    for root in roots if roots is not None else insightface_roots():
        if root.is_dir():
            for folder in sorted(root.iterdir()):
                if folder.name not in packs and insightface_pack.is_pack(folder):
                    packs[folder.name] = folder
    return packs


def resolve_engine_spec(spec: str | None = None, roots: list[Path] | None = None) -> tuple[str, Path | None]:
    """("embedded", None) or ("insightface:<name>", pack folder) for a user's spec; see the module doc."""
    spec = (spec or "").strip()
    if spec == "embedded":
        return "embedded", None
    if spec.startswith("insightface:"):
        folder = Path(spec.split(":", 1)[1]).expanduser().resolve()
        insightface_pack.pack_files(folder)  # raises with the precise reason when it is no pack
        return f"insightface:{folder.name}", folder
    packs = find_packs(roots)
    if spec:
        if spec not in packs:
            searched = ", ".join(str(r) for r in (roots if roots is not None else insightface_roots()))
            known = ", ".join(sorted(packs)) or "none"
            raise ModelFilesMissing(
                f"no insightface pack named {spec!r} (packs found: {known}); put it in <models>/insightface/models/{spec}/ "
                f"(searched: {searched}), or use 'embedded' or 'insightface:<folder>'"
            )
        return f"insightface:{spec}", packs[spec]
    for name in PREFERRED_PACKS + tuple(sorted(packs)):
        if name in packs:
            return f"insightface:{name}", packs[name]
    return "embedded", None


class Engines:
    """Loaded engines by (spec, provider): loaded on first use, shared afterwards, at most `size` at once."""

    def __init__(self, size: int = LOADED_ENGINES):
        self._cache: BoundedCache[FaceEngine] = BoundedCache(size, on_drop=FaceEngine.close)  # one load per key

    def load(self, spec: str | None = None, provider: str = "auto", roots: list[Path] | None = None) -> FaceEngine:
        name, folder = resolve_engine_spec(spec, roots)
        providers = execution_providers(provider)
        key = (name, str(folder), tuple(providers))
        return self._cache.get_or_make(key, lambda: _load(name, folder, providers))

    def close(self) -> None:
        """Close and forget every loaded engine."""
        self._cache.clear()


def _load(name: str, folder: Path | None, providers: list[str]) -> FaceEngine:
    if folder is None:
        return FaceEngine(name, "embedded", embedded.load(providers))
    return FaceEngine(name, "insightface", insightface_pack.load(folder, providers))


#: The process's engines, shared by the CLI, the nodes and the web routes.
ENGINES = Engines()


def load_engine(spec: str | None = None, provider: str = "auto", roots: list[Path] | None = None) -> FaceEngine:
    """The process's engine for a spec and provider (see `Engines.load`)."""
    return ENGINES.load(spec, provider, roots)
