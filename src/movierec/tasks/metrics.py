"""Prometheus metrics of a Celery worker: task outcomes and durations.

Counted from Celery's signals in the worker process (the worker runs a thread pool, so one
registry sees every task) and served on ``worker_metrics_port`` when it is set.
"""

from __future__ import annotations

import logging
import time

from celery import signals
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from movierec.settings import get_settings

log = logging.getLogger(__name__)

registry = CollectorRegistry()
tasks_total = Counter("celery_tasks_total", "Celery tasks by outcome", ["task", "outcome"], registry=registry)
task_seconds = Histogram("celery_task_duration_seconds", "Celery task run time", ["task"], registry=registry,
                         buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600))
_started: dict[str, float] = {}


def _short(task) -> str:
    return getattr(task, "name", str(task)).rsplit(".", 1)[-1]


@signals.worker_init.connect
def _serve_metrics(**_) -> None:
    port = get_settings().worker_metrics_port
    if port:
        start_http_server(port, registry=registry)
        log.info("worker metrics on :%d/metrics", port)


@signals.task_prerun.connect
def _task_started(task_id=None, **_) -> None:
    _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **_) -> None:
    started = _started.pop(task_id, None)
    if started is not None:
        task_seconds.labels(_short(task)).observe(time.perf_counter() - started)
    if state == "SUCCESS":
        tasks_total.labels(_short(task), "succeeded").inc()


@signals.task_failure.connect
def _task_failed(sender=None, **_) -> None:
    tasks_total.labels(_short(sender), "failed").inc()


@signals.task_retry.connect
def _task_retried(sender=None, **_) -> None:
    tasks_total.labels(_short(sender), "retried").inc()
