"""The identity gate: which nodes of a graph lie between a gate's two nodes, and what each attempt's verdict is.

A gate is a pair of nodes around any generator: the start gives the attempt's seed, the gate scores the
generator's images against the profiles (ArcFace Score's one-to-one assignment, each profile's own threshold)
and has the enclosed nodes run again with the next seed until an image passes. This module knows graphs only
as ComfyUI's API format (`{id: {"class_type", "inputs"}}`, a link being `[node id, output slot]`) and scores
only as `identity.scoring` makes them, so it imports no ComfyUI module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .errors import IdentityError
from .profile import Profile
from .scoring import ImageScore

START = "IdentityGateStart"
GATE = "IdentityGate"
START_NAME = "Identity Gate (start)"
GATE_NAME = "Identity Gate"
LINK_SLOT = 1  # the start's output that the gate takes
IMAGES = "images"  # the gate's input of the generator's images

GetNode = Callable[[str], dict]


class GateError(IdentityError):
    """A gate that cannot run as wired or as fed; the sentence names the fix."""


def _is_link(value) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], (int, float))
        and not isinstance(value[1], bool)
    )


def links(node: dict) -> list[tuple[str, str, int]]:
    """(input name, source node, source slot) of each linked input."""
    return [(name, value[0], int(value[1])) for name, value in node.get("inputs", {}).items() if _is_link(value)]


def loop_body(get_node: GetNode, start_id: str, gate_id: str) -> set[str]:
    """The nodes between a start and its gate: those that depend on the start and that the gate depends on (the
    nodes a re-roll runs again). Nodes that only feed the gate, such as Profile Load, are outside."""
    children: dict[str, set[str]] = {}
    pending, seen = [gate_id], {gate_id}
    while pending:  # the gate's ancestry, with each ancestor's children inside it
        node_id = pending.pop()
        for _, parent, _ in links(get_node(node_id)):
            children.setdefault(parent, set()).add(node_id)
            if parent not in seen:
                seen.add(parent)
                pending.append(parent)
    body, pending = set(), [start_id]
    while pending:
        for child in children.get(pending.pop(), ()):
            if child != gate_id and child not in body:
                body.add(child)
                pending.append(child)
    return body


@dataclass(frozen=True)
class Loop:
    start: str
    gate: str
    body: frozenset[str]

    @property
    def span(self) -> frozenset[str]:
        return self.body | {self.start, self.gate}


def loops(prompt: Mapping[str, dict]) -> list[Loop]:
    """Every gate of a prompt with its start and the nodes between them."""
    found = []
    for gate_id, node in prompt.items():
        if node.get("class_type") != GATE:
            continue
        start = node.get("inputs", {}).get("gate")
        if _is_link(start) and start[0] in prompt:
            found.append(Loop(start[0], gate_id, frozenset(loop_body(prompt.__getitem__, start[0], gate_id))))
    return found


def check_wiring(prompt: Mapping[str, dict], start_id: str) -> Loop:
    """The loop that the start at `start_id` opens, or a GateError naming what to rewire: no gate or two gates
    on one start, no generator between start and gate, images from outside the loop, gates nested or crossing.
    Run by the start, before anything between the two nodes (a sampler, a paid call) runs."""
    every = loops(prompt)
    mine = [loop for loop in every if loop.start == start_id]
    if not mine:
        raise GateError(
            f"{START_NAME} #{start_id} has no {GATE_NAME}: connect its 'gate' output to the 'gate' input of an "
            f"{GATE_NAME} placed after your generator"
        )
    if len(mine) > 1:
        raise GateError(
            f"{START_NAME} #{start_id} feeds {len(mine)} gates ({_ids(loop.gate for loop in mine)}): give each "
            f"{GATE_NAME} its own {START_NAME}"
        )
    loop = mine[0]
    images = prompt[loop.gate].get("inputs", {}).get(IMAGES)
    if not loop.body:
        raise GateError(
            f"there is no generator between {START_NAME} #{start_id} and {GATE_NAME} #{loop.gate}: connect the "
            f"start's 'seed' to your generator (a KSampler's seed, a partner node's seed, Image From Batch's "
            f"batch_index) and the generator's IMAGE to the gate's 'images'"
        )
    if not _is_link(images) or images[0] not in loop.body:
        raise GateError(
            f"{GATE_NAME} #{loop.gate}'s images do not come from the nodes that {START_NAME} #{start_id}'s seed "
            f"drives, so a re-roll could not change them: connect the generator's IMAGE to the gate's 'images'"
        )
    for other in every:
        if other.gate == loop.gate:
            continue
        shared = loop.span & other.span
        # A loop fed from inside another (not from its gate's outputs) crosses it too.
        shared |= {n for a, b in ((loop, other), (other, loop)) for n in a.span if _takes_from(prompt[n], b)}
        if shared:
            raise GateError(
                f"{GATE_NAME} #{loop.gate} and {GATE_NAME} #{other.gate} are nested or crossing (at "
                f"{_ids(sorted(shared))}): give each gate its own generator, and feed a second gate from the first "
                f"gate's outputs, one after the other"
            )
    return loop


def _takes_from(node: dict, loop: Loop) -> bool:
    return any(parent in loop.body or parent == loop.start for _, parent, _ in links(node))


def _ids(ids) -> str:
    return ", ".join(f"#{i}" for i in ids)


def check_profiles(profiles: list[Profile] | None) -> None:
    """One gate verifies one kind of subject: face identity and pet appearance are different measures, so a pass
    over both would mean nothing."""
    if not profiles:
        raise GateError(f"{GATE_NAME} needs at least one profile: connect Profile Load to its 'profiles'")
    people = [p.name for p in profiles if p.kind == "person"]
    animals = [p.name for p in profiles if p.kind != "person"]
    if people and animals:
        raise GateError(
            f"{GATE_NAME} was given people ({', '.join(people)}) and pets ({', '.join(animals)}), whose scores "
            f"measure different things (face identity, appearance): gate the people and the pets with two "
            f"{GATE_NAME}s, one after the other"
        )


def check_count(attempt: int, count: int, first: int | None) -> None:
    """The generator must give at least one image, and the same number on every attempt."""
    if count == 0:
        raise GateError(
            f"the generator gave no image on attempt {attempt}: connect the IMAGE output of the node that makes "
            f"the pictures (VAE Decode, a partner node) to {GATE_NAME}'s 'images'"
        )
    if first is not None and count != first:
        raise GateError(
            f"the generator gave {count} images on attempt {attempt} but {first} on attempt 1: {GATE_NAME} compares "
            f"attempts image for image, so keep the generator's batch size fixed"
        )


# ----- verdicts ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """A profile as the gate checks it: its threshold in the engine that scored, and what its score measures."""

    id: str
    name: str
    kind: str
    threshold: float
    measures: str


@dataclass
class Attempt:
    number: int  # 1-based
    seed: int
    results: list[ImageScore]
    subjects: list[Subject]
    images: list[dict] = field(init=False)

    def __post_init__(self) -> None:
        self.images = [self._image(index, result) for index, result in enumerate(self.results)]

    @property
    def passing(self) -> list[int]:
        """Indices of the images where every subject cleared their threshold, best first."""
        return sorted((e["index"] for e in self.images if e["passed"]), key=lambda i: (-self.images[i]["score"], i))

    @property
    def ranked(self) -> list[int]:
        return sorted(range(len(self.images)), key=lambda i: (-self.images[i]["score"], i))

    @property
    def best_score(self) -> float:
        return max(e["score"] for e in self.images)

    def _image(self, index: int, result: ImageScore) -> dict:
        subjects = {s.id: self._subject(s, result) for s in self.subjects}
        scores = result.subject_scores([s.id for s in self.subjects])
        return {
            "index": index,
            "score": round(min(scores.values()), 4),
            "passed": all(entry["passed"] for entry in subjects.values()),
            "subjects": subjects,
        }

    def _subject(self, subject: Subject, result: ImageScore) -> dict:
        """Whether the subject passed in this image and, if not, why, in words."""
        items = [f for f in result.faces if f.kind == subject.kind]
        mine = next((f for f in items if f.profile_id == subject.id), None)
        closest = max(items, key=lambda f: f.scores.get(subject.id, -1.0), default=None)
        similarity = None if closest is None else closest.scores.get(subject.id)
        entry = {
            "name": subject.name,
            "similarity": None if similarity is None else round(similarity, 4),
            "threshold": round(subject.threshold, 4),
            "passed": mine is not None,
            "measures": subject.measures,
        }
        shown = mine if mine is not None else closest
        if shown is not None and shown.nearest is not None and shown.focus == subject.id:
            entry["next"] = {"name": shown.nearest[1], "similarity": round(shown.nearest[2], 4)}
            entry["margin"] = round(shown.margin, 4)
        if mine is not None:
            entry["similarity"] = round(mine.similarity, 4)
        elif closest is None:
            entry["why"] = "no face found" if subject.kind == "person" else f"no {subject.kind} found"
        elif closest.refused is not None and closest.focus == subject.id:
            entry["why"] = closest.refused  # a look-alike: another known person is as near
        elif closest.profile_id is not None:
            entry["why"] = (
                f"the closest {_item(subject.kind)} ({similarity:.2f}) was assigned to another profile (one "
                f"{_item(subject.kind)} per profile)"
            )
        else:
            entry["why"] = (
                f"the closest {_item(subject.kind)} scored {similarity:.2f}, below {subject.name}'s threshold "
                f"{subject.threshold:.2f}"
            )
        return entry

    def as_dict(self) -> dict:
        entry = {
            "attempt": self.number,
            "seed": self.seed,
            "passed": bool(self.passing),
            "images": self.images,
        }
        if not self.passing:
            best = self.images[self.ranked[0]]
            entry["failed"] = [f"{s['name']}: {s['why']}" for s in best["subjects"].values() if not s["passed"]]
        return entry


def _item(kind: str) -> str:
    return "face" if kind == "person" else kind


def best_attempt(attempts: list[Attempt]) -> Attempt:
    """The first attempt with a passing image, else the one with the best image (the earliest on a tie)."""
    passed = [a for a in attempts if a.passing]
    if passed:
        return passed[0]
    return max(attempts, key=lambda a: (a.best_score, -a.number))


def report(attempts: list[Attempt], chosen: Attempt, stopped: str) -> dict:
    """The gate's JSON report: the verdict, why the loop stopped, what was returned, and every attempt."""
    subjects = chosen.subjects
    returned = chosen.passing or chosen.ranked
    if chosen.passing:
        scores = ", ".join(
            f"{s['name']} {s['similarity']:.2f}" for s in chosen.images[returned[0]]["subjects"].values()
        )
        verdict = f"passed on attempt {chosen.number} of {len(attempts)} (seed {chosen.seed}): {scores}"
    else:
        verdict = (
            f"nobody passed in {len(attempts)} attempt{'s' if len(attempts) != 1 else ''}: returned the best image, "
            f"from attempt {chosen.number} (seed {chosen.seed}), score {chosen.best_score:.2f}"
        )
    return {
        "passed": bool(chosen.passing),
        "verdict": verdict,
        "stopped": stopped,
        "profiles": {s.id: s.name for s in subjects},
        "kinds": {s.id: s.kind for s in subjects},
        "measures": {s.id: s.measures for s in subjects},
        "returned": {
            "attempt": chosen.number,
            "seed": chosen.seed,
            "images": returned,
            "scores": [chosen.images[i]["score"] for i in returned],
        },
        "attempts": [a.as_dict() for a in attempts],
    }
