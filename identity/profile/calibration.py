"""A profile's own acceptance threshold, from how alike its accepted photos are.

Each accepted embedding is compared with the centroid of the *other* ones (leave-one-out): that is exactly
the score a new photo of the person gets, so its spread tells where genuine scores fall for this person.
The threshold starts at the engine's same-person threshold and is raised, by at most `MAX_RAISE`, when the
profile is consistent enough that genuine scores sit well above it (three standard deviations).
"""

from __future__ import annotations

import numpy as np

#: Most a profile's threshold rises above its engine's: a consistent profile must still match new photos of
#: the person in other light and poses.
MAX_RAISE = 0.10
#: Fewer accepted photos give no spread to calibrate on (leave-one-out needs 2, a spread at least 3).
CONFIDENT_PHOTOS = 3


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


def calibrate(embeddings: np.ndarray, engine_threshold: float) -> dict:
    """Similarity statistics and the acceptance threshold for one profile's embeddings."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    count = len(embeddings)
    pairs = (embeddings @ embeddings.T)[np.triu_indices(count, 1)] if count > 1 else np.zeros(0)
    loo = leave_one_out(embeddings)
    threshold = float(engine_threshold)
    if count >= CONFIDENT_PHOTOS:
        genuine_floor = float(loo.mean() - 3.0 * loo.std())
        threshold = float(np.clip(genuine_floor, engine_threshold, engine_threshold + MAX_RAISE))
    return {
        "photos": count,
        "pairwise": _stats(pairs),
        "leave_one_out": _stats(loo),
        "engine_threshold": round(float(engine_threshold), 4),
        "threshold": round(threshold, 4),
        "confidence": "normal" if count >= CONFIDENT_PHOTOS else "low",
    }
