"""A profile's acceptance threshold and look-alike margin, from its own photos and the faces it must be told
apart from.

Each accepted embedding is compared with the centroid of the *other* ones (leave-one-out): that is exactly the
score a new photo of the person gets, so its spread tells where genuine scores fall for this person. Impostor
scores come from the faces that are not the person: the other faces in the training photos (group shots) and
the embeddings of the other profiles the store knows. Both cuts sit between the two sides:

- the threshold starts at the engine's same-person threshold and is raised, by at most `MAX_RAISE`, to the
  genuine floor (mean - 3 sigma) when the profile is consistent, and above the highest impostor score when the
  genuine scores leave room;
- the margin (how much closer a face must be to this profile than to any other known profile) is calibrated
  the same way on genuine margins (leave-one-out score minus the nearest other profile's) and impostor margins,
  between `MIN_MARGIN` and `MAX_MARGIN`.
"""

from __future__ import annotations

import numpy as np

#: Most a profile's threshold rises above its engine's: a consistent profile must still match new photos of
#: the person in other light and poses.
MAX_RAISE = 0.10
#: Fewer accepted photos give no spread to calibrate on (leave-one-out needs 2, a spread at least 3).
CONFIDENT_PHOTOS = 3
#: Least lead a face needs over every other known profile: a face as close to two people is neither of them.
MIN_MARGIN = 0.03
#: Most lead ever asked, of a consistent profile only (fewer photos get MIN_MARGIN): a genuine photo in poor light
#: scores lower on its person, not higher on the others (the fixtures' held-out faces lead by 0.42 or more).
MAX_MARGIN = 0.15
#: How far above the highest impostor a cut is placed when the genuine side leaves room.
IMPOSTOR_GAP = 0.01


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def centroid(embeddings: np.ndarray) -> np.ndarray:
    return unit(np.asarray(embeddings, dtype=np.float64).mean(axis=0))


def leave_one_out(embeddings: np.ndarray) -> np.ndarray:
    """Similarity of each embedding to the normalised mean of the others."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if len(embeddings) < 2:
        return np.zeros(0)
    others = embeddings.sum(axis=0, keepdims=True) - embeddings
    others /= np.maximum(np.linalg.norm(others, axis=1, keepdims=True), 1e-12)
    return np.einsum("nd,nd->n", embeddings, others)


def _stats(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"n": 0}
    return {
        "n": int(values.size),
        "mean": round(float(values.mean()), 4),
        "std": round(float(values.std()), 4),
        "min": round(float(values.min()), 4),
        "max": round(float(values.max()), 4),
    }


def operating_point(genuine: np.ndarray, impostor: np.ndarray, low: float, high: float) -> float:
    """A cut between genuine and impostor values: the genuine floor (mean - 3 sigma, from CONFIDENT_PHOTOS values)
    clipped to [low, high], then raised just above the highest impostor, never past the lowest genuine value
    (no training photo is refused) nor `high`. Without genuine values nothing justifies a raise: `low`."""
    cut = float(low)
    if genuine.size >= CONFIDENT_PHOTOS:
        cut = float(np.clip(genuine.mean() - 3.0 * genuine.std(), low, high))
    if genuine.size and impostor.size and impostor.max() + IMPOSTOR_GAP > cut:
        cut = max(cut, min(float(impostor.max()) + IMPOSTOR_GAP, float(genuine.min()), high))
    return cut


def calibrate(
    embeddings: np.ndarray,
    engine_threshold: float,
    impostors: np.ndarray | None = None,
    others: np.ndarray | None = None,
) -> dict:
    """Similarity statistics, the acceptance threshold and the look-alike margin for one profile's embeddings.
    `impostors [M, D]`: faces that are not this person (other faces in its photos, other profiles' embeddings);
    `others [K, D]`: the centroids of the other known profiles, whom a face must be farther from."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    dim = embeddings.shape[1]
    impostors = np.zeros((0, dim)) if impostors is None else np.asarray(impostors, np.float64).reshape(-1, dim)
    others = np.zeros((0, dim)) if others is None else np.asarray(others, np.float64).reshape(-1, dim)
    count = len(embeddings)
    pairs = (embeddings @ embeddings.T)[np.triu_indices(count, 1)] if count > 1 else np.zeros(0)
    loo = leave_one_out(embeddings)
    mine = centroid(embeddings).astype(np.float64)
    impostor_scores = impostors @ mine
    threshold = operating_point(loo, impostor_scores, engine_threshold, engine_threshold + MAX_RAISE)
    if len(others):
        genuine_margins = loo - (embeddings @ others.T).max(axis=1) if loo.size else np.zeros(0)
        # an impostor's lead on this profile over the nearest other known profile (its own, when it has one)
        impostor_margins = impostor_scores - (impostors @ others.T).max(axis=1) if len(impostors) else np.zeros(0)
    else:
        genuine_margins = impostor_margins = np.zeros(0)
    margin = operating_point(genuine_margins, impostor_margins, MIN_MARGIN, MAX_MARGIN)
    return {
        "photos": count,
        "pairwise": _stats(pairs),
        "leave_one_out": _stats(loo),
        "impostor": _stats(impostor_scores),
        "impostors": len(impostors),
        "known_others": len(others),
        "genuine_margin": _stats(genuine_margins),
        "engine_threshold": round(float(engine_threshold), 4),
        "threshold": round(threshold, 4),
        "margin": round(margin, 4),
        "confidence": "normal" if count >= CONFIDENT_PHOTOS else "low",
    }
