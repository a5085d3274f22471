"""Feedback storage against the real PostgreSQL: exactly once, commit order, deletion."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import inspect

from movierec.contracts.feedback import FeedbackEvent
from movierec.storage import EventConflict, FeedbackStore, create_engine_for, migrate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(database_url: str) -> FeedbackStore:
    engine = create_engine_for(database_url)
    yield FeedbackStore(engine)
    engine.dispose()


def _event(user_id: int = 1, movie_id: int = 10, **extra) -> FeedbackEvent:
    return FeedbackEvent(event_id=f"ev-{uuid.uuid4().hex}", user_id=user_id, movie_id=movie_id, kind="click", **extra)


def test_migration_is_idempotent_and_creates_the_table(database_url: str):
    migrate(database_url)  # second run: nothing to do, no error
    engine = create_engine_for(database_url)
    columns = {c["name"] for c in inspect(engine).get_columns("feedback_events")}
    engine.dispose()
    assert {"seq", "event_id", "user_id", "movie_id", "kind", "slate", "occurred_at", "received_at"} <= columns


def test_a_repeated_event_is_stored_once(store: FeedbackStore):
    event = _event(user_id=101, slate=[10, 11, 12], position=0, propensity=0.5)
    first, created_first = store.record(event)
    again, created_again = store.record(event.model_copy(update={"occurred_at": event.occurred_at.replace(year=2020)}))
    assert created_first and not created_again
    assert again.seq == first.seq and again.slate == [10, 11, 12]
    assert store.count(user_id=101) == 1


def test_concurrent_duplicates_are_stored_once(store: FeedbackStore):
    events = [_event(user_id=102, movie_id=m) for m in range(1, 21)]
    attempts = [e for e in events for _ in range(4)]  # every event sent four times, interleaved
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(store.record, attempts))
    created = [r for r in results if r[1]]
    assert len(created) == len(events)
    assert store.count(user_id=102) == len(events)
    assert len({r[0].seq for r in results}) == len(events)


def test_same_id_with_different_content_is_a_conflict(store: FeedbackStore):
    event = _event(user_id=103)
    store.record(event)
    with pytest.raises(EventConflict, match="movie_id"):
        store.record(event.model_copy(update={"movie_id": 999}))
    assert store.get(event.event_id).movie_id == event.movie_id


def test_events_since_reads_on_in_order_without_gaps(store: FeedbackStore):
    start = store.last_seq()
    written = [store.record(_event(user_id=104, movie_id=m))[0] for m in range(1, 8)]
    page1 = store.events_since(start, limit=4)
    page2 = store.events_since(page1[-1].seq, limit=100)
    read = page1 + page2
    assert [e.event_id for e in read] == [e.event_id for e in written]
    assert all(a.seq < b.seq for a, b in zip(read, read[1:]))


def test_delete_user_removes_only_that_users_events(store: FeedbackStore):
    for m in range(1, 4):
        store.record(_event(user_id=105, movie_id=m))
    kept = store.record(_event(user_id=106))[0]
    assert store.delete_user(105) == 3
    assert store.count(user_id=105) == 0
    assert store.events_for_user(105) == []
    assert store.get(kept.event_id) is not None
    assert store.delete_user(105) == 0


def test_events_for_user_are_newest_first_and_page_back(store: FeedbackStore):
    written = [store.record(_event(user_id=107, movie_id=m))[0] for m in range(1, 6)]
    newest = store.events_for_user(107, limit=2)
    assert [e.movie_id for e in newest] == [5, 4]
    older = store.events_for_user(107, limit=10, before_seq=newest[-1].seq)
    assert [e.movie_id for e in older] == [3, 2, 1]
    assert written[0].seq == older[-1].seq


def test_migrations_match_the_table_definitions(database_url: str):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from movierec.storage.tables import Base

    engine = create_engine_for(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], f"tables.py and the migrations disagree: {diff}"
