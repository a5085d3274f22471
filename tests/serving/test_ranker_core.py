"""Top-N with filters against a brute-force check, new users, new movies and atomic reloads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from movierec.contracts.movies import MovieFilters
from movierec.contracts.ranker import AddItemRequest, TopNRequest
from movierec.serving.errors import FilterError, InvalidInput, UnknownMovie, UnknownUser
from movierec.serving.ranker import Ranker


@pytest.fixture
def ranker(catalog, model_folder) -> Ranker:
    r = Ranker(catalog=catalog, device=torch.device("cpu"))
    r.load(model_folder)
    return r


def brute_force(ranker: Ranker, user_id: int, k: int, f: MovieFilters) -> list[int]:
    """Score every movie in Python, apply each filter per movie, sort."""
    art = ranker.model.recommender.artifact
    u = art.user_vectors[list(art.user_ids).index(user_id)]
    rated = ranker.catalog.rated_by(user_id)
    out = []
    for mid, vec, b in zip(art.movie_ids, art.item_vectors, art.item_bias):
        m = ranker.catalog.get(int(mid))
        if f.exclude_watched and int(mid) in rated:
            continue
        if f.genres_include and not set(m.genres) & set(f.genres_include):
            continue
        if set(m.genres) & set(f.genres_exclude):
            continue
        if f.year_min is not None and (m.year is None or m.year < f.year_min):
            continue
        if f.year_max is not None and (m.year is None or m.year > f.year_max):
            continue
        if f.min_avg_rating is not None and (m.average_rating is None or m.average_rating < f.min_avg_rating):
            continue
        out.append((float(np.dot(u, vec) + b), int(mid)))
    out.sort(reverse=True)
    return [mid for _, mid in out[:k]]


FILTER_CASES = [
    MovieFilters(),
    MovieFilters(exclude_watched=False),
    MovieFilters(genres_include=["Comedy", "Horror"]),
    MovieFilters(genres_exclude=["Drama"], year_min=1990, year_max=1999),
    MovieFilters(min_avg_rating=4.0, genres_include=["Animation"]),
    MovieFilters(genres_include=["Film-Noir"], year_max=1950, min_avg_rating=3.5),
]


@pytest.mark.parametrize("filters", FILTER_CASES, ids=range(len(FILTER_CASES)))
def test_top_n_matches_brute_force(ranker, filters):
    for user_id in (1, 77, 414):
        got = ranker.top_n(TopNRequest(user_id=user_id, k=25, filters=filters))
        assert [s.movie_id for s in got.items] == brute_force(ranker, user_id, 25, filters)
        assert got.model_version == "v1"


def test_exclude_watched_and_explicit_excludes(ranker):
    rated = set(ranker.catalog.rated_by(414))
    got = ranker.top_n(TopNRequest(user_id=414, k=200))
    ids = [s.movie_id for s in got.items]
    assert not rated & set(ids)
    again = ranker.top_n(TopNRequest(user_id=414, k=200, exclude_movie_ids=ids[:5]))
    assert not set(ids[:5]) & {s.movie_id for s in again.items}
    assert [s.movie_id for s in again.items][:10] == ids[5:15]


def test_explanations_point_at_liked_movies(ranker):
    got = ranker.top_n(TopNRequest(user_id=1, k=10))
    liked = set(ranker.catalog.liked_by(1))
    assert all(s.because is not None and s.because.movie_id in liked for s in got.items)
    assert all(s.because.movie_id != s.movie_id for s in got.items)
    assert all(abs(sum(s.attention.values()) - 1.0) < 1e-3 for s in got.items)
    # the reported neighbour really is the most similar liked movie
    art = ranker.model.recommender.artifact
    rows = {int(m): i for i, m in enumerate(art.movie_ids)}
    unit = art.item_vectors / np.linalg.norm(art.item_vectors, axis=1, keepdims=True)
    first = got.items[0]
    sims = {m: float(unit[rows[first.movie_id]] @ unit[rows[m]]) for m in liked}
    assert first.because.movie_id == max(sims, key=sims.get)


def test_new_user_from_liked_movies(ranker):
    liked = [1, 2, 3]
    got = ranker.top_n(TopNRequest(liked_movie_ids=liked, k=20))
    assert got.user_vector is not None and len(got.user_vector) == ranker.model.index.dim
    assert not set(liked) & {s.movie_id for s in got.items}
    assert len(got.items) == 20
    # the same vector sent back gives the same list (policy and ranker agree on the user)
    again = ranker.top_n(TopNRequest(user_vector=got.user_vector, liked_movie_ids=liked, k=20))
    assert [s.movie_id for s in again.items] == [s.movie_id for s in got.items]


def test_errors_name_what_is_wrong(ranker):
    with pytest.raises(UnknownUser, match="user 999999"):
        ranker.top_n(TopNRequest(user_id=999999))
    with pytest.raises(UnknownMovie, match="424242"):
        ranker.top_n(TopNRequest(liked_movie_ids=[1, 424242]))
    with pytest.raises(FilterError) as err:
        ranker.top_n(TopNRequest(user_id=1, filters=MovieFilters(genres_include=["Cartoons"])))
    assert err.value.field == "filters.genres_include"
    with pytest.raises(InvalidInput, match="user_vector"):
        ranker.top_n(TopNRequest(user_vector=[0.1, 0.2]))


def test_add_item_served_and_filtered(ranker, text_dim):
    text = np.random.default_rng(3).normal(size=text_dim).astype(np.float32)
    request = AddItemRequest(movie_id=500001, title="Brand New (2026)", year=2026, genres=["Sci-Fi"], features={"text": text.tolist()})
    added = ranker.add_item(request)
    assert set(added.attention) == {"text"} and not added.replaced
    vector = ranker.model.recommender.embed_new_item({"text": text}).vector
    got = ranker.top_n(TopNRequest(user_vector=(vector * 100).tolist(), k=5, filters=MovieFilters(year_min=2026)))
    assert [s.movie_id for s in got.items] == [500001]
    assert set(got.items[0].attention) == {"text"}
    none = ranker.top_n(TopNRequest(user_vector=(vector * 100).tolist(), k=5, filters=MovieFilters(year_min=2026, genres_exclude=["Sci-Fi"])))
    assert none.items == []
    with pytest.raises(InvalidInput) as err:
        ranker.add_item(AddItemRequest(movie_id=500002, title="x", features={"text": [1.0, 2.0]}))
    assert err.value.field == "features.text"
    with pytest.raises(InvalidInput, match="unknown modalities smell"):
        ranker.add_item(AddItemRequest(movie_id=500002, title="x", features={"smell": [1.0]}))
    with pytest.raises(InvalidInput, match="uses none of the given modalities \\(audio\\); it uses text, poster"):
        ranker.add_item(AddItemRequest(movie_id=500002, title="x", features={"audio": [1.0] * 4}))
    assert 500002 not in ranker.model.index


def test_artifact_without_checkpoint_cannot_add_movies(catalog, model_folder, text_dim):
    from movierec.models.serving import ServingArtifact

    art = ServingArtifact.load(model_folder)
    art.metadata.pop("checkpoint")
    art.version = "mf-only"
    art.save(model_folder)
    r = Ranker(catalog=catalog, device=torch.device("cpu"))
    r.load(model_folder)
    assert len(r.top_n(TopNRequest(user_id=5, k=3)).items) == 3
    assert r.top_n(TopNRequest(liked_movie_ids=[1, 2], k=3)).user_vector is not None
    with pytest.raises(InvalidInput, match="no content encoder"):
        r.add_item(AddItemRequest(movie_id=500001, title="New", features={"text": [0.5] * text_dim}))


def test_reload_is_atomic_and_keeps_added_movies(ranker, publish, text_dim):
    folder = ranker.model.folder
    ranker.add_item(AddItemRequest(movie_id=500001, title="New", features={"text": [0.5] * text_dim}))
    seen: list[tuple[str, int]] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                got = ranker.top_n(TopNRequest(user_id=1, k=10))
                seen.append((got.model_version, len(got.items)))
            except Exception as exc:  # any error while swapping is a failure
                errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(3):
        publish(folder, f"v{i + 2}", seed=i + 1)
        ranker.load(folder)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert {v for v, _ in seen} <= {"v1", "v2", "v3", "v4"} and all(n == 10 for _, n in seen)
    assert ranker.model.version == "v4"
    assert 500001 in ranker.model.index  # re-embedded into the new version


def test_cached_filter_columns_follow_reloads_and_added_movies(ranker, publish, text_dim):
    from movierec.serving.filters import allowed_mask

    def check(filters: MovieFilters, exclude: set[int]) -> None:
        model = ranker.model
        cached = ranker.filter_columns(model).mask(filters, exclude).numpy()
        fresh = allowed_mask(ranker.catalog.columns, model.index.movie_ids, filters, exclude)
        assert len(cached) == len(model.index) and (cached == fresh).all()

    f = MovieFilters(genres_include=["Western"], year_min=2026)
    first = ranker.filter_columns(ranker.model)
    assert ranker.filter_columns(ranker.model) is first  # built once per model version
    assert not first.mask(f, ()).any()  # no Western from 2026 yet
    # an added movie, and a known movie replaced with new metadata: both filterable at once
    ranker.add_item(AddItemRequest(movie_id=500001, title="New West", year=2026, genres=["Western"], features={"text": [0.5] * text_dim}))
    ranker.add_item(AddItemRequest(movie_id=1, title="Toy Story (2026 cut)", year=2026, genres=["Western"], features={"text": [0.3] * text_dim}))
    assert ranker.filter_columns(ranker.model) is not first
    rows = ranker.model.index.rows
    allowed = ranker.filter_columns(ranker.model).mask(f, {1})
    assert allowed[rows[500001]] and not allowed[rows[1]] and int(allowed.sum()) == 1
    check(f, {1, 2, 3})
    check(MovieFilters(genres_exclude=["Drama"], min_avg_rating=3.5), set())
    before = ranker.filter_columns(ranker.model)
    publish(ranker.model.folder, "v2", seed=5)
    ranker.load(ranker.model.folder)
    assert ranker.filter_columns(ranker.model) is not before and ranker.model.version == "v2"
    check(f, {500001})
    got = ranker.top_n(TopNRequest(user_id=1, k=5, filters=f))
    ids = [s.movie_id for s in got.items]
    assert 500001 in ids and set(ids) <= {1, 500001}  # user 1 rated movie 1: excluded as watched
    assert ranker.filter_columns(ranker.model).mask(MovieFilters(), ()) is None  # nothing filtered: no mask at all
