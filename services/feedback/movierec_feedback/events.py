"""What happens after an event is stored: cache invalidation and the retraining trigger.

Both go through Celery on Redis. A Redis outage must not lose the event (it is already in
PostgreSQL) nor fail or slow the request: they run on a small thread pool after the answer, a
failure is logged and counted, and the cache entry expires on its own.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import redis
from celery import Celery
from prometheus_client import CollectorRegistry, Counter

from movierec.contracts.feedback import FeedbackEvent
from movierec.tasks.app import RETRAIN_TASK, policy_tasks_present
from movierec.tasks.feedback import STORE_EVENT_TASK

log = logging.getLogger(__name__)

INVALIDATE_TASK = "movierec.tasks.cache.invalidate_user_recs"
RETRAIN_COUNTER_KEY = "feedback:events_total"


class EventFollowUps:
    def __init__(self, celery: Celery, redis_client: redis.Redis, registry: CollectorRegistry, *,
                 retrain_after_events: int, refresh_cache: bool, timeout_s: float, expires_s: float | None = None):
        self.celery = celery
        self.redis = redis_client
        self.retrain_after_events = retrain_after_events
        self.refresh_cache = refresh_cache
        self.timeout_s = timeout_s
        self.expires_s = expires_s
        """Invalidations and retraining requests not started within this are dropped unrun
        (``FeedbackSettings.follow_up_expires_s``); buffered events never expire."""
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="feedback-follow-up")
        self.enqueued = Counter("feedback_tasks_enqueued_total", "Celery tasks sent by the feedback service",
                                ["task", "outcome"], registry=registry)

    def _send(self, name: str, args: list, expires_s: float | None = None) -> bool:
        short = name.rsplit(".", 1)[-1]
        try:
            self.celery.send_task(name, args=args, expires=expires_s, retry=True,
                                  retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": self.timeout_s})
        except Exception:  # noqa: BLE001 - any broker failure: the event is stored, keep serving
            log.exception("could not enqueue %s", short)
            self.enqueued.labels(short, "failed").inc()
            return False
        self.enqueued.labels(short, "sent").inc()
        return True

    def after_answer(self, fn: Callable[[int], object], user_id: int) -> None:
        """Run ``fn(user_id)`` off the request path (exceptions are logged, never raised)."""
        def run() -> None:
            try:
                fn(user_id)
            except Exception:  # noqa: BLE001
                log.exception("follow-up of user %s failed", user_id)

        self._pool.submit(run)

    def buffer(self, event: FeedbackEvent) -> bool:
        """Queue ``event`` for a worker to store once the database is back; False if Redis is down too."""
        return self._send(STORE_EVENT_TASK, [event.model_dump(mode="json")])

    def user_changed(self, user_id: int) -> bool:
        """Invalidate ``user_id``'s cached recommendation lists."""
        return self._send(INVALIDATE_TASK, [user_id, self.refresh_cache], self.expires_s)

    def event_stored(self, user_id: int) -> None:
        """Invalidate the user's cache and count the event toward the next retraining."""
        self.user_changed(user_id)
        if self.retrain_after_events <= 0 or not policy_tasks_present():
            return
        try:
            total = self.redis.incr(RETRAIN_COUNTER_KEY)
        except redis.RedisError:
            log.warning("could not count the event toward retraining (Redis unavailable)")
            return
        if total % self.retrain_after_events == 0:  # one request crosses each multiple: no double trigger
            self._send(RETRAIN_TASK, [], self.expires_s)
