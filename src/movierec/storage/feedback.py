"""``FeedbackStore``: feedback events in PostgreSQL, each stored exactly once.

Exactly once: ``event_id`` is unique and inserts use ``ON CONFLICT DO NOTHING``, so a retried or
duplicated event returns the row already stored instead of a second one.

Commit order: inserts take a transaction-scoped advisory lock, so ``seq`` values become visible in
increasing order. A consumer that remembers the last ``seq`` it read and asks ``events_since`` never
skips an event that commits later with a smaller number (plain sequences allow that under
concurrency). Feedback volume is small next to what one serialized insert can take.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert

from movierec.contracts.feedback import FeedbackEvent
from movierec.storage.tables import FeedbackEventRow

_INSERT_LOCK_KEY = 0x6D6F7669  # pg_advisory_xact_lock key that serializes event inserts
_COMPARED_FIELDS = ("user_id", "movie_id", "kind", "watch_seconds", "rating", "slate", "position", "propensity", "policy_version", "decision_id")


class StoredFeedbackEvent(FeedbackEvent):
    """A feedback event as stored: the client's event plus its place in the log."""

    seq: int
    received_at: datetime


class EventConflict(Exception):
    """An ``event_id`` that is already stored with different content."""

    def __init__(self, event_id: str, fields: list[str]):
        super().__init__(f"event_id {event_id!r} is already stored with different {', '.join(fields)}")
        self.event_id = event_id
        self.fields = fields


def _to_stored(row: FeedbackEventRow) -> StoredFeedbackEvent:
    return StoredFeedbackEvent(
        event_id=row.event_id, user_id=row.user_id, movie_id=row.movie_id, kind=row.kind,
        watch_seconds=row.watch_seconds, rating=row.rating, slate=list(row.slate or []),
        position=row.position, propensity=row.propensity, policy_version=row.policy_version, decision_id=row.decision_id,
        occurred_at=row.occurred_at, seq=row.seq, received_at=row.received_at,
    )


class FeedbackStore:
    """Feedback events on one engine. Thread-safe (every call uses its own connection)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def record(self, event: FeedbackEvent) -> tuple[StoredFeedbackEvent, bool]:
        """Store ``event`` unless its ``event_id`` is already stored.

        Returns the stored event and whether this call created it. Raises ``EventConflict`` when
        the id is taken by an event with different content (``occurred_at`` is not compared: a
        client that lets it default gets a new timestamp on each retry).
        """
        values = event.model_dump()
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INSERT_LOCK_KEY})
            created = conn.execute(
                insert(FeedbackEventRow).values(**values).on_conflict_do_nothing(index_elements=["event_id"]).returning(FeedbackEventRow.seq)
            ).scalar_one_or_none()
            row = conn.execute(select(FeedbackEventRow).where(FeedbackEventRow.event_id == event.event_id)).one()
        stored = _to_stored(row)
        if created is None:
            different = [f for f in _COMPARED_FIELDS if getattr(stored, f) != getattr(event, f)]
            if different:
                raise EventConflict(event.event_id, different)
        return stored, created is not None

    def get(self, event_id: str) -> StoredFeedbackEvent | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(FeedbackEventRow).where(FeedbackEventRow.event_id == event_id)).one_or_none()
        return _to_stored(row) if row is not None else None

    def events_since(self, seq: int, limit: int = 1000) -> list[StoredFeedbackEvent]:
        """Events with ``seq`` greater than ``seq``, oldest first, at most ``limit``.

        Pass the last returned event's ``seq`` to read on; 0 reads from the start.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(FeedbackEventRow).where(FeedbackEventRow.seq > seq).order_by(FeedbackEventRow.seq).limit(limit)
            ).all()
        return [_to_stored(r) for r in rows]

    def events_for_user(self, user_id: int, limit: int = 100, before_seq: int | None = None) -> list[StoredFeedbackEvent]:
        """One user's events, newest first; ``before_seq`` pages back."""
        query = select(FeedbackEventRow).where(FeedbackEventRow.user_id == user_id)
        if before_seq is not None:
            query = query.where(FeedbackEventRow.seq < before_seq)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(FeedbackEventRow.seq.desc()).limit(limit)).all()
        return [_to_stored(r) for r in rows]

    def delete_user(self, user_id: int) -> int:
        """Delete every event of ``user_id``; returns how many were deleted."""
        with self.engine.begin() as conn:
            return conn.execute(delete(FeedbackEventRow).where(FeedbackEventRow.user_id == user_id)).rowcount

    def count(self, user_id: int | None = None) -> int:
        query = select(func.count()).select_from(FeedbackEventRow)
        if user_id is not None:
            query = query.where(FeedbackEventRow.user_id == user_id)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def last_seq(self) -> int:
        """The highest ``seq`` stored (0 when empty)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(FeedbackEventRow.seq), 0))).scalar_one())

    def identity(self) -> str:
        """Which database this is, as ``name:oid``: another database, or the same name dropped and
        created again, gives another identity (so a remembered ``seq`` from it is not trusted)."""
        with self.engine.connect() as conn:
            name, oid = conn.execute(text("SELECT datname, oid FROM pg_database WHERE datname = current_database()")).one()
        return f"{name}:{oid}"

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
