"""Identity Gate: re-roll any generator until its image shows the profiles' people (or pets).

`IdentityGateStart` gives the attempt's seed; `IdentityGate` scores the generator's images as ArcFace Score does
and, when none passes, has ComfyUI run the nodes between the two again with the next seed, through graph
expansion (the way ComfyUI's own while-loop test nodes loop): it returns a copy of those nodes, itself included,
and its outputs are the copy's. The copy's start carries the loop's state (attempt number, verdicts so far, the
best images) as an input its schema does not declare, read back through the hidden dynamic prompt, so that the
user never sees a socket for it. Nodes outside the loop run once; an unchanged graph queued again is served
from ComfyUI's cache, as the top-level nodes are cached with the loop's final result.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import torch
from comfy_api.v0_0_2 import io
from comfy_execution.graph_utils import GraphBuilder, is_link

from ..identity.gate import (
    GATE,
    GATE_NAME,
    IMAGES,
    START,
    START_NAME,
    Attempt,
    Subject,
    best_attempt,
    check_count,
    check_profiles,
    check_wiring,
    loop_body,
    report,
)
from ..identity.scoring import Scorer
from .glue import (
    EngineChoice,
    Profiles,
    Progress,
    check_interrupt,
    engine,
    face_engine_input,
    hashed,
    known_people_input,
    known_state,
    known_store,
    pet_engine,
    to_arrays,
)

GateSocket = io.Custom("IDENTITY_GATE")  # a GateLink
STATE_INPUT = "identity_gate_state"  # the copied start's undeclared input that carries the loop's state
SEED_MAX = 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True)
class LoopState:
    """What one attempt hands the next: the verdicts so far, the best attempt's images, when the first was
    checked (for the time budget)."""

    attempts: tuple[Attempt, ...]
    best: Attempt
    best_images: torch.Tensor
    first_checked: float


@dataclass(frozen=True)
class GateLink:
    """What the start hands its gate: the loop's seed, the attempt (0-based) and state. Not which node it is: ComfyUI
    caches a V3 node's outputs by its inputs alone, so two starts with one seed share their output."""

    seed: int
    attempt: int
    state: LoopState | None


class IdentityGateStart(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=START,
            display_name=START_NAME,
            category="identity",
            description="The start of an identity gate: connect 'seed' to your generator's seed and 'gate' to an "
            "Identity Gate after it. Attempt n uses seed + n. The start checks the loop's wiring before anything "
            "between the two nodes runs.",
            inputs=[
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=SEED_MAX,
                    control_after_generate=True,
                    tooltip="the first attempt's seed; each re-roll adds 1",
                )
            ],
            outputs=[
                io.Int.Output(display_name="seed", tooltip="this attempt's seed: connect it to the generator"),
                GateSocket.Output(display_name="gate", tooltip="connect it to the Identity Gate's 'gate'"),
            ],
            hidden=[io.Hidden.unique_id, io.Hidden.dynprompt],
        )

    @classmethod
    def execute(cls, seed: int) -> io.NodeOutput:
        node_id, dynprompt = cls.hidden.unique_id, cls.hidden.dynprompt
        state: LoopState | None = dynprompt.get_node(node_id)["inputs"].get(STATE_INPUT)
        if state is None:  # the user's own node: its copies were checked with it
            check_wiring(dynprompt.get_original_prompt(), node_id)
        attempt = 0 if state is None else len(state.attempts)
        return io.NodeOutput((seed + attempt) % (SEED_MAX + 1), GateLink(seed, attempt, state))


class IdentityGate(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=GATE,
            display_name=GATE_NAME,
            category="identity",
            description="Verify the generator's images against the profiles (one-to-one, each profile's own "
            "threshold, as ArcFace Score does) and re-run the nodes between Identity Gate (start) and this node "
            "with the next seed until an image passes, the attempts run out or the time budget is spent. Pet "
            "scores measure appearance, not identity, unless a re-identification model is in models/pet_reid/.",
            inputs=[
                GateSocket.Input("gate", tooltip="from Identity Gate (start)"),
                io.Image.Input(IMAGES, lazy=True, tooltip="the generator's images (asked for once the profiles check)"),
                Profiles.Input("profiles", tooltip="people only, or pets only"),
                io.Int.Input("max_attempts", default=4, min=1, max=100, tooltip="the first attempt and its re-rolls"),
                io.Float.Input(
                    "time_budget_s",
                    default=0.0,
                    min=0.0,
                    max=86400.0,
                    step=1.0,
                    tooltip="start no re-roll once this many seconds have passed since the first attempt was "
                    "checked (0: no limit)",
                ),
                face_engine_input(),
                known_people_input(),
            ],
            outputs=[
                io.Image.Output(
                    display_name="images",
                    tooltip="the passing images, best first; if nobody passed, the best attempt's images, best first",
                ),
                # One FLOAT, not a list: ComfyUI resolves an expanded node's list outputs item by item, which breaks
                # merging them (execution.py, 0.3.75 to 0.33.0); every image's score is in the report.
                io.Float.Output(display_name="score", tooltip="the first image's score (its weakest subject)"),
                io.String.Output(display_name="report_json", tooltip="the verdict, and every attempt's scores"),
                io.Boolean.Output(display_name="passed"),
            ],
            hidden=[io.Hidden.unique_id, io.Hidden.dynprompt],
            enable_expand=True,
        )

    @classmethod
    def fingerprint_inputs(cls, known_people: bool = True, **_) -> str:
        """With `known_people`, the store's version (as ArcFace Score's): a verdict depends on everyone known, so a
        profile added, renamed or deleted since is a new verdict, not one served from ComfyUI's cache."""
        return hashed(known_state() if known_people else None)

    @classmethod
    def check_lazy_status(cls, profiles=None, images=None, **_) -> list[str]:
        """The profiles, and the wiring (again: the start may be served from ComfyUI's cache while the nodes
        around it changed), are checked before the generator is asked for its images."""
        check_profiles(profiles)
        prompt = cls.hidden.dynprompt.get_original_prompt()
        if images is None and cls.hidden.unique_id in prompt:
            check_wiring(prompt, cls._start())
        return [IMAGES] if images is None else []

    @classmethod
    def execute(
        cls,
        gate: GateLink,
        profiles,
        max_attempts: int,
        time_budget_s: float = 0.0,
        images: torch.Tensor | None = None,
        face_engine: EngineChoice | None = None,
        known_people: bool = True,
    ) -> io.NodeOutput:
        check_profiles(profiles)
        state, number, seed = gate.state, gate.attempt + 1, (gate.seed + gate.attempt) % (SEED_MAX + 1)
        first = None if state is None else len(state.attempts[0].results)
        check_count(number, 0 if images is None else int(images.shape[0]), first)
        attempt = cls._verdict(number, seed, images, profiles, face_engine, known_people)
        check_interrupt()
        now = time.monotonic()
        attempts = (*state.attempts, attempt) if state else (attempt,)
        if state is None or attempt.best_score > state.best.best_score:
            best, best_images = attempt, images
        else:
            best, best_images = state.best, state.best_images
        first_checked = now if state is None else state.first_checked

        stopped = ""
        if attempt.passing:
            stopped = "an image passed"
        elif len(attempts) >= max_attempts:
            stopped = f"attempt limit reached ({max_attempts})"
        elif time_budget_s > 0 and now - first_checked >= time_budget_s:
            stopped = f"time budget spent ({now - first_checked:.0f} s of {time_budget_s:.0f} s)"
        if stopped:
            chosen = best_attempt(list(attempts))
            chosen_images = images if chosen is attempt else best_images
            summary = report(list(attempts), chosen, stopped)
            returned = summary["returned"]
            cls._status(summary["verdict"])
            return io.NodeOutput(
                chosen_images[returned["images"]],
                float(returned["scores"][0]),
                json.dumps(summary),
                bool(summary["passed"]),
            )
        cls._status(f"attempt {number} of {max_attempts} (seed {seed}): nobody passed; re-rolling with seed {seed + 1}")
        graph, copy = cls._again(cls._start(), LoopState(attempts, best, best_images, first_checked))
        return io.NodeOutput(copy.out(0), copy.out(1), copy.out(2), copy.out(3), expand=graph.finalize())

    @classmethod
    def _verdict(cls, number: int, seed: int, images, profiles, face_engine, known_people: bool) -> Attempt:
        """This attempt's images scored as ArcFace Score scores them (identity.scoring)."""
        progress = Progress(cls.hidden.dynprompt.get_display_node_id(cls.hidden.unique_id))
        scorer = Scorer(profiles, engine(face_engine), pet_engine, known_store(known_people))
        named = [(f"attempt {number}, image {i + 1}", array) for i, array in enumerate(to_arrays(images))]
        results = scorer.score(
            named,
            check_interrupt,
            lambda done, total: progress(done / total, f"attempt {number} (seed {seed}): scored {done} of {total}"),
        )
        candidates = {c.profile_id: (kind, c) for kind, found in scorer.per_kind.items() for c in found}
        subjects = [
            Subject(p.id, p.name, p.kind, candidates[p.id][1].threshold, scorer.measures[candidates[p.id][0]])
            for p in profiles
        ]
        return Attempt(number, seed, results, subjects)

    @classmethod
    def _start(cls) -> str:
        """This gate's start (at this level of the loop), from the link into its 'gate' input."""
        return cls.hidden.dynprompt.get_node(cls.hidden.unique_id)["inputs"]["gate"][0]

    @classmethod
    def _status(cls, text: str) -> None:
        Progress(cls.hidden.dynprompt.get_display_node_id(cls.hidden.unique_id))(1.0, text)

    @classmethod
    def _again(cls, start_id: str, state: LoopState):
        """A copy of the loop (start, the nodes between, this gate), its start carrying `state`; copies keep the
        ids the user sees (display ids), so progress and errors point at the user's nodes."""
        dynprompt, gate_id = cls.hidden.dynprompt, cls.hidden.unique_id
        members = [start_id, *sorted(loop_body(dynprompt.get_node, start_id, gate_id)), gate_id]
        display = {m: dynprompt.get_display_node_id(m) for m in members}
        graph = GraphBuilder()
        for member in members:
            graph.node(dynprompt.get_node(member)["class_type"], display[member]).set_override_display_id(
                display[member]
            )
        for member in members:
            copy = graph.lookup_node(display[member])
            for key, value in dynprompt.get_node(member)["inputs"].items():
                inside = is_link(value) and value[0] in display
                copy.set_input(key, graph.lookup_node(display[value[0]]).out(value[1]) if inside else value)
        graph.lookup_node(display[start_id]).set_input(STATE_INPUT, state)
        return graph, graph.lookup_node(display[gate_id])
