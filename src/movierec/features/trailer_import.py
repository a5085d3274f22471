"""MMTF-14K trailer features (audio i-vectors, aesthetic visual features) as store modalities."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import numpy as np

from movierec.data.dataset import TrailerFeatures
from movierec.features.store import ModalityFeatures

TRAILER_MODALITIES = {"trailer_ivector": "ivector", "trailer_avf": "avf"}
"""Store modality -> key in ``Dataset.trailer_features``."""


def trailer_modality(name: str, feats: TrailerFeatures, catalog_ids: np.ndarray, dataset_version: str = "") -> ModalityFeatures:
    """Rows for every catalog movie; those without MMTF-14K features are masked."""
    ids = np.asarray(catalog_ids, np.int64)
    pos = {int(m): i for i, m in enumerate(ids)}
    matrix = np.zeros((len(ids), feats.dim), np.float32)
    mask = np.zeros(len(ids), bool)
    hashes = {}
    for movie_id, row in zip(feats.movie_ids, feats.matrix):
        i = pos.get(int(movie_id))
        if i is None or not np.isfinite(row).all():
            continue
        matrix[i], mask[i] = row, True
        hashes[str(int(movie_id))] = hashlib.sha256(np.ascontiguousarray(row, np.float32).tobytes()).hexdigest()[:20]
    description = {"encoder": "mmtf14k-import", "modality": name, "version": "1", "dim": feats.dim, "weights": feats.source,
                   "preprocessing": "precomputed MMTF-14K trailer features (Deldjoo et al., ACM MMSys 2018), imported as is"}
    config_hash = hashlib.sha256(f"{feats.source}:{feats.dim}".encode()).hexdigest()[:16]
    provenance = {**description, "config_hash": config_hash, "dataset_version": dataset_version,
                  "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "source_hashes": hashes, "skipped": {}}
    return ModalityFeatures(name, ids, matrix, mask, provenance)
