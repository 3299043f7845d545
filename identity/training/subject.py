"""Main-subject discovery: which face in each photo is the person the profile is about.

All faces of all photos are compared. The subject is the identity that appears in the most photos: the seed is
the face that finds a same-person match in the most *other* photos. From it, each photo contributes at most
its single best-matching face, and the subject's centroid is refined over a few rounds.
"""

from __future__ import annotations

import numpy as np

#: Refinements of the subject's centroid; on the fixtures the choice is stable after the second.
ROUNDS = 3


def find_subject(embeddings: list[np.ndarray], sizes: list[np.ndarray], threshold: float) -> list[int | None]:
    """Per photo, the index of the subject's face (or None).

    `embeddings[p]` is `[F_p, D]` (unit vectors) for photo p's faces and `sizes[p]` their sizes, which break
    ties (a larger face is more likely the one the photos are about).
    """
    owners = np.concatenate([np.full(len(e), p) for p, e in enumerate(embeddings)]) if embeddings else np.zeros(0)
    if owners.size == 0:
        return [None] * len(embeddings)
    vectors = np.concatenate([e for e in embeddings if len(e)])
    face_sizes = np.concatenate([s for s in sizes if len(s)])
    similarity = vectors @ vectors.T

    photos = len(embeddings)
    best_per_photo = np.full((len(vectors), photos), -1.0)
    for p in range(photos):
        members = owners == p
        if members.any():
            best_per_photo[:, p] = similarity[:, members].max(axis=1)
    best_per_photo[np.arange(len(vectors)), owners.astype(int)] = -1.0  # a photo does not support itself
    support = (best_per_photo >= threshold).sum(axis=1)
    agreement = np.where(best_per_photo >= threshold, best_per_photo, 0.0).sum(axis=1)
    seed = max(range(len(vectors)), key=lambda i: (support[i], agreement[i], face_sizes[i]))

    center = vectors[seed]  # matches itself in round one, so the seed photo always counts
    chosen: list[int | None] = [None] * photos
    for _ in range(ROUNDS):
        picks: list[int | None] = []
        for p in range(photos):
            if len(embeddings[p]) == 0:
                picks.append(None)
                continue
            scores = embeddings[p] @ center
            best = int(np.argmax(scores))
            picks.append(best if scores[best] >= threshold else None)
        selected = [embeddings[p][i] for p, i in enumerate(picks) if i is not None]
        center = np.mean(selected, axis=0)
        center /= max(float(np.linalg.norm(center)), 1e-12)
        if picks == chosen:
            break
        chosen = picks
    return chosen
