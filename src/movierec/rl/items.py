"""The simulated catalog: per movie the ranker's vector and bias, genres, runtime and popularity.

Everything here is observable by a policy (the ranker's output and catalog metadata). The hidden
taste lives in the simulator only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from movierec.data.dataset import Dataset
from movierec.models.serving import ServingArtifact

GENRES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
"""MovieLens genres, in the order of the multi-hot columns."""


@dataclass
class ItemTable:
    movie_ids: np.ndarray  # int64, sorted
    vectors: np.ndarray  # float32 (n, d): the ranker's item vectors
    bias: np.ndarray  # float32 (n,): the ranker's item bias
    genres: np.ndarray  # float32 (n, len(GENRES)) multi-hot
    runtime: np.ndarray  # float32 (n,) minutes
    popularity: np.ndarray  # int64 (n,) training ratings

    def __len__(self) -> int:
        return len(self.movie_ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def index_of(self, movie_ids) -> np.ndarray:
        """Row of each movie id; -1 where the movie is not in the table."""
        movie_ids = np.asarray(movie_ids, np.int64)
        pos = np.searchsorted(self.movie_ids, movie_ids)
        pos = np.clip(pos, 0, len(self.movie_ids) - 1)
        return np.where(self.movie_ids[pos] == movie_ids, pos, -1)

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(movie_ids=self.movie_ids, vectors=self.vectors, bias=self.bias, genres=self.genres,
                    runtime=self.runtime, popularity=self.popularity)


def genre_matrix(genres: pd.Series) -> np.ndarray:
    col = {g: j for j, g in enumerate(GENRES)}
    out = np.zeros((len(genres), len(GENRES)), np.float32)
    for i, gs in enumerate(genres):
        for g in gs:
            if g in col:
                out[i, col[g]] = 1.0
    return out


def build_item_table(
    dataset: Dataset,
    ranker: ServingArtifact,
    train_ratings: pd.DataFrame,
    *,
    min_ratings: int = 5,
    default_runtime: float = 100.0,
    restrict_to: np.ndarray | None = None,
) -> ItemTable:
    """Movies known to the ranker with at least ``min_ratings`` training ratings (and in ``restrict_to``)."""
    counts = train_ratings["movie_id"].value_counts()
    ids = ranker.movie_ids if min_ratings <= 0 else np.intersect1d(ranker.movie_ids, counts.index[counts >= min_ratings].to_numpy(np.int64))
    ids = np.intersect1d(ids, dataset.catalog.index.to_numpy(np.int64))
    if restrict_to is not None:
        ids = np.intersect1d(ids, restrict_to)
    rows = np.searchsorted(ranker.movie_ids, ids)
    cat = dataset.catalog.loc[ids]
    runtime = pd.to_numeric(cat["runtime"], errors="coerce").to_numpy(np.float32)
    runtime = np.where(np.isfinite(runtime) & (runtime > 0), runtime, default_runtime).astype(np.float32)
    return ItemTable(
        movie_ids=ids,
        vectors=ranker.item_vectors[rows],
        bias=ranker.item_bias[rows],
        genres=genre_matrix(cat["genres"]),
        runtime=runtime,
        popularity=counts.reindex(ids).fillna(0).to_numpy(np.int64),
    )
