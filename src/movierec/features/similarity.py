"""Nearest movies by one modality's vectors (cosine), a check that the features mean something."""

from __future__ import annotations

import numpy as np

from movierec.features.store import FeatureStoreError, ModalityFeatures


def most_similar(features: ModalityFeatures, movie_id: int, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` movies whose present vectors are nearest (cosine) to ``movie_id``'s."""
    hit = np.flatnonzero(features.movie_ids == movie_id)
    if not len(hit) or not features.mask[hit[0]]:
        raise FeatureStoreError(f"movie {movie_id} has no {features.name} features")
    norms = np.linalg.norm(features.matrix, axis=1)
    scores = features.matrix @ features.matrix[hit[0]] / np.maximum(norms * norms[hit[0]], 1e-12)
    scores[~features.mask] = -np.inf
    scores[hit[0]] = -np.inf
    order = np.argsort(-scores)[:k]
    return [(int(features.movie_ids[i]), float(scores[i])) for i in order if np.isfinite(scores[i])]
