"""Profile Load: saved profiles by name, chained into one list, with their thumbnails as a preview."""

from __future__ import annotations

from comfy_api.latest import io, ui

from .glue import Profiles, profile_store, to_images


def profile_names() -> list[str]:
    """Names as the picker shows them; a name that several profiles share is shown with its id."""
    summaries = profile_store().summaries()
    counts: dict[str, int] = {}
    for s in summaries:
        counts[s["name"]] = counts.get(s["name"], 0) + 1
    return [s["name"] if counts[s["name"]] == 1 else f"{s['name']} ({s['id']})" for s in summaries]


def resolve(label: str) -> str:
    """The id for a picker label: a name, an id, or 'name (id)'."""
    store = profile_store()
    if label.endswith(")") and " (" in label:
        return store.resolve(label.rsplit(" (", 1)[1][:-1])
    return store.resolve(label)


class ProfileLoad(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityProfileLoad",
            display_name="Profile Load",
            category="identity",
            description="Load a saved identity profile. Chain several Profile Load nodes through 'profiles' to pass "
                        "several people on.",
            inputs=[
                io.Combo.Input("profile", options=profile_names(), tooltip="a profile in models/identity_profiles/"),
                Profiles.Input("profiles", optional=True, tooltip="profiles loaded before this one (to chain several)"),
            ],
            outputs=[Profiles.Output(display_name="profiles")],
        )

    @classmethod
    def validate_inputs(cls, profile: str) -> bool:
        return True  # names are checked when the node runs, so an unknown one gets a message listing the profiles

    @classmethod
    def execute(cls, profile: str, profiles: list | None = None) -> io.NodeOutput:
        store = profile_store()
        loaded = store.load(resolve(profile))
        chained = [p for p in (profiles or []) if p.id != loaded.id] + [loaded]
        return io.NodeOutput(chained, ui=ui.PreviewImage(to_images([p.thumbnail for p in chained]), cls=cls))
