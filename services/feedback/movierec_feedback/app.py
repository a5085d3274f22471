"""The feedback service: events into PostgreSQL exactly once, then cache invalidation and
retraining through Celery.

    uvicorn movierec_feedback.app:create_app --factory --port 8003
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import redis
from fastapi import Depends, FastAPI, Path, Query, Request, Response
from prometheus_client import Counter
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError

from movierec.contracts.feedback import FeedbackEvent
from movierec.storage import EventConflict, FeedbackStore, StoredFeedbackEvent, create_engine_for, migrate
from movierec.tasks.app import make_celery
from movierec_feedback.events import EventFollowUps
from movierec_feedback.settings import FeedbackSettings
from movierec_service import ServiceError, create_service_app
from movierec_service.heap import freeze_loaded_objects


class DatabaseUnavailable(ServiceError):
    status = 503
    code = "database_unavailable"


class EventIdConflict(ServiceError):
    status = 409
    code = "event_id_conflict"


class QueuedFeedbackEvent(BaseModel):
    """Accepted while the database is unavailable: a worker stores it (exactly once) when it is back."""

    event_id: str
    status: str = "queued"


class UserEvents(BaseModel):
    user_id: int
    events: list[StoredFeedbackEvent]


class EventPage(BaseModel):
    events: list[StoredFeedbackEvent]
    last_seq: int
    """Pass as ``since_seq`` to read on."""


class UserDeleted(BaseModel):
    user_id: int
    deleted_events: int


def get_store(request: Request) -> FeedbackStore:
    return request.app.state.store


StoreDep = Annotated[FeedbackStore, Depends(get_store)]
MAX_SEQ = 2**63 - 1  # the seq column is a PostgreSQL BIGINT
UserId = Annotated[int, Path(ge=1, le=2**31 - 1, description="User id")]


def create_app(settings: FeedbackSettings | None = None) -> FastAPI:
    settings = (settings or FeedbackSettings()).resolved()
    if not settings.database_url:
        raise SystemExit("feedback service: set MOVIEREC_DATABASE_URL (or MOVIEREC_FEEDBACK_DATABASE_URL)")
    if not settings.redis_url:
        raise SystemExit("feedback service: set MOVIEREC_REDIS_URL (or MOVIEREC_FEEDBACK_REDIS_URL)")
    if settings.migrate_on_start:
        migrate(settings.database_url)

    store = FeedbackStore(create_engine_for(settings.database_url))
    redis_client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)

    async def database_ready() -> str | None:
        try:
            await asyncio.to_thread(store.ping)
        except Exception as exc:  # noqa: BLE001
            return f"PostgreSQL unreachable: {type(exc).__name__}"
        return None

    async def redis_ready() -> str | None:
        try:
            await asyncio.to_thread(redis_client.ping)
        except Exception as exc:  # noqa: BLE001
            return f"Redis unreachable: {type(exc).__name__}"
        return None

    app = create_service_app("feedback", readiness=[database_ready, redis_ready], log_level=settings.log_level)
    registry = app.state.metrics_registry
    events_total = Counter("feedback_events_total", "Feedback events received", ["kind", "outcome"], registry=registry)
    follow_ups = EventFollowUps(make_celery(settings.redis_url), redis_client, registry,
                                retrain_after_events=settings.retrain_after_events or 0,
                                refresh_cache=settings.refresh_cache, timeout_s=settings.enqueue_timeout_s,
                                expires_s=settings.follow_up_expires_s)
    app.state.store = store
    app.router.on_startup.append(freeze_loaded_objects)  # SQLAlchemy, the app: off the collector's rounds
    app.state.follow_ups = follow_ups

    @app.post("/v1/events", response_model=StoredFeedbackEvent | QueuedFeedbackEvent, status_code=201,
              responses={200: {"description": "Already stored: the stored event", "model": StoredFeedbackEvent},
                         202: {"description": "Database unavailable: queued durably, stored when it is back", "model": QueuedFeedbackEvent},
                         409: {"description": "event_id already used for a different event"},
                         503: {"description": "Neither the database nor the queue is available: retry with the same event_id"}})
    def post_event(event: FeedbackEvent, response: Response, store: StoreDep) -> StoredFeedbackEvent | QueuedFeedbackEvent:
        """Store one event exactly once. A repeat of a stored ``event_id`` answers 200 with the stored event.

        While PostgreSQL is down the event is queued in Redis for a worker to store (202); only
        when both are down is the answer 503, and nothing is acknowledged.
        """
        try:
            stored, created = store.record(event)
        except EventConflict as exc:
            events_total.labels(event.kind, "conflict").inc()
            raise EventIdConflict(str(exc)) from None
        except OperationalError:
            if follow_ups.buffer(event):
                events_total.labels(event.kind, "queued").inc()
                response.status_code = 202
                return QueuedFeedbackEvent(event_id=event.event_id)
            events_total.labels(event.kind, "unavailable").inc()
            raise DatabaseUnavailable("the feedback database and queue are unavailable; retry with the same event_id",
                                      headers={"Retry-After": "1"}) from None
        events_total.labels(event.kind, "created" if created else "duplicate").inc()
        if created:
            follow_ups.after_answer(follow_ups.event_stored, event.user_id)
        else:
            response.status_code = 200
        return stored

    @app.get("/v1/events", response_model=EventPage)
    def read_events(store: StoreDep, since_seq: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
                    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> EventPage:
        """Events after ``since_seq`` in commit order (for consumers such as retraining)."""
        try:
            events = store.events_since(since_seq, limit)
        except OperationalError:
            raise DatabaseUnavailable("the feedback database is unavailable", headers={"Retry-After": "1"}) from None
        return EventPage(events=events, last_seq=events[-1].seq if events else since_seq)

    @app.get("/v1/users/{user_id}/events", response_model=UserEvents)
    def user_events(user_id: UserId, store: StoreDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    before_seq: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None) -> UserEvents:
        """One user's events, newest first."""
        try:
            events = store.events_for_user(user_id, limit, before_seq)
        except OperationalError:
            raise DatabaseUnavailable("the feedback database is unavailable", headers={"Retry-After": "1"}) from None
        return UserEvents(user_id=user_id, events=events)

    @app.delete("/v1/users/{user_id}", response_model=UserDeleted)
    def delete_user(user_id: UserId, store: StoreDep) -> UserDeleted:
        """Delete all of one user's feedback and cached recommendations."""
        try:
            deleted = store.delete_user(user_id)
        except OperationalError:
            raise DatabaseUnavailable("the feedback database is unavailable", headers={"Retry-After": "1"}) from None
        follow_ups.after_answer(follow_ups.user_changed, user_id)
        return UserDeleted(user_id=user_id, deleted_events=deleted)

    return app
