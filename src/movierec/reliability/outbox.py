"""A durable buffer for feedback events while PostgreSQL is away: a Redis stream.

The feedback service stores an event in PostgreSQL directly. When the database is unreachable it
appends the event to the stream instead and acknowledges it (202); a drain loop moves buffered
events into PostgreSQL once it is back. Storing is idempotent on ``event_id``, so an event that is
drained twice (two replicas, or a crash between the insert and the stream delete), or that the
client also retried directly, is still stored exactly once.

Redis keeps the stream in its append-only file (the embedded Redis and the compose file turn it
on), so a Redis restart does not lose buffered events either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from movierec.contracts.feedback import FeedbackEvent
from movierec.storage import EventConflict, FeedbackStore

log = logging.getLogger(__name__)

STREAM = "feedback:outbox"
DEAD_LETTERS = "feedback:outbox:dead"
"""Buffered events that can never be stored (their ``event_id`` is taken by a different event)."""


@dataclass
class DrainResult:
    stored: int = 0
    duplicates: int = 0
    dead: int = 0
    left: int = 0
    database_down: bool = False
    created_user_ids: tuple[int, ...] = ()
    """Users with newly stored events (for cache invalidation)."""


class FeedbackOutbox:
    def __init__(self, client: redis.Redis, *, stream: str = STREAM, max_len: int = 1_000_000):
        self.client = client
        self.stream = stream
        self.max_len = max_len

    def buffer(self, event: FeedbackEvent) -> str:
        """Append ``event``; returns its stream id. Raises ``redis.RedisError`` when Redis is down
        too (then the event must not be acknowledged)."""
        entry_id = self.client.xadd(self.stream, {"event": event.model_dump_json()}, maxlen=self.max_len, approximate=True)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def pending(self) -> int:
        return int(self.client.xlen(self.stream))

    def drain(self, store: FeedbackStore, batch: int = 200) -> DrainResult:
        """Store up to ``batch`` buffered events, oldest first, deleting each once stored."""
        result = DrainResult()
        users: set[int] = set()
        for entry_id, fields in self.client.xrange(self.stream, count=batch):
            raw = fields.get(b"event") or fields.get("event")
            try:
                event = FeedbackEvent.model_validate_json(raw)
                _, created = store.record(event)
            except OperationalError:
                result.database_down = True
                break
            except (EventConflict, ValidationError) as exc:
                log.error("buffered event can never be stored, moved to %s: %s", DEAD_LETTERS, exc)
                self.client.xadd(DEAD_LETTERS, {"event": raw, "reason": str(exc)[:500]})
                result.dead += 1
            else:
                if created:
                    result.stored += 1
                    users.add(event.user_id)
                else:
                    result.duplicates += 1
            self.client.xdel(self.stream, entry_id)
        result.left = self.pending()
        result.created_user_ids = tuple(sorted(users))
        return result
