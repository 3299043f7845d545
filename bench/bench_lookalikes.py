"""Look-alikes on the fixtures: genuine-accept and impostor-accept rates with and without the known-people rule.

The six people of the fixtures are trained into one store, each from all but its last portrait (a person with
one photo is trained from it and has nothing held out). Trials, every one a single-profile question ("is this
face X?"), answered by `identity.scoring.Scorer` as every verifying node answers it:

- genuine: each held-out face (the last portraits, and the known people in the group shots) against its person;
- impostor: each held-out face against every other profile;
- look-alike: for every two held-out faces of different people, a synthetic face between them (the normalised
  sum of their embeddings), against each of the two profiles: the case a threshold alone cannot refuse.

    .venv/bin/python bench/bench_lookalikes.py [--engine embedded|testpack|DIR]

Prints, per rule (each profile's threshold alone, then with everyone known), the accepted share of each kind.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from identity.faces import load_engine  # noqa: E402
from identity.faces.face import Face  # noqa: E402
from identity.images import load_image  # noqa: E402
from identity.profile import ProfileStore  # noqa: E402
from identity.profile.calibration import unit  # noqa: E402
from identity.scoring import Scorer  # noqa: E402
from identity.training import photos_from_paths, train  # noqa: E402
from identity.training.jobs import JobRegistry  # noqa: E402

FACES = ROOT.parent / "shared" / "fixtures" / "faces"
TESTPACK = ROOT.parent / "shared" / "models" / "insightface" / "models" / "testpack"


def held_out_faces(engine, manifest: dict) -> list[tuple[str, Face]]:
    """(person, face) for each held-out face: the last portrait of each person with several, and each known
    person of the group shots (the largest faces, left to right as the manifest names them)."""
    found = []
    for person, paths in manifest["identities"].items():
        if len(paths) > 1:
            [faces] = engine.analyze([load_image(FACES / paths[-1])])
            found.append((person, max(faces, key=lambda f: f.size)))
    for path, group in manifest["groups"].items():
        people = group["left_to_right"]
        [faces] = engine.analyze([load_image(FACES / path)])
        largest = sorted(faces, key=lambda f: -f.size)[: len(people)]
        found += zip(people, sorted(largest, key=lambda f: f.bbox[0]))
    return found


def accepted(face: Face, profile, engine, known) -> bool:
    """Whether the face is taken as this profile in a single-profile check (`known`: the cohort's store, or None)."""
    result = Scorer([profile], engine, None, known).scored("trial", (1, 1), [face], [])
    return any(f.profile_id == profile.id for f in result.faces)


def synthetic(a: Face, b: Face) -> Face:
    """A face between two people: the normalised sum of their embeddings."""
    return Face(a.bbox, a.landmarks, 1.0, embedding=unit(a.embedding + b.embedding))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="embedded", help="embedded, testpack, or an insightface pack folder")
    args = parser.parse_args()
    spec = f"insightface:{TESTPACK}" if args.engine == "testpack" else args.engine
    engine = load_engine(spec, "cpu")
    manifest = json.loads((FACES / "MANIFEST.json").read_text())
    with tempfile.TemporaryDirectory() as folder:
        store = ProfileStore(folder)
        for person, paths in manifest["identities"].items():
            chosen = paths[:-1] if len(paths) > 1 else paths
            train(photos_from_paths([FACES / p for p in chosen]), person, engine, store, registry=JobRegistry())
        profiles = {s["name"]: store.load(s["id"]) for s in store.summaries()}
        faces = held_out_faces(engine, manifest)
        trials = {
            "genuine": [(face, profiles[person]) for person, face in faces],
            "impostor": [(face, p) for person, face in faces for name, p in profiles.items() if name != person],
            "look-alike": [
                (synthetic(a, b), profiles[who])
                for (first, a), (second, b) in combinations(faces, 2)
                if first != second
                for who in (first, second)
            ],
        }
        print(f"engine {engine.name}; {len(profiles)} profiles in one store; {len(faces)} held-out faces")
        for rule, use in (("threshold alone", False), ("with everyone known", True)):
            parts = []
            for kind, pairs in trials.items():
                hits = sum(accepted(face, p, engine, store if use else None) for face, p in pairs)
                parts.append(f"{kind} accepted {hits}/{len(pairs)} ({100.0 * hits / len(pairs):.1f} %)")
            print(f"{rule:>20}: " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
