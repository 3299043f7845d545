"""The main job: the pack's example workflows, run headless in a real ComfyUI on the embedded face engine.

Starts the ComfyUI in `.comfyui/ComfyUI` with the base folder `.comfyui/demo` (kept between runs), puts sample
photos in its input folder, and queues the three example workflows through ComfyUI's HTTP API: train profiles
from folders of photos, score and rank a batch against one profile, and find two people in a group photo.
Sample photos come from `../shared/fixtures/faces` when it is beside the checkout, else from the images that
ship inside the insightface wheel.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from comfyui_client import Server, load_workflow, stage_example_inputs, ui_to_api  # noqa: E402

BASE = ROOT / ".comfyui" / "demo"
FACES = ROOT.parent / "shared" / "fixtures" / "faces"


@dataclass
class Samples:
    people: list[tuple[str, str]]  # (name, folder under input/) to train
    batch: str  # the folder (under input/) that score_and_rank_batch scores
    batch_profile: str
    group: str  # one image for score_group_photo_two_profiles
    group_profiles: tuple[str, str]
    gate: tuple[str, str, str]  # three images for identity_gate_core_nodes_cpu, the profile's person last


def stage_samples(input_dir: Path) -> Samples:
    if FACES.is_dir():
        stage_example_inputs(input_dir, FACES)
        return Samples(
            [("Barack Obama", "identity/obama"), ("Joe Biden", "identity/biden")],
            "identity/score",
            "Barack Obama",
            "identity/group/biden_obama_b.jpg",
            ("Barack Obama", "Joe Biden"),
            ("identity/score/kit1.jpg", "identity/score/rose2.jpg", "identity/score/obama4.jpg"),
        )
    wheel = Path(list(importlib.util.find_spec("insightface").submodule_search_locations)[0]) / "data" / "images"
    for source, target in [
        ("Tom_Hanks_54745.png", "identity/tom/tom.png"),
        ("t1.jpg", "identity/t1/t1.jpg"),
        ("Tom_Hanks_54745.png", "identity/score/tom.png"),
        ("t1.jpg", "identity/score/t1.jpg"),
    ]:
        (input_dir / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wheel / source, input_dir / target)
    return Samples(
        [("Tom Hanks", "identity/tom"), ("Person in t1", "identity/t1")],
        "identity/score",
        "Tom Hanks",
        "identity/score/t1.jpg",
        ("Tom Hanks", "Person in t1"),
        ("identity/score/t1.jpg", "identity/score/t1.jpg", "identity/score/tom.png"),
    )


def nodes_of(prompt: dict, class_type: str) -> list[dict]:
    return [
        node["inputs"]
        for _, node in sorted(prompt.items(), key=lambda kv: int(kv[0]))
        if node["class_type"] == class_type
    ]


def run(server: Server, prompt: dict, title: str) -> dict:
    print(f"\n== {title}", flush=True)
    result = server.client.run(prompt)
    if result.status != "success":
        error = result.error or {}
        raise SystemExit(
            f"workflow failed in {error.get('node_type')}: {error.get('exception_message', result.messages)}"
        )
    return result.outputs


def main() -> int:
    server = Server(BASE).prepare()
    samples = stage_samples(BASE / "input")
    print(f"starting ComfyUI (base folder {BASE}) ...", flush=True)
    with server.start():
        info = server.client.object_info()
        workflows = {
            name: ui_to_api(load_workflow(name), info)
            for name in (
                "train_profile_from_folder",
                "score_and_rank_batch",
                "score_group_photo_two_profiles",
                "identity_gate_core_nodes_cpu",
            )
        }

        for name, folder in samples.people:
            prompt = json.loads(json.dumps(workflows["train_profile_from_folder"]))
            nodes_of(prompt, "IdentityProfileTrain")[0].update(name=name, folder=folder, overwrite=True)
            outputs = run(server, prompt, f"train_profile_from_folder: {name!r} from input/{folder}/")
            print(next(o["text"][0] for o in outputs.values() if "text" in o))

        prompt = json.loads(json.dumps(workflows["score_and_rank_batch"]))
        nodes_of(prompt, "IdentityArcFaceScore")[0]["folder"] = samples.batch
        nodes_of(prompt, "IdentityProfileLoad")[0]["profile"] = samples.batch_profile
        outputs = run(server, prompt, f"score_and_rank_batch: input/{samples.batch}/ against {samples.batch_profile!r}")
        report = json.loads(next(o["text"][0] for o in outputs.values() if "text" in o))
        for entry in report["images"]:
            subjects = {report["profiles"][k]: v for k, v in entry["subjects"].items()}
            print(f"  {entry['image']}: score {entry['score']:.3f} {subjects}")

        prompt = json.loads(json.dumps(workflows["score_group_photo_two_profiles"]))
        nodes_of(prompt, "LoadImage")[0]["image"] = samples.group
        for inputs, profile in zip(nodes_of(prompt, "IdentityProfileLoad"), samples.group_profiles):
            inputs["profile"] = profile
        outputs = run(server, prompt, f"score_group_photo_two_profiles: {samples.group}")
        report = json.loads(next(o["text"][0] for o in outputs.values() if "text" in o))
        for face in report["images"][0]["faces"]:
            who = report["profiles"].get(face["profile_id"], "unknown")
            print(f"  face at x={face['bbox'][0]:.0f}: {who} (scores {face['scores']})")

        prompt = json.loads(json.dumps(workflows["identity_gate_core_nodes_cpu"]))
        for inputs, image in zip(nodes_of(prompt, "LoadImage"), samples.gate):
            inputs["image"] = image
        nodes_of(prompt, "IdentityProfileLoad")[0]["profile"] = samples.batch_profile
        outputs = run(server, prompt, f"identity_gate_core_nodes_cpu: re-roll until {samples.batch_profile!r} comes up")
        report = json.loads(next(o["text"][0] for o in outputs.values() if "text" in o))
        for attempt in report["attempts"]:
            subjects = {s["name"]: s["similarity"] for s in attempt["images"][0]["subjects"].values()}
            print(f"  attempt {attempt['attempt']} (seed {attempt['seed']}): passed {attempt['passed']} {subjects}")
        print(f"  {report['verdict']}")

    print(f"\nprofiles: {BASE / 'models' / 'identity_profiles'}")
    print(f"images (ranked batch, annotated group photo): {BASE / 'output' / 'identity'}")
    print(f"ComfyUI log: {server.log_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
