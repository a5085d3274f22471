"""Pure serving parts: explanations, popularity, catalog search and users, typed clients' error
sorting and request-id forwarding."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
import torch

from movierec.clients import NotFound, PolicyClient, RankerPool, ServiceRejected, ServiceTimeout, ServiceUnavailable
from movierec.contracts.movies import MovieFilters
from movierec.contracts.policy import RankCandidate, RankRequest
from movierec.contracts.ranker import TopNRequest
from movierec.serving.catalog import CatalogMovie
from movierec.serving.explanations import explain, explain_popular
from movierec.serving.popularity import PRIOR_RATINGS, popular_movies


def test_explanation_names_modalities_neighbour_and_shared_genres(catalog):
    # Toy Story 2 (3114) explained by Toy Story (1): shared genres and tags come from the neighbour
    why = explain(catalog, 3114, {"text": 0.6, "poster": 0.3, "trailer_avf": 0.1}, (1, 0.91))
    assert [m.name for m in why.modalities] == ["text", "poster", "trailer_avf"]
    assert why.because_you_liked.title == "Toy Story (1995)" and why.because_you_liked.similarity == 0.91
    assert set(why.shared_genres) == set(catalog.get(3114).genres) & set(catalog.get(1).genres)
    assert "pixar" in [t.lower() for t in why.shared_tags]
    assert why.text.startswith("Because you liked Toy Story (1995); shares ")
    assert "its story and tags (60%) and its poster (30%)" in why.text
    bare = explain(catalog, 3114, {}, None)
    assert bare.because_you_liked is None and bare.modalities == [] and bare.text
    assert "ratings" in explain_popular(catalog, 1).text


def test_popular_movies_are_damped_means_and_filtered(catalog):
    top = popular_movies(catalog, 10, MovieFilters(genres_include=["Crime"], year_max=1999), exclude_ids={318})
    assert len(top) == 10 and 318 not in [s.movie_id for s in top]
    cols = catalog.columns
    counts = cols.rating_counts.astype(float)
    sums = np.nan_to_num(cols.average_ratings) * counts
    prior = sums.sum() / counts.sum()
    for s in top:
        m = catalog.get(s.movie_id)
        assert "Crime" in m.genres and m.year <= 1999
        expected = (m.average_rating * m.rating_count + PRIOR_RATINGS * prior) / (m.rating_count + PRIOR_RATINGS)
        assert s.score == pytest.approx(expected, abs=1e-3)
    assert [s.score for s in top] == sorted([s.score for s in top], reverse=True)
    assert catalog.get(top[0].movie_id).rating_count > 50  # damping: a movie needs many good ratings


def test_catalog_search_users_and_added_movies(catalog):
    hits = catalog.search("matrix")
    assert hits[0].title == "Matrix, The (1999)" and all("matrix" in m.title.lower() for m in hits)
    assert catalog.search("   ") == []
    assert list(catalog.rated_by(1))[:3] == [804, 1210, 2018]  # oldest rating first
    liked = catalog.liked_by(1)
    assert all(catalog.rated_by(1)[m] >= 4.0 for m in liked)
    new_id = catalog.next_movie_id()
    catalog.add_movie(CatalogMovie(new_id, "Added (2026)", 2026, ("Western", "Space Opera")))
    assert catalog.get(new_id).title == "Added (2026)" and "Space Opera" in catalog.genres
    assert new_id in catalog.columns.movie_ids and catalog.search("added")[0].movie_id == new_id


def test_user_ratings_arrays_give_each_users_ratings_in_their_order():
    """Kept as arrays (a dict per user would take 2.4 GB at ml-25m); a user's dict is built when asked."""
    from movierec.serving.catalog import UserRatings

    ratings = UserRatings(np.array([3, 3, 3, 8, 8]), np.array([50, 10, 30, 10, 20]), np.array([4.0, 2.5, 5.0, 1.0, 3.5]))
    assert list(ratings.get(3).items()) == [(50, 4.0), (10, 2.5), (30, 5.0)]
    assert ratings.get(8) == {10: 1.0, 20: 3.5} and ratings.get(5) == {}
    assert 8 in ratings and 5 not in ratings and sorted(ratings) == [3, 8] and len(ratings) == 2
    again = UserRatings.from_dicts({3: ratings.get(3), 8: ratings.get(8)})
    assert all(again.get(u) == ratings.get(u) for u in (3, 8)) and len(UserRatings.from_dicts({})) == 0


def _run(coro):
    return asyncio.run(coro)


def test_clients_sort_failures_and_forward_the_request_id():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("x-request-id"))
        if request.url.host == "down":
            raise httpx.ConnectError("refused")
        if request.url.host == "slow":
            raise httpx.ReadTimeout("slow")
        if request.url.host == "broken":
            return httpx.Response(500, text="boom")
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "user 9 not found"}})

    transport = httpx.MockTransport(handler)
    request = RankRequest(user_id=9, candidates=[RankCandidate(movie_id=1, score=1.0)])
    expected = {"down": ServiceUnavailable, "slow": ServiceTimeout, "broken": ServiceUnavailable, "ok": NotFound}
    for host, error in expected.items():
        client = PolicyClient(f"http://{host}", timeout=0.5, request_id=lambda: "rid-42", transport=transport)
        with pytest.raises(error) as caught:
            _run(client.rank(request))
        assert caught.type is error
    assert isinstance(caught.value, ServiceRejected) and caught.value.status == 404 and caught.value.message == "user 9 not found"
    assert seen == ["rid-42"] * 4


def test_ranker_pool_round_robin_and_failover():
    hits = []

    def handler(request: httpx.Request) -> httpx.Response:
        hits.append(request.url.host)
        if request.url.host == "r2":
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json={"model_version": request.url.host, "items": []})

    transport = httpx.MockTransport(handler)
    urls = ["http://r1", "http://r2", "http://r3"]
    pool = RankerPool(urls, timeout=0.5, transports={u: transport for u in urls})
    versions = [_run(pool.top_n(TopNRequest(user_id=1))).model_version for _ in range(3)]
    assert versions == ["r1", "r3", "r3"]  # r2 is down: its turn goes to the next replica
    assert hits == ["r1", "r2", "r3", "r3"]
    dead = RankerPool(["http://r2"], timeout=0.5, transports={"http://r2": transport})
    with pytest.raises(ServiceUnavailable):
        _run(dead.top_n(TopNRequest(user_id=1)))


def test_gateway_remembers_poster_lookups_per_movie(catalog, monkeypatch):
    from prometheus_client import CollectorRegistry

    from movierec_gateway import recommend

    calls = []

    def lookup(movie):
        calls.append(movie.movie_id)
        return None if movie.movie_id == 2 else f"/v1/movies/{movie.movie_id}/poster"

    rec = recommend.Recommendations(catalog, None, None, None, None, CollectorRegistry(), candidates=100, poster_url=lookup)
    one, two = catalog.get(1), catalog.get(2)
    assert [rec.poster_url(one), rec.poster_url(one), rec.poster_url(two), rec.poster_url(two)] == ["/v1/movies/1/poster"] * 2 + [None] * 2
    assert calls == [1, 2]  # each looked up on disk once
    catalog.add_movie(CatalogMovie(1, "Toy Story (new cut)", 1995, ("Animation",)))
    assert rec.poster_url(catalog.get(1)) == "/v1/movies/1/poster" and calls == [1, 2, 1]  # a replaced movie: looked up again
    monkeypatch.setattr(recommend, "NO_POSTER_RECHECK_S", 0.0)
    assert rec.poster_url(two) is None and calls == [1, 2, 1, 2]  # a missing poster is checked again later


def test_filter_masks_are_kept_per_filter_combination_and_answer_as_fresh_ones(catalog):
    from movierec.serving.filters import MAX_CACHED_MASKS, FilterColumns

    ids = catalog.columns.movie_ids
    kept = FilterColumns.build(catalog.columns, ids)
    combos = [MovieFilters(year_min=1950 + j) for j in range(MAX_CACHED_MASKS + 4)] + [
        MovieFilters(genres_include=["Comedy"], genres_exclude=["Horror"], min_avg_rating=3.5), MovieFilters()]
    watched = [int(ids[0]), int(ids[5])]
    for _ in range(2):  # the second pass reads kept masks (and some evicted ones again)
        for filters in combos:
            mask = kept.mask(filters, watched)
            fresh = FilterColumns.build(catalog.columns, ids).mask(filters, watched)
            assert torch.equal(mask, fresh), filters
            assert not mask[0] and not mask[5]
            mask[:] = False  # the caller may change its mask: the kept one must not change
        assert kept.mask(combos[-2]).any()
    assert kept.mask(MovieFilters()) is None  # nothing filtered, nothing excluded
    assert len(kept._attribute_masks) <= MAX_CACHED_MASKS


def test_loaded_objects_are_kept_off_the_collectors_rounds():
    import gc

    from movierec_service.heap import freeze_loaded_objects

    loaded = [{"movie": i} for i in range(1000)]  # noqa: F841 (alive while frozen)
    gc.unfreeze()
    try:
        freeze_loaded_objects()
        assert gc.get_freeze_count() >= 1000
    finally:
        gc.unfreeze()
