"""Popular movies: the list served when no model can answer (new user with nothing liked, ranker
down). Ordered by a damped mean rating so a movie needs both many ratings and good ones."""

from __future__ import annotations

import numpy as np

from movierec.contracts.movies import MovieFilters
from movierec.serving.catalog import MovieCatalog
from movierec.serving.filters import allowed_mask
from movierec.serving.item_index import Scored

PRIOR_RATINGS = 20
"""Pseudo-ratings at the global mean added to every movie (Bayesian damping)."""


def popularity_scores(catalog: MovieCatalog) -> tuple[np.ndarray, np.ndarray]:
    """Movie ids and their damped mean rating."""
    cols = catalog.columns
    counts = cols.rating_counts.astype(np.float64)
    sums = np.nan_to_num(cols.average_ratings) * counts
    prior = sums.sum() / max(counts.sum(), 1.0)
    return cols.movie_ids, (sums + PRIOR_RATINGS * prior) / (counts + PRIOR_RATINGS)


def popular_movies(catalog: MovieCatalog, k: int, filters: MovieFilters | None = None, exclude_ids: set[int] = frozenset()) -> list[Scored]:
    ids, scores = popularity_scores(catalog)
    mask = allowed_mask(catalog.columns, ids, filters or MovieFilters(exclude_watched=False), set(exclude_ids))
    mask &= catalog.columns.rating_counts > 0
    order = np.flatnonzero(mask)[np.argsort(-scores[mask], kind="stable")][:k]
    return [Scored(int(ids[i]), round(float(scores[i]), 4)) for i in order]
