"""The feedback outbox on real PostgreSQL and Redis: buffered events are stored exactly once,
whatever the duplicates, and wait while the database is down."""

import uuid

import pytest
from sqlalchemy import create_engine

from movierec.contracts.feedback import FeedbackEvent
from movierec.reliability.outbox import FeedbackOutbox
from movierec.storage import FeedbackStore, create_engine_for

pytestmark = pytest.mark.integration


def _event(user_id: int, n: int, **kw) -> FeedbackEvent:
    return FeedbackEvent(event_id=f"outbox-{uuid.uuid4().hex[:8]}-{n}", user_id=user_id, movie_id=1 + n, kind="click", **kw)


def test_drain_stores_each_buffered_event_once(database_url, redis_client):
    store = FeedbackStore(create_engine_for(database_url))
    outbox = FeedbackOutbox(redis_client, stream=f"test-outbox-{uuid.uuid4().hex}")
    user = 500_000 + uuid.uuid4().int % 100_000
    events = [_event(user, n) for n in range(20)]
    store.record(events[0])  # the client retried this one directly once the database was back
    for e in events + events[:5]:  # and five were buffered twice (two replicas)
        outbox.buffer(e)
    assert outbox.pending() == 25
    result = outbox.drain(store, batch=10)
    assert (result.stored, result.left) == (9, 15)
    while outbox.pending():
        outbox.drain(store)
    assert store.count(user_id=user) == 20
    assert {e.event_id for e in store.events_for_user(user, limit=100)} == {e.event_id for e in events}


def test_conflicting_event_goes_to_dead_letters(database_url, redis_client):
    store = FeedbackStore(create_engine_for(database_url))
    outbox = FeedbackOutbox(redis_client, stream=f"test-outbox-{uuid.uuid4().hex}")
    user = 600_000 + uuid.uuid4().int % 100_000
    first = _event(user, 1)
    store.record(first)
    outbox.buffer(first.model_copy(update={"movie_id": 999}))
    result = outbox.drain(store)
    assert (result.stored, result.dead, result.left) == (0, 1, 0)
    assert store.get(first.event_id).movie_id == first.movie_id


def test_events_wait_in_the_buffer_while_the_database_is_down(database_url, redis_client):
    down = FeedbackStore(create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none", connect_args={"connect_timeout": 1}))
    outbox = FeedbackOutbox(redis_client, stream=f"test-outbox-{uuid.uuid4().hex}")
    user = 700_000 + uuid.uuid4().int % 100_000
    for n in range(3):
        outbox.buffer(_event(user, n))
    result = outbox.drain(down)
    assert result.database_down and result.left == 3 and result.stored == 0
    up = FeedbackStore(create_engine_for(database_url))
    assert outbox.drain(up).stored == 3 and up.count(user_id=user) == 3
