"""The Celery app: Redis as broker and result backend, late acks and retries.

Late acks with ``task_reject_on_worker_lost``: a task whose worker dies mid-run goes back to the
queue and runs again, so every task here must be idempotent. When only the pool process dies,
the worker puts the message back at once; when the whole worker dies, Redis' visibility timeout
bounds how long its message stays invisible, and a living worker's periodic sweep hands it out
again (``broker_transport_options``).
"""

from __future__ import annotations

import importlib.util
from datetime import timedelta

from celery import Celery

from movierec.settings import get_settings
from movierec.tasks import metrics as _worker_metrics  # noqa: F401  (connects the worker's signal handlers)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
"""Used only when ``MOVIEREC_REDIS_URL`` is unset; the launcher and compose always set it."""

CACHE_TASKS = "movierec.tasks.cache"
FEEDBACK_TASKS = "movierec.tasks.feedback"
POLICY_TASKS = "movierec.tasks.policy"
RETRAIN_TASK = "movierec.tasks.policy.retrain_policy"
"""Name the policy module registers its retraining task under; beat runs it on a schedule."""


def policy_tasks_present() -> bool:
    return importlib.util.find_spec(POLICY_TASKS) is not None


def broker_transport_options(visibility_timeout_s: float) -> dict:
    """Redis transport options: the visibility timeout and a sweep for dead workers' messages
    every fifth of it (at most every 100 s, kombu's default), so a message comes back within
    about 1.2 visibility timeouts rather than up to 100 s after it.

    A sweep holds a lock in Redis while it runs (milliseconds); kombu lets the lock of a worker
    killed mid-sweep stand for 300 s, and no worker sweeps until it expires. Here it expires after
    one sweep period (at least 5 s): a second sweeper inside a slow one's window is harmless, since
    each message is put back in a transaction that only the first one wins."""
    period = min(100.0, max(1.0, visibility_timeout_s / 5))
    interval = min(10.0, period)
    return {"visibility_timeout": visibility_timeout_s, "unacked_restore_interval": interval,
            "unacked_restore_throttle": max(1, round(period / interval)), "unacked_mutex_expire": max(5, round(period))}


def make_celery(redis_url: str | None = None, *, retrain_every_s: float | None = None) -> Celery:
    """A Celery app on ``redis_url`` (default: the core settings' ``redis_url``)."""
    settings = get_settings()
    url = redis_url or settings.redis_url or DEFAULT_REDIS_URL
    include = [CACHE_TASKS, FEEDBACK_TASKS] + ([POLICY_TASKS] if policy_tasks_present() else [])
    app = Celery("movierec", broker=url, backend=url, include=include)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_retry_delay=2,
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options=broker_transport_options(settings.celery_visibility_timeout_s),
        result_backend_transport_options={"retry_policy": {"timeout": 5.0}},
        worker_hijack_root_logger=False,
        timezone="UTC",
    )
    every = retrain_every_s if retrain_every_s is not None else settings.retrain_every_s
    if policy_tasks_present() and every > 0:
        app.conf.beat_schedule = {
            "retrain-policy": {"task": RETRAIN_TASK, "schedule": timedelta(seconds=every)},
        }
    return app


celery_app = make_celery()
app = celery_app  # ``celery -A movierec.tasks.app`` finds ``app``
