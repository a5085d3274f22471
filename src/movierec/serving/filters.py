"""Filters over the catalog: which movies a top-N list may contain.

``allowed_mask`` is vectorised over ``CatalogColumns`` so the ranker applies it to every item in
one pass; ``check_filters`` rejects what the catalog cannot honour, naming the field.
"""

from __future__ import annotations

import numpy as np

from movierec.contracts.movies import MovieFilters
from movierec.serving.catalog import CatalogColumns


class FilterError(ValueError):
    """A filter the catalog cannot honour; ``field`` is its dotted name in the request."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_filters(filters: MovieFilters, known_genres: list[str], *, prefix: str = "filters") -> None:
    known = set(known_genres)
    for name in ("genres_include", "genres_exclude"):
        unknown = [g for g in getattr(filters, name) if g not in known]
        if unknown:
            raise FilterError(f"{prefix}.{name}", f"unknown genre(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")


def allowed_mask(
    columns: CatalogColumns,
    movie_ids: np.ndarray,
    filters: MovieFilters,
    exclude_ids: set[int] | frozenset[int] = frozenset(),
) -> np.ndarray:
    """Boolean mask over ``movie_ids``: True where the movie passes every filter.

    Movies the catalog does not know pass only when no attribute filter is set (nothing is
    known about them to check)."""
    movie_ids = np.asarray(movie_ids, np.int64)
    pos = columns.positions(movie_ids)
    known = pos >= 0
    safe = np.where(known, pos, 0)
    mask = np.ones(len(movie_ids), dtype=bool)
    if filters.genres_include:
        bits = columns.genre_bits[safe] & columns.genre_mask(filters.genres_include)
        mask &= known & (bits != 0)
    if filters.genres_exclude:
        bits = columns.genre_bits[safe] & columns.genre_mask(filters.genres_exclude)
        mask &= ~known | (bits == 0)
    if filters.year_min is not None or filters.year_max is not None:
        years = np.where(known, columns.years[safe], np.nan)
        with np.errstate(invalid="ignore"):
            if filters.year_min is not None:
                mask &= years >= filters.year_min
            if filters.year_max is not None:
                mask &= years <= filters.year_max
    if filters.min_avg_rating is not None:
        avg = np.where(known, columns.average_ratings[safe], np.nan)
        with np.errstate(invalid="ignore"):
            mask &= avg >= filters.min_avg_rating
    if exclude_ids:
        mask &= ~np.isin(movie_ids, np.fromiter(exclude_ids, np.int64, len(exclude_ids)))
    return mask
