"""``Ranker``: top-N for a known user, a user vector or a new user's liked movies, with filters,
over the current model; new movies added and model versions swapped without a restart.

The model comes from ``movierec.models.recommender.load_recommender`` (the fusion model: its
``artifact`` is served, ``fold_in`` makes new users and ``embed_new_item`` new movies; an
artifact without a checkpoint serves known and new users but cannot embed new movies).

Thread-safety: every request reads ``self.model`` once and works on that object; reloads and
added movies build a new ``LoadedModel`` and swap the reference.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from movierec.contracts.ranker import AddItemRequest, AddItemResponse, TopNRequest, TopNResponse
from movierec.models.recommender import Recommender, load_recommender
from movierec.models.serving import ServingArtifact
from movierec.serving.catalog import CatalogMovie, MovieCatalog
from movierec.serving.errors import InvalidInput, ModelUnavailable, UnknownMovie, UnknownUser
from movierec.serving.filters import FilterColumns, check_filters
from movierec.serving.item_index import ItemIndex

log = logging.getLogger(__name__)

NEW_USER_RATING = 5.0
"""The rating a new user's liked movie counts as when folded in."""
MAX_LIKED_FOR_EXPLANATIONS = 500
"""Liked movies searched for "because you liked" (the best rated first)."""
MAX_LIKED_RETURNED = 50

ModelLoader = Callable[[Path], Recommender]
"""Folder -> the recommender to serve (tests may pass their own)."""


@dataclass(frozen=True)
class LoadedModel:
    version: str
    index: ItemIndex
    user_rows: dict[int, int]
    user_vectors: np.ndarray
    recommender: Recommender
    folder: Path


@dataclass
class Ranker:
    catalog: MovieCatalog
    device: torch.device
    loader: ModelLoader = load_recommender
    model: LoadedModel | None = None
    added: dict[int, AddItemRequest] = field(default_factory=dict)
    """Movies added since start; re-embedded into every newly loaded model version."""
    journal: Path | None = None
    """JSON lines of every added movie (request with its vectors): replayed at start, so added
    movies survive a restart (and reach a new replica that shares the file)."""
    new_movie_share: float = 0.0
    """Top slots for new movies relative to their part of the catalog (``ItemIndex.top_n``'s
    ``new_share``; 0: ranked by their score alone)."""
    _writing: threading.Lock = field(default_factory=threading.Lock, repr=False)
    """Serialises writers (loads, added movies); readers never wait."""
    _filter_columns: FilterColumns | None = field(default=None, repr=False)
    """The catalog's filter columns aligned with the served index's rows; rebuilt when the index
    (a reload, an added movie) or the catalog's columns change."""

    def __post_init__(self) -> None:
        if self.journal is None or not self.journal.exists():
            return
        for number, line in enumerate(self.journal.read_text().splitlines(), 1):
            try:
                request = AddItemRequest.model_validate_json(line)
            except ValueError as exc:  # a torn last line after a crash: skip it, keep the rest
                log.warning("%s line %d unreadable, skipped: %s", self.journal, number, exc)
                continue
            self.added[request.movie_id] = request
            self.catalog.add_movie(_catalog_movie(request, self.catalog.get(request.movie_id)))

    # --- loading ------------------------------------------------------------------------------

    def load(self, folder: Path) -> LoadedModel:
        """Load the model in ``folder``, re-add the movies added so far, then swap it in."""
        with self._writing:
            return self._load(Path(folder))

    def _load(self, folder: Path) -> LoadedModel:
        recommender = self.loader(folder)
        art: ServingArtifact = recommender.artifact
        model = LoadedModel(
            version=art.version,
            index=ItemIndex.from_artifact(art, self.device),
            user_rows={int(u): i for i, u in enumerate(art.user_ids)},
            user_vectors=art.user_vectors,
            recommender=recommender,
            folder=folder,
        )
        for request in list(self.added.values()):
            try:
                model = self._with_item(model, request)[0]
            except InvalidInput as exc:
                log.warning("added movie %s could not be re-embedded in version %s: %s", request.movie_id, model.version, exc)
        self.filter_columns(model)
        self.model = model
        log.info("serving model version %s (%d items, dim %d, %s)", model.version, len(model.index), model.index.dim, self.device)
        return model

    def current(self) -> LoadedModel:
        model = self.model
        if model is None:
            raise ModelUnavailable("no model loaded yet (train one: `movierec model train`)")
        return model

    def filter_columns(self, model: LoadedModel) -> FilterColumns:
        """``FilterColumns`` for ``model``'s index and the catalog's current columns, built once
        per pair (both are replaced, never changed in place, so identity tells them apart)."""
        cached, columns = self._filter_columns, self.catalog.columns
        if cached is not None and cached.columns is columns and cached.row_of is model.index.rows:
            return cached
        built = FilterColumns.build(columns, model.index.movie_ids, model.index.device, row_of=model.index.rows)
        self._filter_columns = built
        return built

    # --- top-N --------------------------------------------------------------------------------

    def top_n(self, request: TopNRequest) -> TopNResponse:
        model = self.current()
        check_filters(request.filters, self.catalog.genres)
        unknown = [m for m in request.liked_movie_ids if m not in self.catalog and m not in model.index]
        if unknown:
            raise UnknownMovie(unknown, "liked_movie_ids")
        folded = False
        if request.user_vector is not None:
            with np.errstate(over="ignore"):
                user_vector = np.asarray(request.user_vector, np.float32)
            if not np.isfinite(user_vector).all():
                raise InvalidInput("user_vector", "values must be finite and within float32 range")
            if user_vector.shape[0] != model.index.dim:
                raise InvalidInput("user_vector", f"has {user_vector.shape[0]} dims, model {model.version} has {model.index.dim}")
            liked, rated = list(request.liked_movie_ids), set(request.liked_movie_ids)
        elif request.user_id is not None:
            user_vector, liked, rated = self._known_user(model, request)
        else:
            user_vector = self._fold_in(model, {m: NEW_USER_RATING for m in request.liked_movie_ids})
            liked, rated, folded = list(request.liked_movie_ids), set(request.liked_movie_ids), True

        exclude = set(request.exclude_movie_ids)
        if request.filters.exclude_watched:
            exclude |= rated
        allowed = self.filter_columns(model).mask(request.filters, exclude)
        top = model.index.top_n(user_vector, request.k, allowed, new_share=self.new_movie_share)
        ids = [s.movie_id for s in top]
        nearest = model.index.nearest(ids, liked[:MAX_LIKED_FOR_EXPLANATIONS])
        attention = model.index.attention_rows(ids)
        items = [
            {
                "movie_id": s.movie_id,
                "score": round(s.score, 5),
                "attention": att,
                "because": {"movie_id": n[0], "similarity": n[1]} if n else None,
            }
            for s, n, att in zip(top, nearest, attention)
        ]
        return TopNResponse.model_validate({  # one validation in pydantic-core for the whole list
            "model_version": model.version,
            "items": items,
            "user_vector": [round(float(x), 6) for x in user_vector] if folded else None,
            "liked_movie_ids": liked[:MAX_LIKED_RETURNED],
        })

    def _known_user(self, model: LoadedModel, request: TopNRequest) -> tuple[np.ndarray, list[int], set[int]]:
        uid = int(request.user_id)
        rated = self.catalog.rated_by(uid)
        row = model.user_rows.get(uid)
        if row is None and not rated:
            raise UnknownUser(uid)
        liked = list(dict.fromkeys(self.catalog.liked_by(uid) + list(request.liked_movie_ids)))
        if row is not None:
            vector = model.user_vectors[row]
        else:  # in the catalog but not in this model (e.g. rated after training): fold in
            vector = self._fold_in(model, dict(rated))
        return vector, liked, set(rated) | set(request.liked_movie_ids)

    def _fold_in(self, model: LoadedModel, ratings: dict[int, float]) -> np.ndarray:
        try:
            vector, _bias = model.recommender.fold_in(ratings)
        except ValueError as exc:
            raise InvalidInput("liked_movie_ids", f"cannot fold in these movies: {exc}") from None
        return np.asarray(vector, np.float32)

    # --- new movies ---------------------------------------------------------------------------

    def add_item(self, request: AddItemRequest) -> AddItemResponse:
        """Embed a new movie from its modality vectors and serve it from the next request on."""
        if any(not g.strip() for g in request.genres):
            raise InvalidInput("genres", "genres must be non-empty names")
        with self._writing:
            model = self.current()
            new_model, item = self._with_item(model, request)
            replaced = request.movie_id in model.index
            self.catalog.add_movie(_catalog_movie(request, self.catalog.get(request.movie_id)))
            self.added[request.movie_id] = request
            self.filter_columns(new_model)
            self.model = new_model
            if self.journal is not None:
                self.journal.parent.mkdir(parents=True, exist_ok=True)
                with self.journal.open("a") as fh:
                    fh.write(request.model_dump_json() + "\n")
        return AddItemResponse(
            movie_id=request.movie_id, model_version=new_model.version, bias=round(float(item.bias), 5),
            attention={k: round(float(v), 4) for k, v in item.attention.items()}, replaced=replaced,
        )

    def _with_item(self, model: LoadedModel, request: AddItemRequest):
        features = {name: np.asarray(v, np.float32) for name, v in request.features.items()}
        try:
            item = model.recommender.embed_new_item(features)
        except ValueError as exc:  # RecommenderInputError names the field, e.g. features.text
            field_name = getattr(exc, "field", "features")
            message = str(exc).removeprefix(f"{field_name}: ")
            raise InvalidInput(field_name, message) from None
        if not item.attention:  # no modality was usable: a zero vector would place the movie at random
            has_encoder = model.recommender.checkpoint is not None
            uses = ", ".join(model.recommender.artifact.modality_names) if has_encoder else ""
            raise InvalidInput("features", f"model {model.version} cannot place this movie: it uses none of the given modalities "
                                           f"({', '.join(sorted(request.features))}); it uses {uses or 'none (no content encoder)'}")
        index = model.index.with_item(request.movie_id, item.vector, item.bias, dict(item.attention))
        return replace(model, index=index), item


def _catalog_movie(request: AddItemRequest, existing: CatalogMovie | None) -> CatalogMovie:
    return CatalogMovie(
        movie_id=request.movie_id, title=request.title, year=request.year, genres=tuple(request.genres), tags=tuple(request.tags),
        plot=existing.plot if existing else None, poster_path=existing.poster_path if existing else None,
        average_rating=existing.average_rating if existing else None, rating_count=existing.rating_count if existing else 0,
    )


__all__ = ["Ranker", "LoadedModel", "ModelLoader"]
