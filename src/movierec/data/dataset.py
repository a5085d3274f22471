"""The canonical in-memory dataset every format is converted to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CATALOG_COLUMNS = [
    "title", "year", "genres", "tags", "plot", "runtime", "release_date",
    "poster_path", "audio_path", "imdb_id", "tmdb_id", "youtube_id",
]
RATING_COLUMNS = ["user_id", "movie_id", "rating", "timestamp"]
LIKE = 4.0
"""A rating at or above this is a like (the evaluation's positives and the models' liked movies)."""


@dataclass(frozen=True)
class TrailerFeatures:
    """Precomputed per-movie trailer vectors (MMTF-14K i-vectors or aesthetic visual features)."""

    movie_ids: np.ndarray  # int64, shape (n,)
    matrix: np.ndarray  # float32, shape (n, dim)
    source: str

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def as_dict(self) -> dict[int, np.ndarray]:
        return {int(m): row for m, row in zip(self.movie_ids, self.matrix)}


@dataclass
class LoadReport:
    """What loading dropped or fixed, so nothing is lost silently."""

    duplicate_ratings: int = 0
    unknown_movie_ratings: int = 0
    unknown_movie_tags: int = 0
    unknown_movie_features: dict[str, int] = field(default_factory=dict)
    missing_optional: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        if self.duplicate_ratings:
            out.append(f"{self.duplicate_ratings} duplicate (user, movie) ratings: kept the latest")
        if self.unknown_movie_ratings:
            out.append(f"{self.unknown_movie_ratings} ratings of movies not in the catalog: dropped")
        if self.unknown_movie_tags:
            out.append(f"{self.unknown_movie_tags} tags of movies not in the catalog: dropped")
        for name, n in self.unknown_movie_features.items():
            if n:
                out.append(f"{n} {name} rows for movies not in the catalog: dropped")
        out.extend(f"optional source not found: {m}" for m in self.missing_optional)
        return out


@dataclass
class Dataset:
    """One catalog (indexed by movie_id, columns CATALOG_COLUMNS) and one interaction table."""

    name: str
    catalog: pd.DataFrame
    ratings: pd.DataFrame
    trailer_features: dict[str, TrailerFeatures] = field(default_factory=dict)
    report: LoadReport = field(default_factory=LoadReport)
    source_hash: str = ""

    @property
    def version(self) -> str:
        """Content hash of the interaction table and catalog ids: splits and models key on it."""
        h = hashlib.sha256(self.source_hash.encode())
        h.update(np.ascontiguousarray(self.ratings[RATING_COLUMNS].to_numpy(np.float64)).tobytes())
        h.update(np.ascontiguousarray(self.catalog.index.to_numpy(np.int64)).tobytes())
        return h.hexdigest()[:16]

    def movie_text(self, movie_id: int) -> str:
        """Title, year, genres, tags and plot as one text, the input of the text encoder."""
        row = self.catalog.loc[movie_id]
        return catalog_row_text(row)


def catalog_row_text(row: pd.Series) -> str:
    parts = [str(row["title"])]
    if row["genres"]:
        parts.append("Genres: " + ", ".join(row["genres"]))
    if row["tags"]:
        parts.append("Tags: " + ", ".join(row["tags"]))
    if isinstance(row["plot"], str) and row["plot"]:
        parts.append(row["plot"])
    return ". ".join(parts)
