"""The feedback service on the real PostgreSQL and Redis, with a real Celery worker."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone

import pytest
import redis
from fastapi.testclient import TestClient

from movierec_feedback.app import create_app
from movierec_feedback.settings import FeedbackSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(database_url: str, redis_url: str) -> TestClient:
    app = create_app(FeedbackSettings(database_url=database_url, redis_url=redis_url, retrain_after_events=0))
    with TestClient(app) as c:
        yield c


def _event(user_id: int, movie_id: int = 1, kind: str = "click", **extra) -> dict:
    return {"event_id": f"t-{uuid.uuid4().hex}", "user_id": user_id, "movie_id": movie_id, "kind": kind, **extra}


def test_first_post_creates_and_a_repeat_returns_the_stored_event(client: TestClient):
    body = _event(201, 7, "rating", rating=4.5, decision_id=uuid.uuid4().hex)
    first = client.post("/v1/events", json=body)
    again = client.post("/v1/events", json=body)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["seq"] == first.json()["seq"]
    events = client.get("/v1/users/201/events").json()["events"]
    assert [e["event_id"] for e in events] == [body["event_id"]] and events[0]["decision_id"] == body["decision_id"]


def test_a_reused_event_id_with_other_content_is_409(client: TestClient):
    body = _event(202, 7)
    assert client.post("/v1/events", json=body).status_code == 201
    response = client.post("/v1/events", json={**body, "movie_id": 8})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "event_id_conflict"
    assert "movie_id" in response.json()["error"]["message"]


@pytest.mark.parametrize("field,value", [("rating", 7), ("watch_seconds", -3), ("user_id", 0), ("kind", "like"), ("event_id", "short"),
                                         ("decision_id", "not-a-decision")])
def test_bad_fields_are_422_naming_the_field(client: TestClient, field: str, value):
    response = client.post("/v1/events", json={**_event(203), field: value})
    assert response.status_code == 422
    assert field in response.json()["error"]["message"]
    assert client.get("/v1/users/203/events").json()["events"] == []


def test_events_page_reads_on_from_a_sequence_number(client: TestClient):
    start = client.get("/v1/events", params={"since_seq": 0, "limit": 10_000}).json()["last_seq"]
    ids = [client.post("/v1/events", json=_event(204, m)).json()["event_id"] for m in range(1, 4)]
    page = client.get("/v1/events", params={"since_seq": start}).json()
    assert [e["event_id"] for e in page["events"]] == ids
    assert page["last_seq"] == page["events"][-1]["seq"]


def test_delete_user_removes_their_events(client: TestClient):
    for m in range(1, 4):
        client.post("/v1/events", json=_event(205, m))
    response = client.delete("/v1/users/205")
    assert response.status_code == 200 and response.json() == {"user_id": 205, "deleted_events": 3}
    assert client.get("/v1/users/205/events").json()["events"] == []
    assert client.delete("/v1/users/0").status_code == 422


def _metrics_when(client: TestClient, *wanted: str, timeout_s: float = 20) -> str:
    """/metrics once it shows every wanted line (follow-ups run just after the answer)."""
    deadline = time.monotonic() + timeout_s
    while True:
        metrics = client.get("/metrics").text
        if all(w in metrics for w in wanted) or time.monotonic() > deadline:
            return metrics
        time.sleep(0.1)


def test_ready_and_metrics(client: TestClient):
    assert client.get("/readyz").json()["status"] == "ready"
    client.post("/v1/events", json=_event(206))
    sent = 'feedback_tasks_enqueued_total{outcome="sent",task="invalidate_user_recs"}'
    metrics = _metrics_when(client, sent)
    assert 'feedback_events_total{kind="click",outcome="created"}' in metrics
    assert sent in metrics


def test_sequence_numbers_past_bigint_are_422(client: TestClient):
    for path, param in (("/v1/events", "since_seq"), ("/v1/users/1/events", "before_seq")):
        response = client.get(path, params={param: 2**63})
        assert response.status_code == 422 and param in response.json()["error"]["message"]


@pytest.mark.slow
def test_a_stored_event_invalidates_the_users_cache_through_the_worker(client: TestClient, worker, redis_url: str):
    cache = redis.Redis.from_url(redis_url)
    cache.set("recs:207:default", "[1,2]")
    cache.set("recs:208:default", "[3]")
    assert client.post("/v1/events", json=_event(207)).status_code == 201
    deadline = time.monotonic() + 60
    while cache.exists("recs:207:default") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not cache.exists("recs:207:default")
    assert cache.exists("recs:208:default")



@pytest.mark.slow
def test_while_the_database_is_down_events_are_queued_and_stored_once_when_it_is_back(private_tmp, private_redis_url: str, worker_factory):
    tmp_path = private_tmp
    """A real PostgreSQL (embedded) stopped and started again: every acknowledged event is stored once."""
    from movierec.launcher.servers import EmbeddedPostgres
    from movierec.storage import FeedbackStore, create_engine_for

    postgres = EmbeddedPostgres(tmp_path / "postgres")
    url = postgres.start()
    try:
        redis_url = private_redis_url
        app = create_app(FeedbackSettings(database_url=url, redis_url=redis_url, retrain_after_events=0))
        with TestClient(app) as client, worker_factory(redis_url, url, tmp_path / "worker.log"):
            before = [_event(301, m) for m in range(1, 4)]
            assert [client.post("/v1/events", json=e).status_code for e in before] == [201] * 3
            postgres.stop()
            assert client.get("/readyz").status_code == 503
            during = [_event(301, m) for m in range(4, 10)]
            answers = [client.post("/v1/events", json=e) for e in during]
            assert [a.status_code for a in answers] == [202] * len(during)
            assert answers[0].json() == {"event_id": during[0]["event_id"], "status": "queued"}
            retried = client.post("/v1/events", json=during[0])  # a client retry while still down
            assert retried.status_code == 202
            url = postgres.start()
            store = FeedbackStore(create_engine_for(url))
            deadline = time.monotonic() + 90
            while store.count(user_id=301) < len(before) + len(during) and time.monotonic() < deadline:
                time.sleep(0.5)
            stored = store.events_for_user(301, limit=100)
            assert sorted(e.event_id for e in stored) == sorted(e["event_id"] for e in before + during)
            assert client.post("/v1/events", json=during[0]).status_code == 200
            store.engine.dispose()
    finally:
        postgres.stop()


def test_every_nth_new_event_triggers_policy_retraining(database_url: str, private_redis_url: str):
    app = create_app(FeedbackSettings(database_url=database_url, redis_url=private_redis_url, retrain_after_events=2))
    with TestClient(app) as client:
        events = [_event(401, m) for m in range(1, 6)]
        for body in events:
            assert client.post("/v1/events", json=body).status_code == 201
        assert client.post("/v1/events", json=events[0]).status_code == 200  # a repeat does not count
        retrain = 'feedback_tasks_enqueued_total{outcome="sent",task="retrain_policy"} 2.0'
        invalidate = 'feedback_tasks_enqueued_total{outcome="sent",task="invalidate_user_recs"} 5.0'
        metrics = _metrics_when(client, retrain, invalidate)
    assert retrain in metrics and invalidate in metrics
    queued = redis.Redis.from_url(private_redis_url).lrange("celery", 0, -1)
    assert sum(b"retrain_policy" in message for message in queued) == 2
    # no worker runs them here: each is dropped unrun if none starts it within follow_up_expires_s
    for message in queued:
        expires = datetime.fromisoformat(json.loads(message)["headers"]["expires"])
        assert 0 < (expires - datetime.now(timezone.utc)).total_seconds() <= FeedbackSettings().follow_up_expires_s


def test_without_redis_events_are_still_stored_and_the_failed_enqueue_is_counted(database_url: str):
    app = create_app(FeedbackSettings(database_url=database_url, redis_url="redis://127.0.0.1:1/0", retrain_after_events=0))
    with TestClient(app) as client:
        body = _event(501)
        assert client.post("/v1/events", json=body).status_code == 201
        assert client.get("/readyz").status_code == 503
        failed = 'feedback_tasks_enqueued_total{outcome="failed",task="invalidate_user_recs"} 1.0'
        assert failed in _metrics_when(client, failed, timeout_s=60)
        assert [e["event_id"] for e in client.get("/v1/users/501/events").json()["events"]] == [body["event_id"]]
