"""The gateway against a real ranker, the real feedback service (PostgreSQL) and real Redis on
loopback ports: flows, 404/422 answers, and every degrade path with zero 5xx."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from movierec.contracts.decisions import ServedDecision
from movierec.contracts.features import ModalityVector, MovieFeatures
from movierec.contracts.policy import RankedItem, RankRequest, RankResponse
from movierec.serving.catalog import MovieCatalog
from movierec.settings import get_settings
from movierec_feedback.app import create_app as create_feedback_app
from movierec_feedback.settings import FeedbackSettings
from movierec_gateway.app import create_app as create_gateway_app
from movierec_gateway.settings import GatewaySettings
from movierec_ranker.app import create_app as create_ranker_app
from movierec_ranker.settings import RankerSettings

pytestmark = pytest.mark.integration


def reversing_policy(calls: list, delay_s: float = 0.0) -> FastAPI:
    """Policy service double: serves the candidates in reverse order (so the test can tell its
    order from the ranker's) and records what it was sent."""
    app = FastAPI()

    @app.post("/v1/rank")
    async def rank(body: RankRequest, request: Request) -> RankResponse:
        calls.append((request.headers.get("x-request-id"), body))
        if delay_s:
            await asyncio.sleep(delay_s)
        items = [RankedItem(movie_id=c.movie_id, q_value=-i, propensity=0.5) for i, c in enumerate(reversed(body.candidates))]
        return RankResponse(items=items[: body.k], policy_version="test-reverse")

    return app


def feature_extractor(text_dim: int, poster_dim: int, seen: list) -> FastAPI:
    """Feature-extractor double returning vectors of the widths the test model was trained on."""
    app = FastAPI()

    @app.post("/v1/movies/{movie_id}/features")
    async def extract(movie_id: int, request: Request) -> MovieFeatures:
        form = await request.form()
        seen.append(dict(form))
        rng = np.random.default_rng(movie_id)
        return MovieFeatures(
            movie_id=movie_id,
            modalities={"text": ModalityVector(dim=text_dim, encoder="test", vector=rng.normal(size=text_dim).tolist())},
            skipped={"poster": "no poster uploaded", "audio": "no audio uploaded"},
        )

    return app


@pytest.fixture(scope="module")
def services(catalog_dataset, trained_fusion_dir, serve_for_module, feedback_database_url, gateway_redis_url, tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("gateway-models") / "fusion"
    shutil.copytree(trained_fusion_dir, root)
    ranker = serve_for_module(create_ranker_app(
        RankerSettings(artifact_dir=root / "current", device="cpu", reload_interval_s=0, added_items_file=root.parent / "added.jsonl"),
        catalog=MovieCatalog.from_dataset(catalog_dataset),
    ))
    calls: list = []
    policy = serve_for_module(reversing_policy(calls))
    slow_policy = serve_for_module(reversing_policy([], delay_s=1.5))
    feedback = serve_for_module(create_feedback_app(FeedbackSettings(database_url=feedback_database_url, redis_url=gateway_redis_url)))
    extracted: list = []
    features = serve_for_module(feature_extractor(16, 12, extracted))
    return {"ranker": ranker.url, "policy": policy.url, "slow_policy": slow_policy.url, "feedback": feedback.url,
            "features": features.url, "policy_calls": calls, "extracted": extracted}


PATIENT = {"policy_timeout_s": 10.0, "feedback_timeout_s": 10.0}
"""Past the defaults (0.3 s, 1 s) the gateway serves a fallback; on a loaded test machine a slow
first call would then fail an assertion about something else. The fallback tests set the
timeout they test (``policy_timeout_s=0.3``)."""


@pytest.fixture
def make_gateway(services, catalog_dataset, gateway_redis_url, redis_db, tmp_path):
    clients: list[TestClient] = []

    def make(**overrides) -> TestClient:
        settings = GatewaySettings(**{
            "ranker_urls": services["ranker"], "policy_url": services["policy"], "feedback_url": services["feedback"],
            "features_url": services["features"], "redis_url": gateway_redis_url, "poster_dir": tmp_path / "no-posters",
            "added_poster_dir": tmp_path / "added-posters", **PATIENT, **overrides,
        })
        client = TestClient(create_gateway_app(settings, catalog=MovieCatalog.from_dataset(catalog_dataset)), raise_server_exceptions=False)
        clients.append(client.__enter__())
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def recs(client: TestClient, **body):
    response = client.post("/v1/recommendations", json=body)
    assert response.status_code < 500, response.text
    return response


def metric(client: TestClient, name: str, **labels) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def event(user_id: int, movie_id: int, kind: str, **extra) -> dict:
    return {"event_id": f"test-{uuid.uuid4().hex}", "user_id": user_id, "movie_id": movie_id, "kind": kind, **extra}


# --- the main flows ----------------------------------------------------------------------------


def test_known_user_gets_policy_order_with_explanations(make_gateway, services, catalog_dataset, redis_db):
    gw = make_gateway()
    services["policy_calls"].clear()
    response = gw.post("/v1/recommendations", json={"user_id": 1, "k": 5}, headers={"X-Request-ID": "req-known-user-1"})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "req-known-user-1"
    body = response.json()
    assert body["policy_version"] == "test-reverse" and body["model_version"] == "v1"
    assert not body["degraded"] and not body["cached"] and len(body["items"]) == 5
    # the policy saw the ranker's candidates and the request id the client sent
    rid, sent = services["policy_calls"][-1]
    assert rid == "req-known-user-1" and sent.user_id == 1 and len(sent.candidates) == 100
    assert [i["movie_id"] for i in body["items"]] == [c.movie_id for c in reversed(sent.candidates)][:5]
    assert all(i["propensity"] == 0.5 for i in body["items"])
    rated = set(catalog_dataset.ratings.loc[catalog_dataset.ratings["user_id"] == 1, "movie_id"])
    for item in body["items"]:
        assert item["movie_id"] not in rated
        why = item["explanation"]
        assert why["modalities"] and why["because_you_liked"]
        assert why["because_you_liked"]["movie_id"] in rated and why["because_you_liked"]["movie_id"] != item["movie_id"]
        assert why["text"].startswith("Because you liked " + why["because_you_liked"]["title"])
    again = recs(gw, user_id=1, k=5).json()
    assert again["cached"] and [i["movie_id"] for i in again["items"]] == [i["movie_id"] for i in body["items"]]
    assert metric(gw, "movierec_gateway_cache_requests_total", result="hit") == 1
    # the policy's decision is logged as it was made, under the id the answer carries (a hit serves it again)
    assert again["decision_id"] == body["decision_id"] and len(body["decision_id"]) == 32
    (entry_id, fields), = redis_db.xrange(get_settings().decision_log_key)
    logged = ServedDecision.model_validate_json(fields["d"])
    assert logged.decision_id == body["decision_id"] and logged.user_id == 1 and logged.policy_version == "test-reverse"
    assert logged.candidates == [c.movie_id for c in sent.candidates] and logged.scores == [c.score for c in sent.candidates]
    assert logged.recent_movie_ids == sent.recent_movie_ids and logged.session_step == sent.session_step
    assert logged.slate == [i["movie_id"] for i in body["items"]] and logged.propensities == [0.5] * 5


def test_new_user_from_liked_movies(make_gateway, services, served_dim):
    gw = make_gateway()
    services["policy_calls"].clear()
    body = recs(gw, liked_movie_ids=[1, 3114, 2355], k=8).json()
    assert len(body["items"]) == 8 and body["user_id"] is None and not body["degraded"]
    assert body["decision_id"] is None  # only known users' decisions are logged: the policy cannot rebuild a folded-in user
    assert not {1, 3114, 2355} & {i["movie_id"] for i in body["items"]}
    _, sent = services["policy_calls"][-1]
    assert sent.user_id is None and sent.user_vector and len(sent.user_vector) == served_dim
    assert all(i["explanation"]["because_you_liked"]["movie_id"] in {1, 3114, 2355} for i in body["items"])


def test_filters_are_honoured(make_gateway, catalog_dataset):
    gw = make_gateway()
    filters = {"genres_include": ["Comedy"], "genres_exclude": ["Romance"], "year_min": 1990, "year_max": 1999, "min_avg_rating": 3.5}
    items = recs(gw, user_id=7, k=30, filters=filters).json()["items"]
    assert len(items) == 30
    cat = catalog_dataset.catalog
    means = catalog_dataset.ratings.groupby("movie_id")["rating"].mean()
    for item in items:
        row = cat.loc[item["movie_id"]]
        assert "Comedy" in row["genres"] and "Romance" not in row["genres"]
        assert 1990 <= row["year"] <= 1999 and means[item["movie_id"]] >= 3.5


def test_not_found_and_invalid_input_name_the_culprit(make_gateway):
    gw = make_gateway()
    cases = [
        ({"user_id": 999999}, 404, "user 999999"),
        ({"liked_movie_ids": [1, 424242]}, 404, "424242"),
        ({"user_id": 1, "k": 0}, 422, "k"),
        ({"user_id": 1, "k": 101}, 422, "k"),
        ({"user_id": 1, "filters": {"genres_include": ["Cartoons"]}}, 422, "filters.genres_include"),
        ({"user_id": 1, "filters": {"year_min": 2000, "year_max": 1990}}, 422, "filters.year_max"),
        ({"user_id": 1, "filters": {"min_avg_rating": 9}}, 422, "filters.min_avg_rating"),
        ({"user_id": 1, "liked_movie_ids": [1]}, 422, "liked_movie_ids"),
        ({}, 422, "liked_movie_ids"),
        ({"user_id": "one"}, 422, "user_id"),
    ]
    for body, status, named in cases:
        response = gw.post("/v1/recommendations", json=body)
        assert response.status_code == status, (body, response.text)
        assert named in response.json()["error"]["message"], (body, response.text)
    assert gw.get("/v1/movies/424242").status_code == 404
    assert "movie 424242" in gw.get("/v1/movies/424242").json()["error"]["message"]
    assert gw.get("/v1/users/999999").status_code == 404
    assert gw.get("/v1/movies", params={"q": ""}).status_code == 422


def test_movies_search_and_users(make_gateway):
    gw = make_gateway()
    found = gw.get("/v1/movies", params={"q": "toy story"}).json()["items"]
    assert found[0]["movie_id"] == 1 and all("toy story" in m["title"].lower() for m in found)
    movie = gw.get("/v1/movies/1").json()
    assert movie["title"] == "Toy Story (1995)" and movie["year"] == 1995 and "Animation" in movie["genres"]
    assert movie["average_rating"] and movie["rating_count"] > 100
    user = gw.get("/v1/users/1").json()
    assert user["rating_count"] > 100 and len(user["liked"]) == 10
    assert "Comedy" in gw.get("/v1/genres").json()


def test_recommendations_are_rate_limited_per_client(make_gateway, monkeypatch):
    """The route checks its limit itself (with its cache read): a cache hit and a new user's list
    are refused with 429 once the client's bucket is empty."""
    from movierec.security import get_security_settings

    monkeypatch.setenv("MOVIEREC_RATE_LIMIT_PER_S", "0.01")
    monkeypatch.setenv("MOVIEREC_RATE_LIMIT_BURST", "3")
    get_security_settings.cache_clear()
    try:
        gw = make_gateway()
        statuses = [gw.post("/v1/recommendations", json={"user_id": 21, "k": 3}).status_code for _ in range(4)]
        refused = gw.post("/v1/recommendations", json={"liked_movie_ids": [1], "k": 3})
    finally:
        get_security_settings.cache_clear()
    assert statuses == [200, 200, 200, 429]
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) >= 1
    assert metric(gw, "movierec_access_refusals_total", code="rate_limited") == 2


def test_a_cached_list_is_still_read_only_with_a_credential_when_reads_are_keyed(make_gateway, monkeypatch):
    """The cache-hit shortcut answers before the route's access check: it must refuse just the same."""
    from movierec.security import Authenticator, get_security_settings

    monkeypatch.setenv("MOVIEREC_READ_ACCESS", "keyed")
    get_security_settings.cache_clear()
    try:
        gw = make_gateway()
        key = {"X-API-Key": Authenticator(get_security_settings()).api_key_for(23)}
        first = gw.post("/v1/recommendations", json={"user_id": 23, "k": 3}, headers=key)
        again = gw.post("/v1/recommendations", json={"user_id": 23, "k": 3}, headers=key)
        anonymous = gw.post("/v1/recommendations", json={"user_id": 23, "k": 3})
        forged = gw.post("/v1/recommendations", json={"user_id": 23, "k": 3}, headers={"X-API-Key": key["X-API-Key"][:-2] + "xx"})
    finally:
        get_security_settings.cache_clear()
    assert first.status_code == 200 and not first.json()["cached"]
    assert again.status_code == 200 and again.json()["cached"] and again.json()["items"] == first.json()["items"]
    assert again.headers["content-type"] == "application/json" and again.headers["x-request-id"]
    assert anonymous.status_code == 401 and forged.status_code == 401
    assert metric(gw, "movierec_gateway_recommendations_total", source="cache") == 1
    assert metric(gw, "http_requests_total", route="/v1/recommendations", status="200") == 2


# --- feedback and user data ------------------------------------------------------------------


def test_feedback_stored_once_and_the_list_changes(make_gateway):
    gw = make_gateway()
    first = recs(gw, user_id=2, k=6).json()
    top = first["items"][0]["movie_id"]
    e = event(2, top, "rating", rating=4.5, slate=[i["movie_id"] for i in first["items"]], position=0, propensity=0.5, policy_version=first["policy_version"])
    stored = gw.post("/v1/feedback", json=e)
    assert stored.status_code == 201, stored.text
    assert gw.post("/v1/feedback", json=e).status_code == 200  # the retry is not stored twice
    after = recs(gw, user_id=2, k=6).json()
    assert not after["cached"]
    assert top not in [i["movie_id"] for i in after["items"]]  # rated now: no longer recommended
    assert gw.post("/v1/feedback", json=event(2, 424242, "click")).status_code == 404
    bad = gw.post("/v1/feedback", json=event(2, top, "rating", rating=7))
    assert bad.status_code == 422 and "rating" in bad.json()["error"]["message"]


def test_delete_user_removes_events_and_cached_lists(make_gateway, redis_db, services):
    import httpx

    gw = make_gateway()
    recs(gw, user_id=3, k=4)
    recs(gw, user_id=9, k=4)
    assert redis_db.keys("recs:3:*") and redis_db.keys("recs_stale:3:*")
    assert gw.post("/v1/feedback", json=event(3, 1, "click")).status_code == 201
    deleted = gw.delete("/v1/users/3")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted_events"] >= 1 and deleted.json()["deleted_cache_entries"] >= 1  # the stale copy (the event dropped the fresh one)
    assert not redis_db.keys("recs:3:*") and not redis_db.keys("recs_stale:3:*")
    assert deleted.json()["deleted_decisions"] == 1  # user 3's logged decision; user 9's stays
    assert [ServedDecision.model_validate_json(f["d"]).user_id for _, f in redis_db.xrange(get_settings().decision_log_key)] == [9]
    left = httpx.get(f"{services['feedback']}/v1/users/3/events").json()["events"]
    assert left == []


# --- degrade, don't fail -------------------------------------------------------------------------


def test_policy_down_or_slow_serves_ranker_order(make_gateway, services, down_url):
    reference = recs(make_gateway(), user_id=4, k=5, filters={"genres_include": ["Drama"]}).json()
    for user_id, policy_url in ((5, down_url), (12, services["slow_policy"])):
        gw = make_gateway(policy_url=policy_url, policy_timeout_s=0.3)
        body = recs(gw, user_id=user_id, k=5).json()
        assert body["policy_version"] == "ranker-order" and not body["degraded"]
        scores = [i["score"] for i in body["items"]]
        assert len(scores) == 5 and scores == sorted(scores, reverse=True)  # the ranker's own order
        assert metric(gw, "movierec_gateway_fallbacks_total", reason="policy_unavailable") == 1
    assert reference["policy_version"] == "test-reverse"


def test_ranker_down_serves_last_list_then_popular_with_zero_5xx(make_gateway, redis_db, down_url):
    up = make_gateway()
    fresh = recs(up, user_id=6, k=5).json()
    redis_db.delete(*redis_db.keys("recs:6:*"))  # as after a feedback event: the fresh entry is gone
    down = make_gateway(ranker_urls=down_url)
    stale = recs(down, user_id=6, k=5).json()
    assert stale["degraded"] and "last list" in stale["degraded_reason"]
    assert fresh["decision_id"] and stale["decision_id"] is None  # not the decision made then: feedback is not credited to it
    assert [i["movie_id"] for i in stale["items"]] == [i["movie_id"] for i in fresh["items"]]
    popular = recs(down, user_id=8, k=5, filters={"genres_include": ["Horror"]}).json()
    assert popular["degraded"] and popular["policy_version"] == "popular" and len(popular["items"]) == 5
    assert all("Horror" in i["genres"] for i in popular["items"])
    newbie = recs(down, liked_movie_ids=[1], k=5).json()
    assert newbie["degraded"] and 1 not in [i["movie_id"] for i in newbie["items"]]
    assert metric(down, "movierec_gateway_fallbacks_total", reason="ranker_unavailable_stale") == 1
    assert metric(down, "movierec_gateway_fallbacks_total", reason="ranker_unavailable_popular") == 2
    statuses = [down.post("/v1/recommendations", json={"user_id": u, "k": 3}).status_code for u in range(10, 30)]
    assert statuses == [200] * 20


def test_load_spread_over_rankers_and_a_dead_replica_is_skipped(make_gateway, services, down_url):
    gw = make_gateway(ranker_urls=f"{down_url},{services['ranker']}")
    bodies = [recs(gw, user_id=u, k=3).json() for u in range(40, 46)]
    assert all(not b["degraded"] and b["model_version"] == "v1" for b in bodies)


def test_redis_down_still_serves_uncached(make_gateway, down_url):
    gw = make_gateway(redis_url=down_url.replace("http://", "redis://"))
    first, second = recs(gw, user_id=9, k=4).json(), recs(gw, user_id=9, k=4).json()
    assert not first["degraded"] and not second["cached"]
    assert metric(gw, "movierec_gateway_cache_requests_total", result="error") == 2


def test_feedback_down_is_a_clear_503_not_a_500(make_gateway, down_url):
    gw = make_gateway(feedback_url=down_url)
    response = gw.post("/v1/feedback", json=event(1, 1, "click"))
    assert response.status_code == 503 and response.json()["error"]["code"] == "feedback_unavailable"
    assert recs(gw, user_id=11, k=3).status_code == 200  # recommendations without the event history


# --- admin: a new movie without a restart --------------------------------------------------------


def test_admin_adds_a_movie_that_is_recommended_at_once(make_gateway, services):
    gw = make_gateway(admin_api_key="s3cret-admin-key")
    form = {"title": "Brand New Space Movie (2026)", "year": "2026", "genres": "Sci-Fi|Adventure", "tags": "space,robots", "plot": "Robots in space."}
    assert gw.post("/v1/admin/movies", data=form).status_code == 401
    assert gw.post("/v1/admin/movies", data=form, headers={"X-API-Key": "wrong"}).status_code == 401  # a wrong key is not a credential (movierec.security)
    added = gw.post("/v1/admin/movies", data=form, headers={"X-API-Key": "s3cret-admin-key"})
    assert added.status_code == 201, added.text
    body = added.json()
    movie_id = body["movie"]["movie_id"]
    assert movie_id > 193609 and body["modalities"] == {"text": 16} and body["rankers_updated"] == 1
    assert set(body["attention"]) == {"text"}
    assert services["extracted"][-1]["title"] == form["title"]
    assert gw.get(f"/v1/movies/{movie_id}").json()["title"] == form["title"]
    listed = recs(gw, user_id=1, k=5, filters={"year_min": 2026}).json()
    assert [i["movie_id"] for i in listed["items"]] == [movie_id]
    assert listed["items"][0]["explanation"]["modalities"][0]["name"] == "text"
    missing_title = gw.post("/v1/admin/movies", data={"year": "2026"}, headers={"X-API-Key": "s3cret-admin-key"})
    assert missing_title.status_code == 422 and "title" in missing_title.json()["error"]["message"]


def test_posters_and_the_page_are_served(make_gateway, catalog_dataset):
    import os

    from movierec.settings import REPO_ROOT, get_settings

    posters = Path(os.environ.get("MOVIEREC_SHARED_DIR") or REPO_ROOT.parent / "shared") / "data" / "posters"
    if not posters.is_dir():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{posters} is missing")
        pytest.skip(f"{posters} is missing (set MOVIEREC_SHARED_DIR)")
    gw = make_gateway(poster_dir=posters)
    poster = gw.get("/v1/movies/1/poster")
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg" and poster.content[:2] == b"\xff\xd8"
    assert gw.get("/v1/movies/1").json()["poster_url"] == "/v1/movies/1/poster"
    items = recs(gw, user_id=1, k=10).json()["items"]
    assert sum(i["poster_url"] is not None for i in items) >= 8
    have = {int(p.stem) for p in posters.glob("*.jpg")}
    missing = next(int(m) for m in catalog_dataset.catalog.index if int(m) not in have)
    assert gw.get(f"/v1/movies/{missing}/poster").status_code == 404
    page = gw.get("/")
    assert page.status_code == 200 and "<title>movierec</title>" in page.text
    assert gw.get("/static/app.js").status_code == 200
