"""Identity Condition (remote): attach profiles to a base-model choice; the closed-model nodes take the pair."""

from __future__ import annotations

from dataclasses import dataclass

from comfy_api.v0_0_2 import io

from ..identity.errors import IdentityError
from .base_model_select import PAID_CATEGORY, BaseModelChoice, BaseModelSocket
from .glue import Profiles

RemoteIdentity = io.Custom("IDENTITY_REMOTE")


@dataclass(frozen=True)
class Conditioned:
    base_model: BaseModelChoice
    profiles: tuple  # of identity.profile.Profile


class IdentityConditionRemote(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityConditionRemote",
            display_name="Identity Condition (remote)",
            category=PAID_CATEGORY,
            description="Carry these people into a closed model: their reference portraits go with each request, "
            "and every output is checked to look like them.",
            inputs=[
                BaseModelSocket.Input("base_model", tooltip="from Base Model Select: where the requests go"),
                Profiles.Input("profiles", tooltip="from Profile Load: the people (or pets) to carry into the images"),
            ],
            outputs=[RemoteIdentity.Output(display_name="identity")],
        )

    @classmethod
    def execute(cls, base_model: BaseModelChoice, profiles: list) -> io.NodeOutput:
        if not profiles:
            raise IdentityError("Identity Condition needs at least one profile: connect Profile Load")
        return io.NodeOutput(Conditioned(base_model, tuple(profiles)))
