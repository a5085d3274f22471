"""Admin routes: add a new movie without restarting anything.

    POST /v1/admin/movies  (multipart: title, year, genres, tags, plot, poster, audio)
      -> feature-extractor computes every modality it can
      -> every ranker replica embeds the movie with the fusion model and serves it
      -> the gateway's catalog (and the other gateway replicas, through Redis) know it

The app mounts this router behind ``movierec.security``'s admin check (``X-API-Key``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel

from movierec.clients import FeatureExtractorClient, RankerPool, ServiceRejected, ServiceUnavailable
from movierec.contracts.errors import error_responses
from movierec.contracts.movies import MAX_ID, MoviePublic
from movierec.contracts.ranker import AddItemRequest
from movierec.serving.catalog import CatalogMovie, MovieCatalog
from movierec_gateway.cache import RecommendationCache
from movierec_gateway.settings import GatewaySettings
from movierec_service import ServiceError

POSTER_SUFFIXES = {"image/jpeg": ".jpg", "image/png": ".png"}


@dataclass
class AdminDeps:
    settings: GatewaySettings
    catalog: Callable[[], MovieCatalog]
    features: FeatureExtractorClient
    rankers: RankerPool
    cache: RecommendationCache
    added_poster_dir: Path
    public: Callable[[CatalogMovie], MoviePublic]


class MovieAdded(BaseModel):
    movie: MoviePublic
    modalities: dict[str, int]
    """Modality -> vector width, as computed by the feature-extractor."""
    skipped: dict[str, str]
    attention: dict[str, float]
    model_version: str
    rankers_updated: int
    rankers_unavailable: int


def _names(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"[|,]", text) if p.strip()]


def admin_router(deps: AdminDeps) -> APIRouter:
    router = APIRouter(prefix="/v1/admin", tags=["admin"])

    @router.post("/movies", response_model=MovieAdded, status_code=201,
                 responses=error_responses(400, 401, 403, 409, 413, 422, 503))
    async def add_movie(
        title: Annotated[str, Form(min_length=1, max_length=300)],
        year: Annotated[int | None, Form(ge=1870, le=2100)] = None,
        genres: Annotated[str, Form(max_length=2000, description="Separated by | or ,")] = "",
        tags: Annotated[str, Form(max_length=5000, description="Separated by | or ,")] = "",
        plot: Annotated[str, Form(max_length=20000)] = "",
        movie_id: Annotated[int | None, Form(ge=1, le=MAX_ID, description="Default: the next free id")] = None,
        poster: Annotated[UploadFile | None, File()] = None,
        audio: Annotated[UploadFile | None, File()] = None,
    ) -> MovieAdded:
        """Add a movie from its text, poster and audio; it is recommendable at once."""
        catalog = deps.catalog()
        if movie_id is not None and catalog.get(movie_id) is not None and catalog.get(movie_id).rating_count > 0:
            raise ServiceError(f"movie {movie_id} already exists in the catalog (movie_id)", status=409, code="conflict")
        movie_id = movie_id or max(catalog.next_movie_id(), max((await deps.cache.added_movies()), default=0) + 1)
        genre_list, tag_list = _names(genres), _names(tags)
        poster_file = (poster.filename or "poster", await poster.read(), poster.content_type or "application/octet-stream") if poster else None
        audio_file = (audio.filename or "audio", await audio.read(), audio.content_type or "application/octet-stream") if audio else None
        try:
            extracted = await deps.features.extract(
                movie_id, title=title, genres=genre_list, tags=tag_list, plot=plot or None, year=year, poster=poster_file, audio=audio_file,
            )
        except ServiceRejected as exc:
            raise ServiceError(exc.message, status=exc.status, code=exc.code) from None
        except ServiceUnavailable:
            raise ServiceError("feature-extractor unavailable: the movie was not added, retry", status=503, code="features_unavailable", headers={"Retry-After": "5"}) from None
        if not extracted.modalities:
            reasons = "; ".join(f"{k}: {v}" for k, v in extracted.skipped.items()) or "no input"
            raise ServiceError(f"no modality could be computed for the movie ({reasons})", status=422, code="invalid_request")

        request = AddItemRequest(movie_id=movie_id, title=title, year=year, genres=genre_list, tags=tag_list, features=extracted.vectors())
        try:
            results = await deps.rankers.add_item(request)
        except ServiceRejected as exc:
            raise ServiceError(exc.message, status=exc.status if exc.status < 500 else 422, code=exc.code) from None
        added = [r for r in results if not isinstance(r, ServiceUnavailable)]
        if not added:
            raise ServiceError("no ranker replica available: the movie was not added, retry", status=503, code="ranker_unavailable", headers={"Retry-After": "5"})

        if poster_file and poster_file[2] in POSTER_SUFFIXES:
            deps.added_poster_dir.mkdir(parents=True, exist_ok=True)
            (deps.added_poster_dir / f"{movie_id}{POSTER_SUFFIXES[poster_file[2]]}").write_bytes(poster_file[1])
        movie = CatalogMovie(movie_id=movie_id, title=title, year=year, genres=tuple(genre_list), tags=tuple(tag_list), plot=plot or None)
        catalog.add_movie(movie)
        await deps.cache.remember_added_movie(movie_id, {
            "movie_id": movie_id, "title": title, "year": year, "genres": genre_list, "tags": tag_list, "plot": plot or None,
        })
        return MovieAdded(
            movie=deps.public(movie), modalities={k: v.dim for k, v in extracted.modalities.items()}, skipped=extracted.skipped,
            attention=added[0].attention, model_version=added[0].model_version,
            rankers_updated=len(added), rankers_unavailable=len(results) - len(added),
        )

    return router
