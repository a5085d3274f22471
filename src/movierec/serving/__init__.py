"""Serving logic without HTTP: the catalog, filters, top-N over an item matrix, explanations and
the popularity fallback. The ranker and gateway services wire these to FastAPI."""

from movierec.serving.catalog import CatalogMovie, MovieCatalog, poster_file
from movierec.serving.explanations import explain, explain_popular
from movierec.serving.filters import FilterColumns, FilterError, allowed_mask, check_filters
from movierec.serving.item_index import ItemIndex, Scored, pick_device
from movierec.serving.popularity import popular_movies

__all__ = [
    "CatalogMovie", "MovieCatalog", "poster_file", "explain", "explain_popular", "FilterColumns", "FilterError", "allowed_mask",
    "check_filters", "ItemIndex", "Scored", "pick_device", "popular_movies",
]
