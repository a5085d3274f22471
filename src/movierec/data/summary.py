"""Per-modality coverage: movies and share of ratings that have each modality."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from movierec.data.dataset import Dataset


@dataclass(frozen=True)
class CoverageRow:
    modality: str
    movies: int
    movie_share: float
    rating_share: float


def modality_presence(dataset: Dataset) -> dict[str, pd.Series]:
    """Boolean presence per movie for every modality a model can use."""
    cat = dataset.catalog
    ids = cat.index
    presence = {
        "text": pd.Series(True, index=ids),
        "plot": cat["plot"].map(lambda p: isinstance(p, str) and len(p) > 0),
        "tags": cat["tags"].map(len) > 0,
        "poster": cat["poster_path"].notna(),
        "trailer_audio": cat["audio_path"].notna(),
    }
    for name, feats in dataset.trailer_features.items():
        presence[f"trailer_{name}"] = pd.Series(ids.isin(feats.movie_ids), index=ids)
    return presence


def coverage(dataset: Dataset) -> list[CoverageRow]:
    counts = dataset.ratings["movie_id"].value_counts()
    weights = counts.reindex(dataset.catalog.index, fill_value=0).to_numpy(np.float64)
    total = max(weights.sum(), 1.0)
    rows = []
    for name, present in modality_presence(dataset).items():
        mask = present.to_numpy(bool)
        rows.append(CoverageRow(name, int(mask.sum()), float(mask.mean()) if len(mask) else 0.0, float(weights[mask].sum() / total)))
    return rows
