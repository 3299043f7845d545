"""Profile Load: saved profiles, chained into one list.

The picker's values are profile ids (what a workflow saves, so a rename keeps it valid); the web extension shows
each as its name (web/js/nodes.js). A workflow saved with a name (older versions saved names) still runs: the
name is looked up among current names, then among former ones (`ProfileStore.resolve`). The chosen profile's thumbnail is shown on the node by the web extension (web/js/nodes.js) as soon as it is
picked, so the node sends no preview of its own (it would show the same picture twice after a run).
"""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from ..identity.errors import IdentityError
from .glue import Profiles, hashed, profile_store


def profile_ids() -> list[str]:
    """The picker's values, in the order of the names the picker shows for them. ComfyUI asks for them on its
    event loop (`/object_info`, and each queued prompt's validation), so no profile header is read here."""
    return profile_store().listed_ids()


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
                io.Combo.Input(
                    "profile",
                    options=profile_ids(),
                    tooltip="a profile in models/identity_profiles/ (saved by its id: renaming it keeps workflows valid)",
                ),
                Profiles.Input("profiles", optional=True, tooltip="profiles loaded before this one (to chain several)"),
            ],
            outputs=[Profiles.Output(display_name="profiles")],
        )

    @classmethod
    def validate_inputs(cls, profile: str) -> bool:
        return True  # ids, names and former names are resolved when the node runs, so an unknown one gets a message listing the profiles

    @classmethod
    def fingerprint_inputs(cls, profile: str, **_) -> str | None:
        """The profile's id and file stamp: a deleted, replaced or renamed profile is loaded afresh, never served
        from ComfyUI's cache (nodes downstream take this node's fingerprint into their own cache keys)."""
        store = profile_store()
        try:
            profile_id = store.resolve(profile)
        except IdentityError:
            return None  # execute says what is wrong
        return hashed((profile_id, store.stamp(profile_id)))

    @classmethod
    def execute(cls, profile: str, profiles: list | None = None) -> io.NodeOutput:
        store = profile_store()
        loaded = store.load(store.resolve(profile))
        chained = [p for p in (profiles or []) if p.id != loaded.id] + [loaded]
        return io.NodeOutput(chained)
