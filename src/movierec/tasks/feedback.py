"""Durable buffering of feedback while PostgreSQL is unavailable.

The feedback service stores events directly; when the database is down it hands the event to
``store_event`` instead and answers 202. The message waits in Redis (late ack: a worker that
dies mid-task leaves it queued) and is retried with backoff until the database is back. The
store is idempotent on ``event_id``, so a retry after a lost acknowledgement never writes twice.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from celery import shared_task
from sqlalchemy.exc import OperationalError

from movierec.contracts.feedback import FeedbackEvent
from movierec.settings import get_settings
from movierec.storage import EventConflict, FeedbackStore, create_engine_for

log = logging.getLogger(__name__)

STORE_EVENT_TASK = "movierec.tasks.feedback.store_event"


@lru_cache(maxsize=1)
def _store() -> FeedbackStore:
    url = get_settings().database_url
    if not url:
        raise RuntimeError("set MOVIEREC_DATABASE_URL for the worker to store buffered feedback")
    return FeedbackStore(create_engine_for(url, pool_size=2))


@shared_task(
    name=STORE_EVENT_TASK, bind=True,
    autoretry_for=(OperationalError,), retry_backoff=1, retry_backoff_max=30, retry_jitter=True, max_retries=None,
)
def store_event(self, event: dict) -> dict:
    """Store one buffered event (idempotent); returns its ``seq`` and whether this call created it."""
    parsed = FeedbackEvent.model_validate(event)
    try:
        stored, created = _store().record(parsed)
    except EventConflict as exc:  # a different event got the id first: nothing to store, nothing to retry
        log.warning("buffered event dropped: %s", exc)
        return {"event_id": parsed.event_id, "conflict": True}
    if created:
        from movierec.tasks.app import celery_app

        celery_app.send_task("movierec.tasks.cache.invalidate_user_recs", args=[parsed.user_id, False])
    return {"event_id": parsed.event_id, "seq": stored.seq, "created": created}
