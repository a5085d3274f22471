"""Feedback service settings (env prefix ``MOVIEREC_FEEDBACK_``).

The database and Redis come from the core settings (``MOVIEREC_DATABASE_URL``,
``MOVIEREC_REDIS_URL``) unless set here; the service refuses to start without them.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from movierec.settings import get_settings


class FeedbackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOVIEREC_FEEDBACK_", env_file=".env", extra="ignore")

    database_url: str | None = None
    redis_url: str | None = None
    migrate_on_start: bool = True
    """Bring the database to the latest migration when the app starts (idempotent)."""
    refresh_cache: bool = False
    """After invalidating a user's cached lists, also warm them again through the gateway."""
    retrain_after_events: int | None = None
    """Trigger policy retraining after this many new events (default: the core setting; 0: never)."""
    enqueue_timeout_s: float = 2.0
    follow_up_expires_s: float = Field(600.0, gt=0)
    """A cache invalidation or retraining request that no worker has started within this is
    dropped unrun: the lists it would invalidate have expired by then (the gateway's cache TTL,
    600 s by default) and a later retraining reads the same events and more. Without it, hours
    with no worker pile up thousands of tasks that a worker would run one by one when it starts.
    Events buffered while the database is down never expire."""
    log_level: str = "INFO"

    def resolved(self) -> "FeedbackSettings":
        """These settings with the core settings filled in where unset."""
        core = get_settings()
        return self.model_copy(update={
            "database_url": self.database_url or core.database_url,
            "redis_url": self.redis_url or core.redis_url,
            "retrain_after_events": self.retrain_after_events if self.retrain_after_events is not None else core.retrain_after_events,
        })
