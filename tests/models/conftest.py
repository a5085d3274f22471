"""Tiny synthetic ratings and modality features: every model trains on them in a second."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec.features.store import ModalityFeatures


@pytest.fixture
def tiny_ratings() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    users, movies = np.arange(1, 31), np.arange(100, 160)
    taste = rng.normal(size=(len(users), 3))
    kind = rng.normal(size=(len(movies), 3))
    rows = []
    for a, u in enumerate(users):
        for b in rng.choice(len(movies), size=15, replace=False):
            r = float(np.clip(np.round(2 * (3 + taste[a] @ kind[b] * 0.6)) / 2, 0.5, 5.0))
            rows.append((u, movies[b], r, 1000 + len(rows)))
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"]).astype(
        {"user_id": np.int64, "movie_id": np.int64, "rating": np.float32, "timestamp": np.int64})


@pytest.fixture
def tiny_catalog_ids() -> np.ndarray:
    # 60 rated movies plus 5 no one rated (cold)
    return np.arange(100, 165, dtype=np.int64)


@pytest.fixture
def tiny_features(tiny_catalog_ids) -> dict[str, ModalityFeatures]:
    rng = np.random.default_rng(1)
    n = len(tiny_catalog_ids)
    text_mask = np.ones(n, bool)
    poster_mask = rng.random(n) < 0.7
    poster = rng.normal(size=(n, 12)).astype(np.float32)
    poster[~poster_mask] = 0.0
    return {
        "text": ModalityFeatures("text", tiny_catalog_ids, rng.normal(size=(n, 16)).astype(np.float32), text_mask, {"encoder": "synthetic"}),
        "poster": ModalityFeatures("poster", tiny_catalog_ids, poster, poster_mask, {"encoder": "synthetic"}),
    }
